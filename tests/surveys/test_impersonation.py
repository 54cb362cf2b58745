"""A Prolific id is not a credential: a fresh browser holding someone else's id reaches
nothing of theirs, on any participant page or API of the statements flow and the survey
flow; only the browser that entered, or Prolific's proof of the same submission, resumes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotations.models import Participant, Participation, ValueStatement
from surveys.models import Answer, SurveyResponse
from tests.factories import StudyFactory
from tests.surveys.flow import answers_for, run_to_questions, url

pytestmark = pytest.mark.django_db

VICTIM = {"PROLIFIC_PID": "VICTIMPID01", "STUDY_ID": "STUDY9", "SESSION_ID": "SESS9"}
STATEMENT = "Victim-statement-marker: AI should never pretend to be a person."
COMMENT = "Victim-comment-marker"


def _surl(name, study):
    return reverse(name, args=[study.entry_token])


def _victim_statements(study) -> Client:
    victim = Client()
    victim.get(_surl("participant_entry", study), VICTIM)
    victim.post(_surl("participant_consent", study), {"agree": "yes"})
    victim.post(_surl("participant_statements", study), {"statement_0": STATEMENT})
    assert ValueStatement.objects.filter(text=STATEMENT).exists()
    return victim


def _victim_survey(survey, *, finish: bool) -> Client:
    victim = Client()
    run_to_questions(victim, survey, pid=VICTIM["PROLIFIC_PID"])
    if finish:
        data = answers_for(survey)
        first = survey.questions.filter(allow_comment=True).first()
        data[f"q{first.position}_comment"] = COMMENT
        victim.post(url("survey_participant_questions", survey), data)
        assert Answer.objects.filter(comment=COMMENT).exists()
    return victim


def _attempts(study, survey):
    """Every participant-visible page and API call of both flows, as (method, path, data)."""
    s = study.entry_token
    pages = [
        ("get", reverse("participant_consent", args=[s]), None),
        ("get", reverse("participant_statements", args=[s]), None),
        ("get", reverse("participant_done", args=[s]), None),
        ("get", reverse("participant_finish", args=[s]), None),
        ("get", reverse("api_participant_statements", args=[s]), None),
        ("get", reverse("participant_votes", args=[s]), None),
        ("get", reverse("participant_about", args=[s]), None),
        ("get", reverse("api_participant_votes", args=[s]), None),
        ("get", reverse("api_participant_about", args=[s]), None),
        ("post", reverse("api_participant_votes", args=[s]), {"statement": 1, "vote": "agree"}),
        ("post", reverse("api_participant_about", args=[s]), {"answers": {}}),
        ("post", reverse("participant_consent", args=[s]), {"agree": "yes"}),
        ("post", reverse("participant_statements", args=[s]), {"statement_0": "x" * 40}),
        ("post", reverse("api_participant_statements", args=[s]), {"statements": []}),
    ]
    for name in (
        "survey_participant_consent",
        "survey_participant_instructions",
        "survey_participant_questions",
        "survey_participant_ratings",
        "survey_participant_done",
        "survey_participant_ended",
        "api_survey_participant_state",
    ):
        pages.append(("get", url(name, survey), None))
    pages += [
        ("post", url("survey_participant_questions", survey), answers_for(survey)),
        ("post", url("api_survey_participant_consent", survey), {}),
        ("post", url("api_survey_participant_instructions", survey), {}),
        ("post", url("api_survey_participant_answers", survey), {"answers": []}),
        ("post", url("api_survey_participant_ratings", survey), {"ratings": []}),
    ]
    return pages


@pytest.mark.parametrize(
    "proof",
    [
        {},
        {"STUDY_ID": "STUDY9"},
        {"STUDY_ID": "STUDY9", "SESSION_ID": "GUESSED"},
        {"STUDY_ID": "OTHER", "SESSION_ID": "SESS9"},
    ],
    ids=["no-proof", "study-only", "wrong-session", "wrong-study"],
)
def test_another_participants_id_from_a_fresh_browser_reveals_nothing(survey, proof):
    study = survey.study
    _victim_statements(study)
    _victim_survey(survey, finish=True)
    victim = Participant.objects.get(study=study, prolific_pid=VICTIM["PROLIFIC_PID"])
    before = (
        list(victim.statements.values_list("text", flat=True)),
        list(Answer.objects.filter(response__participant=victim).values_list("choice", "comment")),
    )

    attacker = Client()
    params = {"PROLIFIC_PID": VICTIM["PROLIFIC_PID"], **proof}
    seen = []
    entry = attacker.get(_surl("participant_entry", study), params)
    assert entry.status_code == 409
    assert "already taking part" in entry.content.decode()
    seen.append(entry)
    survey_entry = attacker.get(url("survey_participant_enter", survey), params)
    assert survey_entry.status_code == 409
    seen.append(survey_entry)
    api_entry = attacker.post(
        url("api_survey_participant_enter", survey), params, content_type="application/json"
    )
    assert api_entry.status_code == 409
    seen.append(api_entry)
    for method, path, data in _attempts(study, survey):
        if method == "get":
            seen.append(attacker.get(path))
        elif path.startswith("/api/"):
            seen.append(attacker.post(path, data, content_type="application/json"))
        else:
            seen.append(attacker.post(path, data))

    for response in seen:
        body = response.content.decode()
        assert STATEMENT not in body, response.request["PATH_INFO"]
        assert COMMENT not in body, response.request["PATH_INFO"]
        if response.status_code == 200:
            # Only the survey state API answers 200: "enter first", nothing else.
            assert response.json() == {"step": "enter"}
            continue
        assert response.status_code in (302, 403, 409), (
            response.request["PATH_INFO"],
            response.status_code,
        )
        # Redirects lead back to the entry, never into the victim's flow.
        if response.status_code == 302:
            assert response["Location"] == url("survey_participant_enter", survey)
    after = (
        list(victim.statements.values_list("text", flat=True)),
        list(Answer.objects.filter(response__participant=victim).values_list("choice", "comment")),
    )
    assert after == before
    assert Participant.objects.filter(study=study).count() == 1


def test_mid_survey_a_stolen_id_cannot_submit_answers(survey):
    _victim_survey(survey, finish=False)
    attacker = Client()
    attacker.get(url("survey_participant_enter", survey), {"PROLIFIC_PID": "VICTIMPID01"})
    refused = attacker.post(url("survey_participant_questions", survey), answers_for(survey))
    assert refused.status_code == 302
    assert not Answer.objects.exists()
    assert SurveyResponse.objects.get().status == "in_progress"


def test_prolifics_proof_of_the_same_submission_resumes_in_a_new_browser(survey):
    _victim_statements(survey.study)
    other_device = Client()
    response = other_device.get(_surl("participant_entry", survey.study), VICTIM)
    assert response["Location"] == _surl("participant_done", survey.study)
    assert STATEMENT in other_device.get(response["Location"]).content.decode()
    assert Participant.objects.count() == 1


def test_the_browser_that_entered_resumes_after_its_session_is_gone(survey):
    victim = _victim_survey(survey, finish=False)
    victim.session.flush()
    for key in list(victim.cookies):
        if key != "browser":
            del victim.cookies[key]
    response = victim.get(url("survey_participant_enter", survey), {"PROLIFIC_PID": "VICTIMPID01"})
    assert response["Location"] == url("survey_participant_questions", survey)


# --- Prolific-only and open studies ---------------------------------------------------------


def test_a_prolific_only_study_refuses_a_link_without_an_id(survey):
    study = survey.study
    study.participation = Participation.PROLIFIC
    study.save()
    page = Client().get(_surl("participant_entry", study))
    assert page.status_code == 403
    assert "open it from your Prolific account" in page.content.decode()
    survey_page = Client().get(url("survey_participant_enter", survey))
    assert survey_page.status_code == 403
    assert "Prolific ID" in survey_page.content.decode()
    assert not Participant.objects.exists()
    # With an id it works as usual.
    assert Client().get(_surl("participant_entry", study), VICTIM).status_code == 302


def test_an_open_study_holds_one_browser_to_one_survey_response(survey):
    study = survey.study
    assert study.participation == Participation.OPEN
    browser = Client()
    run_to_questions(browser, survey, pid=None)
    browser.post(url("survey_participant_questions", survey), answers_for(survey))
    assert SurveyResponse.objects.get().status == "completed"
    # Same browser, session gone (cookies other than the browser cookie cleared).
    browser.session.flush()
    for key in list(browser.cookies):
        if key != "browser":
            del browser.cookies[key]
    again = browser.get(url("survey_participant_enter", survey))
    assert again["Location"] == url("survey_participant_done", survey)
    assert SurveyResponse.objects.count() == 1
    assert Participant.objects.count() == 1
    # Another browser is another participant.
    Client().get(url("survey_participant_enter", survey))
    assert Participant.objects.count() == 2


def test_the_study_and_survey_pages_warn_the_researcher_about_open_entry(owner_client, survey):
    study = survey.study
    pages = [
        reverse("study_detail", args=[study.pk]),
        reverse("survey_detail", args=[study.pk, survey.pk]),
    ]
    for page in pages:
        assert 'id="open-entry-warning"' in owner_client.get(page).content.decode(), page
    study.participation = Participation.PROLIFIC
    study.save()
    for page in pages:
        assert 'id="open-entry-warning"' not in owner_client.get(page).content.decode(), page


def test_a_participant_of_another_study_does_not_resume_by_browser(survey):
    browser = Client()
    other = StudyFactory(name="Other")
    browser.get(_surl("participant_entry", other))
    browser.get(_surl("participant_entry", survey.study))
    assert Participant.objects.filter(study=survey.study).count() == 1
    assert Participant.objects.filter(study=other).count() == 1
