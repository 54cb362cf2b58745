"""Survey routes for the project-wide access tests (tests/test_entry_points.py).

Researcher routes take a survey of the owner's study; participant routes are public,
keyed by the survey's unguessable entry token, and listed with the reason.
"""

from __future__ import annotations

from typing import Any

from tests import entry_points


def _survey(owned: dict[str, Any]):
    if "survey" not in owned:
        from tests.surveys.factories import open_survey

        owned["survey"] = open_survey(study=owned["study"], user=owned.get("researcher"))
    return owned["survey"]


def _survey_kwargs(owned: dict[str, Any]) -> dict[str, Any]:
    survey = _survey(owned)
    return {"study_id": survey.study_id, "survey_id": survey.pk}


for _name in (
    "survey_detail",
    "survey_edit",
    "survey_open",
    "survey_close",
    "survey_results",
    "survey_results_live",
    "survey_report",
    "survey_results_csv",
    "survey_answers_csv",
    "survey_ratings_csv",
    "api_survey_detail",
    "api_survey_status",
    "api_survey_responses",
    "api_survey_results",
):
    entry_points.register(_name)(_survey_kwargs)

_PARTICIPANT = (
    "blinded survey page for participants, keyed by the survey's unguessable entry token; "
    "shows no method, title or id"
)
for _name in (
    "survey_participant_enter",
    "survey_participant_consent",
    "survey_participant_instructions",
    "survey_participant_questions",
    "survey_participant_ratings",
    "survey_participant_done",
    "survey_participant_ended",
    "api_survey_participant_state",
    "api_survey_participant_enter",
    "api_survey_participant_consent",
    "api_survey_participant_instructions",
    "api_survey_participant_answers",
    "api_survey_participant_ratings",
):
    entry_points.PUBLIC[_name] = _PARTICIPANT
