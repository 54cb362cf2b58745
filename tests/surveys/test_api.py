"""Survey API: researcher endpoints (ownership, create, status, responses, results) and
the blinded participant endpoints (flow, CSRF, step order)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from gcai.constitutions.models import Method
from surveys.models import ResponseStatus, Survey, SurveyResponse, SurveyStatus
from tests.factories import StudyFactory
from tests.surveys.factories import open_survey, published_constitution
from tests.surveys.flow import complete, url

pytestmark = pytest.mark.django_db


def _kw(survey):
    return {"study_id": survey.study_id, "survey_id": survey.pk}


def test_create_with_defaults_then_open(owner_client, study):
    a = published_constitution(study=study, method=Method.GCAI, title="Grounded v1")
    b = published_constitution(study=study, method=Method.ICAI, title="Baseline v1")
    response = owner_client.post(
        reverse("api_surveys", kwargs={"study_id": study.pk}),
        {"title": "API survey", "constitution_a": a.pk, "constitution_b": b.pk},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert body["constitution_a"]["method"] == "gcai"
    assert [q["key"] for q in body["questions"]][3] == "attention_check"
    assert body["entry_url"].startswith("http://testserver/s/")
    survey = Survey.objects.get(pk=body["id"])

    opened = owner_client.post(
        reverse("api_survey_status", kwargs=_kw(survey)),
        {"status": "open"},
        content_type="application/json",
    )
    assert opened.json()["status"] == "open"
    detail = owner_client.get(reverse("api_survey_detail", kwargs=_kw(survey))).json()
    assert detail["completion_code"] == survey.completion_code


def test_create_with_custom_questions_and_validation_errors(owner_client, study):
    a = published_constitution(study=study, method=Method.GCAI, title="Grounded v1")
    b = published_constitution(study=study, method=Method.ICAI, title="Baseline v1")
    foreign = published_constitution(study=StudyFactory(), title="Foreign")
    endpoint = reverse("api_surveys", kwargs={"study_id": study.pk})
    ok = owner_client.post(
        endpoint,
        {
            "title": "Custom",
            "constitution_a": a.pk,
            "constitution_b": b.pk,
            "allowed_choices": ["a", "b"],
            "ties_in_share": True,
            "questions": [
                {"key": "clarity", "text": "Which is clearer?"},
                {"key": "ac", "text": "Pick 1", "kind": "attention", "expected_answer": "left"},
            ],
        },
        content_type="application/json",
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["choices"] == ["a", "b"]
    bad = owner_client.post(
        endpoint,
        {"title": "X", "constitution_a": a.pk, "constitution_b": foreign.pk},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "constitution_b" in bad.json()
    same = owner_client.post(
        endpoint,
        {"title": "X", "constitution_a": a.pk, "constitution_b": a.pk},
        content_type="application/json",
    )
    assert same.status_code == 400
    assert "different" in same.json()["detail"]


def test_strangers_and_anonymous_are_refused(client, stranger_client, study, researcher):
    survey = open_survey(study=study, user=researcher)
    for name in ("api_survey_detail", "api_survey_responses", "api_survey_results"):
        assert stranger_client.get(reverse(name, kwargs=_kw(survey))).status_code == 404
    assert (
        stranger_client.get(reverse("api_surveys", kwargs={"study_id": study.pk})).status_code
        == 404
    )
    stranger_client.logout()
    assert client.get(reverse("api_survey_results", kwargs=_kw(survey))).status_code in (401, 403)


def test_responses_and_results_endpoints(owner_client, study, researcher):
    survey = open_survey(study=study, user=researcher)
    complete(Client(), survey, pid="P1")
    complete(Client(), survey, pid="P2", pass_check=False)

    responses = owner_client.get(reverse("api_survey_responses", kwargs=_kw(survey))).json()
    assert responses["count"] == 2
    # Prolific ids stay out unless the study reveals them.
    assert all("prolific_pid" not in r for r in responses["results"])
    assert "P1" not in json.dumps(responses)
    page = reverse("study_detail", args=[study.pk])
    assert 'id="prolific-ids-revealed"' not in owner_client.get(page).content.decode()
    study.reveal_prolific_ids = True
    study.save()
    # The researcher is reminded on the study page while ids are revealed.
    assert 'id="prolific-ids-revealed"' in owner_client.get(page).content.decode()
    responses = owner_client.get(reverse("api_survey_responses", kwargs=_kw(survey))).json()
    statuses = {r["prolific_pid"]: r["status"] for r in responses["results"]}
    assert statuses == {"P1": "completed", "P2": "screened_out"}
    first = next(r for r in responses["results"] if r["prolific_pid"] == "P1")
    assert {a["choice"] for a in first["answers"]} <= {"a", "b", "tie", "both_bad"}
    assert len(first["answers"]) == survey.questions.count()

    results = owner_client.get(reverse("api_survey_results", kwargs=_kw(survey))).json()
    assert results["counts"] == {"started": 2, "completed": 1, "screened_out": 1, "in_progress": 0}
    assert results["questions"][0]["key"] == "moral_grounding"
    assert results["questions"][0]["n_a"] + results["questions"][0]["n_b"] == 1
    assert results["constitution_a"]["title"] == "Grounded v1"


def test_list_responses_and_results_use_a_fixed_number_of_queries(
    owner_client, study, researcher, django_assert_max_num_queries
):
    for _ in range(3):
        survey = open_survey(study=study, user=researcher)
    for pid in ("P1", "P2", "P3", "P4", "P5"):
        complete(Client(), survey, pid=pid)
    with django_assert_max_num_queries(8):
        listing = owner_client.get(reverse("api_surveys", kwargs={"study_id": study.pk}))
    assert listing.json()["count"] == 3
    with django_assert_max_num_queries(10):
        responses = owner_client.get(reverse("api_survey_responses", kwargs=_kw(survey)))
    assert responses.json()["count"] == 5
    with django_assert_max_num_queries(10):
        owner_client.get(reverse("api_survey_results", kwargs=_kw(survey)))


# --- Participants -------------------------------------------------------------------------------
def test_participant_api_runs_the_whole_flow(survey):
    client = Client()
    assert client.get(url("api_survey_participant_state", survey)).json() == {"step": "enter"}
    state = client.post(
        url("api_survey_participant_enter", survey),
        {"PROLIFIC_PID": "APIPID1", "STUDY_ID": "S", "SESSION_ID": "X"},
        content_type="application/json",
    ).json()
    assert state["step"] == "consent"
    assert state["consent_text"]
    state = client.post(url("api_survey_participant_consent", survey), {"elapsed_ms": 1000}).json()
    assert state["step"] == "instructions"
    state = client.post(url("api_survey_participant_instructions", survey), {}).json()
    assert state["step"] == "questions"
    assert [c["label"] for c in state["constitutions"]] == ["Constitution 1", "Constitution 2"]
    answers = [
        {"number": q["number"], "choice": "right", "comment": "clear"} for q in state["questions"]
    ]
    state = client.post(
        url("api_survey_participant_answers", survey),
        {"answers": answers, "elapsed_ms": 5000},
        content_type="application/json",
    ).json()
    assert state == {
        "step": "done",
        "completion_code": survey.completion_code,
        "redirect_url": f"https://app.prolific.com/submissions/complete?cc={survey.completion_code}",
    }
    record = SurveyResponse.objects.get(survey=survey)
    assert record.status == ResponseStatus.COMPLETED
    assert record.timings["questions"] == 5000
    # "right" is Constitution 2: B when A is on the left.
    expected = "b" if record.a_on_left else "a"
    assert set(
        record.answers.filter(question__kind="compare").values_list("choice", flat=True)
    ) == {expected}


def test_participant_api_refuses_steps_out_of_order(survey):
    client = Client()
    assert client.post(url("api_survey_participant_consent", survey), {}).status_code == 409
    client.post(url("api_survey_participant_enter", survey), {}, content_type="application/json")
    early = client.post(
        url("api_survey_participant_answers", survey),
        {"answers": []},
        content_type="application/json",
    )
    assert early.status_code == 409
    assert early.json()["step"] == "consent"


def test_participant_api_checks_csrf_on_writes(survey):
    client = Client(enforce_csrf_checks=True)
    client.get(url("api_survey_participant_state", survey))
    refused = client.post(
        url("api_survey_participant_enter", survey), {}, content_type="application/json"
    )
    assert refused.status_code == 403
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        url("api_survey_participant_enter", survey),
        {},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code == 200


def test_participant_api_answers_must_be_complete_and_valid(survey):
    client = Client()
    client.post(url("api_survey_participant_enter", survey), {}, content_type="application/json")
    client.post(url("api_survey_participant_consent", survey), {})
    client.post(url("api_survey_participant_instructions", survey), {})
    partial = client.post(
        url("api_survey_participant_answers", survey),
        {"answers": [{"number": 1, "choice": "left"}]},
        content_type="application/json",
    )
    assert partial.status_code == 400
    assert "every question" in partial.json()["detail"]
    wrong = client.post(
        url("api_survey_participant_answers", survey),
        {"answers": [{"number": 1, "choice": "a"}]},
        content_type="application/json",
    )
    assert wrong.status_code == 400


def test_participant_api_on_draft_or_unknown_surveys_is_404(client, survey):
    Survey.objects.filter(pk=survey.pk).update(status=SurveyStatus.DRAFT)
    assert client.get(url("api_survey_participant_state", survey)).status_code == 404
    assert client.get("/api/s/nope/").status_code == 404
