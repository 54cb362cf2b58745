from django.urls import path

from annotations import api_annotate as api

urlpatterns = [
    path(
        "studies/<int:study_id>/annotate/next/",
        api.AnnotateNextAPI.as_view(),
        name="api_annotate_next",
    ),
    path(
        "studies/<int:study_id>/annotate/submit/",
        api.AnnotateSubmitAPI.as_view(),
        name="api_annotate_submit",
    ),
    path(
        "studies/<int:study_id>/annotate/skip/",
        api.AnnotateSkipAPI.as_view(),
        name="api_annotate_skip",
    ),
    path(
        "studies/<int:study_id>/annotate/flag/",
        api.AnnotateFlagAPI.as_view(),
        name="api_annotate_flag",
    ),
    path(
        "studies/<int:study_id>/annotate/progress/",
        api.AnnotateProgressAPI.as_view(),
        name="api_annotate_progress",
    ),
    path(
        "studies/<int:study_id>/statements/",
        api.StatementListAPI.as_view(),
        name="api_statements",
    ),
    path(
        "studies/<int:study_id>/statements/moderate/",
        api.StatementModerateBulkAPI.as_view(),
        name="api_statements_moderate",
    ),
    path(
        "studies/<int:study_id>/statements/<int:statement_id>/",
        api.StatementModerateAPI.as_view(),
        name="api_statement_moderate",
    ),
    path(
        "studies/<int:study_id>/dashboard/",
        api.StudyDashboardAPI.as_view(),
        name="api_study_dashboard",
    ),
    path(
        "participate/<str:entry_token>/statements/",
        api.ParticipantStatementsAPI.as_view(),
        name="api_participant_statements",
    ),
]
