from django.urls import path

from annotations import (
    views_annotate,
    views_moderation,
    views_participant,
    views_participant_steps,
)

urlpatterns = [
    path(
        "studies/<id:study_id>/annotate/",
        views_annotate.AnnotateView.as_view(),
        name="annotate",
    ),
    path(
        "studies/<id:study_id>/moderation/",
        views_moderation.moderation_queue,
        name="moderation_queue",
    ),
    path(
        "studies/<id:study_id>/moderation/votes.csv",
        views_moderation.export_votes,
        name="study_export_votes",
    ),
    # Participants: the URL holds the study's shared entry token, never who they are.
    path("p/<str:entry_token>/", views_participant.participant_entry, name="participant_entry"),
    path(
        "p/<str:entry_token>/consent/",
        views_participant.participant_consent_page,
        name="participant_consent",
    ),
    path(
        "p/<str:entry_token>/statements/",
        views_participant.participant_statements_page,
        name="participant_statements",
    ),
    path(
        "p/<str:entry_token>/votes/",
        views_participant_steps.participant_votes_page,
        name="participant_votes",
    ),
    path(
        "p/<str:entry_token>/about-you/",
        views_participant_steps.participant_about_page,
        name="participant_about",
    ),
    path("p/<str:entry_token>/done/", views_participant.participant_done, name="participant_done"),
    path(
        "p/<str:entry_token>/finish/",
        views_participant.participant_finish,
        name="participant_finish",
    ),
]
