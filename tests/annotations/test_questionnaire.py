"""The researcher-defined questionnaire: settings validation, the participant step, and
answers stored as attributes that are shown only for groups at the minimum size."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from annotations.models import Participant, PersonAttribute
from annotations.questionnaire import (
    PREFER_NOT,
    QuestionnaireError,
    questionnaire_submit,
    questions_parse,
    questions_validate,
)
from tests.factories import ParticipantFactory, StatementFactory, StudyFactory

pytestmark = pytest.mark.django_db

MINE = "AI systems should admit uncertainty instead of guessing."
QUESTIONS = [
    {"key": "region", "label": "Where do you live?", "options": ["North", "South"]},
    {"key": "faith", "label": "Is religion important to you?", "options": ["Yes", "No"]},
]


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def qstudy(db):
    return StudyFactory(
        statements_min=1,
        statements_max=1,
        min_group_size=2,
        attribute_questions=QUESTIONS,
        prolific_completion_code="C0DE42",
    )


def url(name, study):
    return reverse(name, args=[study.entry_token])


def start(client, study):
    client.get(url("participant_entry", study))
    client.post(url("participant_consent", study), {"agree": "yes", "decision": "agree"})
    return client.post(url("participant_statements", study), {"statement_0": MINE})


# --------------------------------------------------------------------------- settings


def test_parse_reads_one_question_per_line():
    text = "region | Where do you live? | North; South ;East\n\n  faith|Religion?|Yes;No  \n"
    assert questions_parse(text) == [
        {"key": "region", "label": "Where do you live?", "options": ["North", "South", "East"]},
        {"key": "faith", "label": "Religion?", "options": ["Yes", "No"]},
    ]
    assert questions_parse("  \n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("region | Where?", "line 1: write name | question | option"),
        ("Region | Where? | A; B", "lowercase letters, digits and underscores"),
        ("1region | Where? | A; B", "lowercase letters"),
        ("reg-ion | Where? | A; B", "lowercase letters"),
        ("a | Q? | A\nb | Q? | B\na | Q? | C", "line 3: the name “a” is used twice"),
        ("sex | Q? | A; B", "set by the Prolific import"),
        ("age_band | Q? | A; B", "set by the Prolific import"),
        ("a |  | A; B", "the question must have 1 to 300 characters"),
        ("a | Q? | A; ; B", "each option must have 1 to 100 characters"),
        ("a | Q? | " + "; ".join(f"o{i}" for i in range(13)), "give 1 to 12 options"),
        ("a | Q? | Yes; yes", "an option is listed twice"),
        ("a | Q? | Yes; Prefer not to say", "is always offered"),
        ("\n".join(f"k{i} | Q? | A" for i in range(11)), "At most 10 questions"),
    ],
)
def test_parse_refuses_bad_questions_naming_the_line(text, message):
    with pytest.raises(QuestionnaireError, match=message):
        questions_parse(text)


def test_validate_refuses_shapes_that_are_not_questions():
    with pytest.raises(QuestionnaireError, match="must be a list"):
        questions_validate({"key": "a"})
    with pytest.raises(QuestionnaireError, match="question 1: needs a key"):
        questions_validate([{"key": "a", "label": "Q", "options": "A; B"}])


def _settings(study, **extra):
    return {
        "name": study.name,
        "statements_min": 1,
        "statements_max": 2,
        "reason_min_length": 15,
        "participation": "open",
        "consent_text": "ok",
        **extra,
    }


def test_settings_page_saves_and_shows_the_questions(owner_client, study):
    edit = reverse("study_edit", args=[study.pk])
    text = "region | Where do you live? | North; South"
    response = owner_client.post(edit, _settings(study, attribute_questions_text=text))
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.attribute_questions == [
        {"key": "region", "label": "Where do you live?", "options": ["North", "South"]}
    ]
    assert text in owner_client.get(edit).content.decode()


def test_settings_page_refuses_bad_questions_and_keeps_the_old_ones(owner_client, study):
    study.attribute_questions = QUESTIONS
    study.save()
    edit = reverse("study_edit", args=[study.pk])
    response = owner_client.post(edit, _settings(study, attribute_questions_text="Bad Key | Q | A"))
    assert response.status_code == 200
    assert "line 1: the name “Bad Key” must be lowercase" in response.content.decode()
    study.refresh_from_db()
    assert study.attribute_questions == QUESTIONS


def test_strangers_cannot_change_the_questions(stranger_client, study):
    edit = reverse("study_edit", args=[study.pk])
    text = "region | Where? | A; B"
    response = stranger_client.post(edit, _settings(study, attribute_questions_text=text))
    assert response.status_code == 404
    study.refresh_from_db()
    assert study.attribute_questions == []


# --------------------------------------------------------------------------- participants


def test_questions_come_last_and_answers_become_attributes(client, qstudy):
    assert start(client, qstudy)["Location"] == url("participant_about", qstudy)
    participant = Participant.objects.get()
    assert participant.vote_sample == []  # nothing to rate: straight to the questions
    assert participant.completed_at is None
    page = client.get(url("participant_about", qstudy)).content.decode()
    assert "Where do you live?" in page
    assert page.count("Prefer not to say") >= 2
    assert "Step 3 of 4" in page
    response = client.post(
        url("participant_about", qstudy), {"q_region": "1", "q_faith": PREFER_NOT}
    )
    assert response["Location"] == url("participant_done", qstudy)
    participant.refresh_from_db()
    assert participant.completed_at is not None
    rows = list(PersonAttribute.objects.values_list("participant_id", "key", "value", "source"))
    assert rows == [(participant.pk, "region", "South", "questionnaire")]
    # Answered once: the page moves on and a second answer is refused.
    assert client.get(url("participant_about", qstudy))["Location"] == url(
        "participant_done", qstudy
    )
    with pytest.raises(QuestionnaireError, match="already answered"):
        questionnaire_submit(participant=participant, study=qstudy, answers={})


def test_questions_follow_the_ratings(client, qstudy):
    qstudy.vote_sample_size = 1
    qstudy.save()
    StatementFactory(study=qstudy, text="Someone else's approved statement.")
    assert start(client, qstudy)["Location"] == url("participant_votes", qstudy)
    page = client.get(url("participant_votes", qstudy)).content.decode()
    assert "Step 3 of 5" in page
    statement = Participant.objects.filter(vote_sample__isnull=False).get().vote_sample[0]
    response = client.post(
        url("participant_votes", qstudy), {"statement": statement, "vote": "pass"}
    )
    assert response["Location"] == url("participant_about", qstudy)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"q_region": "0"}, "Choose an answer (or “Prefer not to say”)"),
        ({"q_region": "7", "q_faith": "0"}, "That is not one of the answers offered"),
        ({"q_region": "-1", "q_faith": "0"}, "That is not one of the answers offered"),
        ({"q_region": "North", "q_faith": "0"}, "That is not one of the answers offered"),
    ],
)
def test_bad_answers_are_refused_and_store_nothing(client, qstudy, data, message):
    start(client, qstudy)
    response = client.post(url("participant_about", qstudy), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not PersonAttribute.objects.exists()
    assert Participant.objects.get().questionnaire_at is None


def test_answer_form_needs_the_csrf_token(qstudy):
    client = Client(enforce_csrf_checks=True)
    client.get(url("participant_entry", qstudy))
    participant = Participant.objects.get()
    Participant.objects.filter(pk=participant.pk).update(
        consented_at="2026-01-01T00:00:00Z", vote_sample=[]
    )
    StatementFactory(study=qstudy, participant=participant, text=MINE, moderation="pending")
    page = client.get(url("participant_about", qstudy))
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = client.post(url("participant_about", qstudy), {"q_region": "0", "q_faith": "0"})
    assert response.status_code == 403
    assert not PersonAttribute.objects.exists()


def test_no_questions_no_step(client):
    study = StudyFactory(statements_min=1, statements_max=1)
    assert start(client, study)["Location"] == url("participant_done", study)


def test_answers_of_another_study_are_refused(qstudy):
    stranger = ParticipantFactory(consented_at="2026-01-01T00:00:00Z")
    with pytest.raises(QuestionnaireError, match="another study"):
        questionnaire_submit(participant=stranger, study=qstudy, answers={})


# --------------------------------------------------------------------------- privacy


def _answered(study, region, n):
    for _ in range(n):
        p = ParticipantFactory(study=study, consented_at="2026-01-01T00:00:00Z")
        questionnaire_submit(
            participant=p, study=study, answers={"region": region, "faith": PREFER_NOT}
        )


def test_answers_are_shown_aggregated_and_small_groups_never(owner_client, researcher, qstudy):
    from tests.factories import MembershipFactory

    MembershipFactory(user=researcher, study=qstudy, role="researcher")
    qstudy.min_group_size = 3
    qstudy.save()
    _answered(qstudy, "North", 3)
    _answered(qstudy, "South", 2)  # below the minimum
    html = owner_client.get(reverse("study_attributes", args=[qstudy.pk])).content.decode()
    assert "North" in html
    assert "South" not in html
    assert "1 value hidden" in html
    export = owner_client.get(reverse("study_attributes_export", args=[qstudy.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert {r[2] for r in rows[1:]} == {"North"}
    assert len(rows) == 4
    api = owner_client.get(reverse("api_attributes", args=[qstudy.pk])).content.decode()
    assert "North" in api
    assert "South" not in api
