from django.urls import path

from surveys import views, views_participant

_survey = "studies/<id:study_id>/surveys/<id:survey_id>/"

urlpatterns = [
    # Researchers
    path("studies/<id:study_id>/surveys/", views.survey_list, name="survey_list"),
    path("studies/<id:study_id>/surveys/new/", views.survey_create, name="survey_create"),
    path(_survey, views.survey_detail, name="survey_detail"),
    path(_survey + "edit/", views.survey_edit, name="survey_edit"),
    path(_survey + "open/", views.survey_open, name="survey_open"),
    path(_survey + "close/", views.survey_close, name="survey_close"),
    path(_survey + "results/", views.survey_results, name="survey_results"),
    path(_survey + "results/live/", views.survey_results_live, name="survey_results_live"),
    path(_survey + "report/", views.survey_report, name="survey_report"),
    path(_survey + "results.csv", views.survey_results_csv, name="survey_results_csv"),
    path(_survey + "answers.csv", views.survey_answers_csv, name="survey_answers_csv"),
    path(_survey + "ratings.csv", views.survey_ratings_csv, name="survey_ratings_csv"),
    # Participants: keyed by the survey's unguessable entry token, never by an id.
    path(
        "s/<str:entry_token>/",
        views_participant.survey_participant_enter,
        name="survey_participant_enter",
    ),
    path(
        "s/<str:entry_token>/consent/",
        views_participant.survey_participant_consent,
        name="survey_participant_consent",
    ),
    path(
        "s/<str:entry_token>/instructions/",
        views_participant.survey_participant_instructions,
        name="survey_participant_instructions",
    ),
    path(
        "s/<str:entry_token>/questions/",
        views_participant.survey_participant_questions,
        name="survey_participant_questions",
    ),
    path(
        "s/<str:entry_token>/ratings/",
        views_participant.survey_participant_ratings,
        name="survey_participant_ratings",
    ),
    path(
        "s/<str:entry_token>/done/",
        views_participant.survey_participant_done,
        name="survey_participant_done",
    ),
    path(
        "s/<str:entry_token>/ended/",
        views_participant.survey_participant_ended,
        name="survey_participant_ended",
    ),
]
