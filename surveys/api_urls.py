from django.urls import path

from surveys import api

_survey = "studies/<id:study_id>/surveys/<id:survey_id>/"

urlpatterns = [
    # Researchers
    path("studies/<id:study_id>/surveys/", api.SurveyListCreateAPI.as_view(), name="api_surveys"),
    path(_survey, api.SurveyDetailAPI.as_view(), name="api_survey_detail"),
    path(_survey + "status/", api.SurveyStatusAPI.as_view(), name="api_survey_status"),
    path(_survey + "responses/", api.SurveyResponsesAPI.as_view(), name="api_survey_responses"),
    path(_survey + "results/", api.SurveyResultsAPI.as_view(), name="api_survey_results"),
    # Participants (blinded), keyed by the survey's unguessable entry token.
    path(
        "s/<str:entry_token>/",
        api.ParticipantStateAPI.as_view(),
        name="api_survey_participant_state",
    ),
    path(
        "s/<str:entry_token>/enter/",
        api.ParticipantEnterAPI.as_view(),
        name="api_survey_participant_enter",
    ),
    path(
        "s/<str:entry_token>/consent/",
        api.ParticipantConsentAPI.as_view(),
        name="api_survey_participant_consent",
    ),
    path(
        "s/<str:entry_token>/instructions/",
        api.ParticipantInstructionsAPI.as_view(),
        name="api_survey_participant_instructions",
    ),
    path(
        "s/<str:entry_token>/answers/",
        api.ParticipantAnswersAPI.as_view(),
        name="api_survey_participant_answers",
    ),
    path(
        "s/<str:entry_token>/ratings/",
        api.ParticipantRatingsAPI.as_view(),
        name="api_survey_participant_ratings",
    ),
]
