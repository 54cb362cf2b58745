"""Researcher pages for training-data exports and steering evaluations, under their study."""

from django.urls import path

from gcai.modeling import views

_EXPORT = "studies/<id:study_id>/constitutions/<id:constitution_id>/training-data/"
_RUN = "studies/<id:study_id>/steering/<id:run_id>/"

urlpatterns = [
    path(_EXPORT, views.training_export, name="training_export"),
    path(
        _EXPORT + "provenance.json",
        views.training_export_provenance,
        name="training_export_provenance",
    ),
    path(_EXPORT + "<slug:part>.jsonl", views.training_export_file, name="training_export_file"),
    path("studies/<id:study_id>/steering/", views.steering_list, name="steering_list"),
    path("studies/<id:study_id>/steering/new/", views.steering_new, name="steering_new"),
    path(_RUN, views.steering_detail, name="steering_detail"),
    path(_RUN + "cancel/", views.steering_cancel, name="steering_cancel"),
    path(_RUN + "resume/", views.steering_resume, name="steering_resume"),
    path(_RUN + "export/", views.steering_export, name="steering_export"),
]
