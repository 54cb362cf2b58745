"""API routes for per-group constitutions, under their study."""

from django.urls import path

from gcai.groups import api

urlpatterns = [
    path(
        "studies/<id:study_id>/groups/",
        api.GroupComparisonListCreateAPI.as_view(),
        name="api_group_comparisons",
    ),
    path(
        "studies/<id:study_id>/groups/<id:comparison_id>/",
        api.GroupComparisonReportAPI.as_view(),
        name="api_group_comparison_report",
    ),
]
