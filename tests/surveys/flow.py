"""Drive the participant pages with Django's test client."""

from __future__ import annotations

from django.urls import reverse

from surveys.models import Survey, SurveyResponse


def url(name: str, survey: Survey) -> str:
    return reverse(name, kwargs={"entry_token": survey.entry_token})


def enter(client, survey: Survey, pid: str | None = "PID0001"):
    params = {"PROLIFIC_PID": pid, "STUDY_ID": "STUDY9", "SESSION_ID": "SESS9"} if pid else {}
    return client.get(url("survey_participant_enter", survey), params)


def answers_for(survey: Survey, *, prefer_side: str = "left", pass_check: bool = True) -> dict:
    data = {"elapsed_ms": "30000"}
    for q in survey.questions.all():
        if q.kind == "attention":
            side = (
                q.expected_answer
                if pass_check
                else ("left" if q.expected_answer != "left" else "right")
            )
        else:
            side = prefer_side
        data[f"q{q.position}"] = side
    return data


def run_to_questions(client, survey: Survey, pid: str | None = "PID0001") -> SurveyResponse | None:
    enter(client, survey, pid)
    client.post(url("survey_participant_consent", survey), {"agree": "1", "elapsed_ms": "4000"})
    client.post(url("survey_participant_instructions", survey), {"elapsed_ms": "8000"})
    return SurveyResponse.objects.filter(survey=survey).order_by("-pk").first()


def complete(client, survey: Survey, pid: str | None = "PID0001", pass_check: bool = True):
    """Take the whole survey; returns the last response (the redirect after answers)."""
    run_to_questions(client, survey, pid)
    response = client.post(
        url("survey_participant_questions", survey), answers_for(survey, pass_check=pass_check)
    )
    if survey.rate_principles and response["Location"].endswith("/ratings/"):
        page = client.get(url("survey_participant_ratings", survey))
        n = len(page.context["form"].items)
        data = {f"r{i}": "4" for i in range(1, n + 1)}
        response = client.post(url("survey_participant_ratings", survey), data)
    return response
