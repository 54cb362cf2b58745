"""API routes for evaluations; every route is under its study."""

from django.urls import path

from gcai.constitutions import evaluation_api as api

_ONE = "studies/<id:study_id>/evaluations/<id:evaluation_id>/"

urlpatterns = [
    path(
        "studies/<id:study_id>/evaluations/",
        api.EvaluationListCreateAPI.as_view(),
        name="api_evaluations",
    ),
    path(
        "studies/<id:study_id>/evaluations/compare/<slug:group>/",
        api.EvaluationComparisonAPI.as_view(),
        name="api_evaluation_comparison",
    ),
    path(_ONE, api.EvaluationDetailAPI.as_view(), name="api_evaluation_detail"),
    path(_ONE + "results/", api.EvaluationResultsAPI.as_view(), name="api_evaluation_results"),
    path(
        _ONE + "export.csv", api.EvaluationExportCsvAPI.as_view(), name="api_evaluation_export_csv"
    ),
    path(
        _ONE + "export.json",
        api.EvaluationExportJsonAPI.as_view(),
        name="api_evaluation_export_json",
    ),
    path(_ONE + "cancel/", api.EvaluationCancelAPI.as_view(), name="api_evaluation_cancel"),
    path(_ONE + "resume/", api.EvaluationResumeAPI.as_view(), name="api_evaluation_resume"),
]
