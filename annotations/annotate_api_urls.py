from django.urls import path

from annotations import api_annotate as api
from annotations import api_participant_steps

urlpatterns = [
    path(
        "studies/<id:study_id>/annotate/next/",
        api.AnnotateNextAPI.as_view(),
        name="api_annotate_next",
    ),
    path(
        "studies/<id:study_id>/annotate/submit/",
        api.AnnotateSubmitAPI.as_view(),
        name="api_annotate_submit",
    ),
    path(
        "studies/<id:study_id>/annotate/skip/",
        api.AnnotateSkipAPI.as_view(),
        name="api_annotate_skip",
    ),
    path(
        "studies/<id:study_id>/annotate/flag/",
        api.AnnotateFlagAPI.as_view(),
        name="api_annotate_flag",
    ),
    path(
        "studies/<id:study_id>/annotate/progress/",
        api.AnnotateProgressAPI.as_view(),
        name="api_annotate_progress",
    ),
    path(
        "studies/<id:study_id>/statements/",
        api.StatementListAPI.as_view(),
        name="api_statements",
    ),
    path(
        "studies/<id:study_id>/statements/moderate/",
        api.StatementModerateBulkAPI.as_view(),
        name="api_statements_moderate",
    ),
    path(
        "studies/<id:study_id>/statements/<id:statement_id>/",
        api.StatementModerateAPI.as_view(),
        name="api_statement_moderate",
    ),
    path(
        "studies/<id:study_id>/dashboard/",
        api.StudyDashboardAPI.as_view(),
        name="api_study_dashboard",
    ),
    path(
        "participate/<str:entry_token>/statements/",
        api.ParticipantStatementsAPI.as_view(),
        name="api_participant_statements",
    ),
    path(
        "participate/<str:entry_token>/votes/",
        api_participant_steps.ParticipantVotesAPI.as_view(),
        name="api_participant_votes",
    ),
    path(
        "participate/<str:entry_token>/about/",
        api_participant_steps.ParticipantAboutAPI.as_view(),
        name="api_participant_about",
    ),
]
