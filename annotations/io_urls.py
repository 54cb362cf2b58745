from django.urls import path

from annotations import io_views, views_datasets

_data = "studies/<id:study_id>/data/"

urlpatterns = [
    path(_data, io_views.data_page, name="study_data"),
    path(_data + "preview/", io_views.data_preview, name="study_data_preview"),
    path(_data + "import/", io_views.data_import, name="study_data_import"),
    path(
        _data + "datasets/<id:dataset_id>/",
        views_datasets.dataset_settings,
        name="study_dataset_settings",
    ),
    path(
        _data + "datasets/<id:dataset_id>/split/",
        io_views.dataset_split,
        name="study_dataset_split",
    ),
    path(_data + "export/pairs/", io_views.export_pairs, name="study_export_pairs"),
    path(_data + "export/statements/", io_views.export_statements, name="study_export_statements"),
    path(
        _data + "export/constitutions/<id:constitution_id>/",
        io_views.export_constitution,
        name="study_export_constitution",
    ),
    path(
        _data + "export/surveys/<id:survey_id>/answers/",
        io_views.export_survey_answers,
        name="study_export_survey_answers",
    ),
]
