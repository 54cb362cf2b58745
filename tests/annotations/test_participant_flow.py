"""Participants: entry link with Prolific ids, consent, value statements, completion."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from annotations.api_annotate import ParticipantThrottle
from annotations.models import Participant, ValueStatement
from annotations.participants import SESSION_KEY
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db

GOOD = "AI systems should admit uncertainty instead of guessing."
OTHER = "They should respect privacy and never share what I tell them."
PROLIFIC = {"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e", "STUDY_ID": "st123", "SESSION_ID": "se456"}


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def pstudy(db):
    return StudyFactory(
        name="Values study",
        consent_text="We store what you write. <b>Not bold</b>",
        value_questions=["What should AI never do?", "What should AI always do?"],
        statements_min=1,
        statements_max=2,
        prolific_completion_code="C0DE42",
    )


def url(name, study):
    return reverse(name, args=[study.entry_token])


def enter(client, study, params=None):
    return client.get(url("participant_entry", study), params or {})


def consent(client, study):
    return client.post(url("participant_consent", study), {"agree": "yes", "decision": "agree"})


def submit(client, study, *texts):
    data = {f"statement_{i}": t for i, t in enumerate(texts)}
    return client.post(url("participant_statements", study), data)


def test_entry_stores_prolific_ids_and_drops_them_from_the_address(client, pstudy):
    response = enter(client, pstudy, PROLIFIC)
    assert response.status_code == 302
    assert response["Location"] == url("participant_consent", pstudy)
    p = Participant.objects.get()
    assert (p.prolific_pid, p.prolific_study_id, p.prolific_session_id) == (
        PROLIFIC["PROLIFIC_PID"],
        "st123",
        "se456",
    )
    assert p.token not in response["Location"]


def test_entry_link_uses_the_entry_token_never_the_study_id(pstudy):
    link = url("participant_entry", pstudy)
    assert pstudy.entry_token in link
    assert f"/{pstudy.pk}/" not in link


def test_consent_page_shows_the_studys_text_escaped(client, pstudy):
    enter(client, pstudy)
    html = client.get(url("participant_consent", pstudy)).content.decode()
    assert "We store what you write. &lt;b&gt;Not bold&lt;/b&gt;" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<label class="checkbox"><input type="checkbox" name="agree"' in html


def test_consent_needs_the_box_ticked(client, pstudy):
    enter(client, pstudy)
    response = client.post(url("participant_consent", pstudy), {"decision": "agree"})
    assert response.status_code == 400
    assert "Tick the box" in response.content.decode()
    assert Participant.objects.get().consented_at is None


def test_declining_stores_no_consent(client, pstudy):
    enter(client, pstudy, PROLIFIC)
    response = client.post(url("participant_consent", pstudy), {"decision": "decline"})
    assert "return this study on Prolific" in response.content.decode()
    assert Participant.objects.get().consented_at is None


def test_statements_before_consent_go_back_to_consent(client, pstudy):
    enter(client, pstudy)
    response = submit(client, pstudy, GOOD)
    assert response["Location"] == url("participant_consent", pstudy)
    assert not ValueStatement.objects.exists()


def test_full_prolific_flow_ends_at_prolific_with_the_code(client, pstudy):
    enter(client, pstudy, PROLIFIC)
    assert consent(client, pstudy)["Location"] == url("participant_statements", pstudy)
    page = client.get(url("participant_statements", pstudy)).content.decode()
    assert "What should AI never do?" in page
    assert "What should AI always do?" in page
    typed = "  <script>alert('x')</script> Honesty matters more than politeness.  "
    response = submit(client, pstudy, typed, OTHER)
    assert response["Location"] == url("participant_done", pstudy)
    statements = list(ValueStatement.objects.order_by("id"))
    assert [s.text for s in statements] == [typed, OTHER]
    assert [s.question for s in statements] == [
        "What should AI never do?",
        "What should AI always do?",
    ]
    assert all(s.moderation == "pending" for s in statements)
    done = client.get(url("participant_done", pstudy)).content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in done
    assert "<script>alert" not in done
    assert url("participant_finish", pstudy) in done
    # The completion code is on the page as text too.
    assert 'id="completion-code">C0DE42<' in done
    finish = client.get(url("participant_finish", pstudy))
    assert finish.status_code == 302
    assert finish["Location"] == "https://app.prolific.com/submissions/complete?cc=C0DE42"
    assert Participant.objects.get().completed_at is not None


def test_without_prolific_a_plain_thank_you(client, pstudy):
    enter(client, pstudy)
    consent(client, pstudy)
    submit(client, pstudy, GOOD)
    done = client.get(url("participant_done", pstudy)).content.decode()
    assert "You can close this window now." in done
    assert "prolific" not in done.lower()
    assert client.get(url("participant_finish", pstudy))["Location"] == url(
        "participant_done", pstudy
    )


def test_returning_with_the_same_pid_resumes_without_duplicating(pstudy):
    first = Client()
    enter(first, pstudy, PROLIFIC)
    consent(first, pstudy)
    second = Client()  # another browser, same Prolific id
    response = enter(second, pstudy, PROLIFIC)
    assert response["Location"] == url("participant_statements", pstudy)
    assert Participant.objects.count() == 1
    submit(second, pstudy, GOOD)
    assert enter(Client(), pstudy, PROLIFIC)["Location"] == url("participant_done", pstudy)
    assert Participant.objects.count() == 1


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["too short"], "at least 20 characters (this one has 9)"),
        (["x" * 2001], "under 2000 characters"),
        ([""], "Please write between 1 and 2 statements (you wrote 0)"),
    ],
)
def test_statements_out_of_bounds_are_refused_with_clear_messages(client, pstudy, texts, message):
    enter(client, pstudy)
    consent(client, pstudy)
    response = submit(client, pstudy, *texts)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ValueStatement.objects.exists()
    assert Participant.objects.get().completed_at is None


def test_boxes_beyond_the_studys_maximum_are_ignored(client, pstudy):
    pstudy.statements_max = 1
    pstudy.save()
    enter(client, pstudy)
    consent(client, pstudy)
    # A forged third box is ignored: only the study's slots are read.
    response = client.post(
        url("participant_statements", pstudy), {"statement_0": GOOD, "statement_1": OTHER}
    )
    assert response.status_code == 302
    assert ValueStatement.objects.count() == 1


def test_a_second_submission_is_refused_and_changes_nothing(client, pstudy):
    enter(client, pstudy)
    consent(client, pstudy)
    submit(client, pstudy, GOOD)
    response = submit(client, pstudy, OTHER)
    assert response["Location"] == url("participant_done", pstudy)
    assert list(ValueStatement.objects.values_list("text", flat=True)) == [GOOD]


def test_a_participant_token_of_another_study_is_refused(client, pstudy):
    other_study = StudyFactory(name="Other")
    enter(client, other_study)
    foreign = Participant.objects.get(study=other_study)
    session = client.session
    session[SESSION_KEY] = {f"study:{pstudy.pk}": foreign.token}
    session.save()
    response = submit(client, pstudy, GOOD)
    assert response.status_code == 403
    assert "belongs to another study" in response.content.decode()
    assert not ValueStatement.objects.exists()
    api = client.post(
        reverse("api_participant_statements", args=[pstudy.entry_token]),
        {"statements": [{"question": 0, "text": GOOD}]},
        content_type="application/json",
    )
    assert api.status_code == 403
    assert "belongs to another study" in api.json()["detail"]
    assert not ValueStatement.objects.exists()


def test_pages_without_a_session_explain_what_to_do(client, pstudy):
    response = client.get(url("participant_statements", pstudy))
    assert response.status_code == 403
    assert "open the link you were given again" in response.content.decode()


def test_forms_need_the_csrf_token(pstudy):
    client = Client(enforce_csrf_checks=True)
    enter(client, pstudy)
    assert consent(client, pstudy).status_code == 403
    assert Participant.objects.get().consented_at is None


def test_unknown_links_and_closed_studies(client, pstudy):
    assert client.get(reverse("participant_entry", args=["nope"])).status_code == 404
    pstudy.accepting_participants = False
    pstudy.save()
    response = enter(client, pstudy)
    assert response.status_code == 400
    assert "not accepting participants" in response.content.decode()


def test_malformed_prolific_ids_are_refused(client, pstudy):
    response = enter(client, pstudy, {"PROLIFIC_PID": "<script>"})
    assert response.status_code == 400
    assert "PROLIFIC_PID parameter is malformed" in response.content.decode()
    assert not Participant.objects.exists()


def test_public_pages_are_rate_limited_per_participant(client, pstudy, monkeypatch):
    monkeypatch.setattr(ParticipantThrottle, "THROTTLE_RATES", {"participant": "3/min"})
    enter(client, pstudy)
    statuses = [client.get(url("participant_consent", pstudy)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # Someone else is not slowed down by this participant.
    other = Client()
    enter(other, pstudy)
    assert other.get(url("participant_consent", pstudy)).status_code == 200


# --- the same through the API --------------------------------------------------------------


def api_url(study):
    return reverse("api_participant_statements", args=[study.entry_token])


def test_api_lists_questions_and_accepts_statements(client, pstudy):
    enter(client, pstudy, PROLIFIC)
    consent(client, pstudy)
    info = client.get(api_url(pstudy)).json()
    assert info["questions"] == pstudy.value_questions
    assert [s["required"] for s in info["slots"]] == [True, False]
    assert (info["min_chars"], info["max_chars"]) == (20, 2000)
    response = client.post(
        api_url(pstudy),
        {"statements": [{"question": 1, "text": GOOD}]},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["completed"] is True
    assert body["statements"][0]["question"] == "What should AI always do?"


def test_api_refuses_bad_statements_with_field_messages(client, pstudy):
    enter(client, pstudy)
    consent(client, pstudy)
    response = client.post(
        api_url(pstudy),
        {"statements": [{"question": 0, "text": "short"}, {"question": 7, "text": GOOD}]},
        content_type="application/json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "at least 20 characters" in errors["statements.0"]
    assert "does not belong" in errors["statements.1"]
    assert not ValueStatement.objects.exists()


def test_api_needs_csrf_and_a_session(pstudy):
    client = Client(enforce_csrf_checks=True)
    assert client.get(api_url(pstudy)).status_code == 403
    enter(client, pstudy)
    consent_page = client.get(url("participant_consent", pstudy))
    token = consent_page.context["csrf_token"]
    client.post(
        url("participant_consent", pstudy),
        {"agree": "yes", "csrfmiddlewaretoken": str(token)},
    )
    data = {"statements": [{"question": 0, "text": GOOD}]}
    refused = client.post(api_url(pstudy), data, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    ok = client.post(
        api_url(pstudy), data, content_type="application/json", HTTP_X_CSRFTOKEN=str(token)
    )
    assert ok.status_code == 201


def test_api_is_rate_limited(client, pstudy, monkeypatch):
    monkeypatch.setattr(ParticipantThrottle, "THROTTLE_RATES", {"participant": "2/min"})
    enter(client, pstudy)
    codes = [client.get(api_url(pstudy)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
