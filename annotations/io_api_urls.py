from django.urls import path

from annotations import io_api

_study = "studies/<id:study_id>/"

urlpatterns = [
    path(_study + "imports/pairs/", io_api.PairsImportAPI.as_view(), name="api_pairs_import"),
    path(
        _study + "imports/statements/",
        io_api.StatementsImportAPI.as_view(),
        name="api_statements_import",
    ),
    path(
        _study + "datasets/<id:dataset_id>/split/",
        io_api.DatasetSplitAPI.as_view(),
        name="api_dataset_split",
    ),
    path(_study + "exports/pairs/", io_api.PairsExportAPI.as_view(), name="api_export_pairs"),
    path(
        _study + "exports/statements/",
        io_api.StatementsExportAPI.as_view(),
        name="api_export_statements",
    ),
    path(
        _study + "exports/constitutions/<id:constitution_id>/",
        io_api.ConstitutionExportAPI.as_view(),
        name="api_export_constitution",
    ),
    path(
        _study + "exports/surveys/<id:survey_id>/answers/",
        io_api.SurveyAnswersExportAPI.as_view(),
        name="api_export_survey_answers",
    ),
]
