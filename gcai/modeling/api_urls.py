"""API routes for training-data exports and steering evaluations, under their study."""

from django.urls import path

from gcai.modeling import api

_EXPORT = "studies/<id:study_id>/constitutions/<id:constitution_id>/training-data/"
_RUN = "studies/<id:study_id>/steering/<id:run_id>/"

urlpatterns = [
    path(_EXPORT, api.TrainingExportAPI.as_view(), name="api_training_export"),
    path(
        _EXPORT + "<slug:part>.jsonl",
        api.TrainingExportFileAPI.as_view(),
        name="api_training_export_file",
    ),
    path(
        "studies/<id:study_id>/steering/",
        api.SteeringListCreateAPI.as_view(),
        name="api_steering_runs",
    ),
    path(_RUN, api.SteeringDetailAPI.as_view(), name="api_steering_detail"),
    path(_RUN + "cancel/", api.SteeringCancelAPI.as_view(), name="api_steering_cancel"),
    path(_RUN + "resume/", api.SteeringResumeAPI.as_view(), name="api_steering_resume"),
    path(
        _RUN + "critique.jsonl",
        api.SteeringCritiqueExportAPI.as_view(),
        name="api_steering_critique",
    ),
]
