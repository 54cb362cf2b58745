"""Researcher pages for evaluations; every route is under its study."""

from django.urls import path

from gcai.constitutions import evaluation_views as views

_ONE = "studies/<id:study_id>/evaluations/<id:evaluation_id>/"
_GROUP = "studies/<id:study_id>/evaluations/compare/<slug:group>/"

urlpatterns = [
    path("studies/<id:study_id>/evaluations/", views.evaluation_list, name="evaluation_list"),
    path("studies/<id:study_id>/evaluations/new/", views.evaluation_new, name="evaluation_new"),
    path(_ONE, views.evaluation_detail, name="evaluation_detail"),
    path(_ONE + "status.json", views.evaluation_status, name="evaluation_status"),
    path(_ONE + "cancel/", views.evaluation_cancel, name="evaluation_cancel"),
    path(_ONE + "resume/", views.evaluation_resume, name="evaluation_resume"),
    path(_ONE + "export.csv", views.evaluation_export_csv, name="evaluation_export_csv"),
    path(_ONE + "export.json", views.evaluation_export_json, name="evaluation_export_json"),
    path(_GROUP, views.evaluation_compare, name="evaluation_compare"),
    path(_GROUP + "export.csv", views.evaluation_compare_csv, name="evaluation_compare_csv"),
]
