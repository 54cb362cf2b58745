"""Researcher pages for per-group constitutions, under their study."""

from django.urls import path

from gcai.groups import views

_ONE = "studies/<id:study_id>/groups/<id:comparison_id>/"

urlpatterns = [
    path(
        "studies/<id:study_id>/groups/", views.group_comparison_list, name="group_comparison_list"
    ),
    path(_ONE, views.group_comparison_detail, name="group_comparison_detail"),
    path(_ONE + "continue/", views.group_comparison_resume, name="group_comparison_resume"),
    path(_ONE + "cancel/", views.group_comparison_cancel, name="group_comparison_cancel"),
    path(
        _ONE + "report.csv",
        views.group_comparison_export,
        {"fmt": "csv"},
        name="group_comparison_csv",
    ),
    path(
        _ONE + "report.json",
        views.group_comparison_export,
        {"fmt": "json"},
        name="group_comparison_json",
    ),
]
