"""Bridging votes: participants rate a seeded sample of others' approved statements."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from annotations.bridging import (
    VoteError,
    vote_progress,
    vote_sample_draw,
    vote_submit,
)
from annotations.models import Participant, StatementVote, ValueStatement
from tests.factories import ParticipantFactory, StatementFactory, StudyFactory

pytestmark = pytest.mark.django_db

MINE = "AI systems should admit uncertainty instead of guessing."
PROLIFIC = {"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e", "STUDY_ID": "st123", "SESSION_ID": "se456"}


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def vstudy(db):
    study = StudyFactory(
        name="Bridging study",
        statements_min=1,
        statements_max=1,
        vote_sample_size=3,
        prolific_completion_code="C0DE42",
    )
    for i in range(6):
        StatementFactory(study=study, text=f"Others' approved statement number {i}.")
    StatementFactory(study=study, text="A pending statement of someone.", moderation="pending")
    StatementFactory(study=study, text="A rejected statement of someone.", moderation="rejected")
    StatementFactory(text="A statement of another study entirely.")
    return study


def url(name, study):
    return reverse(name, args=[study.entry_token])


def start(client, study, params=None):
    client.get(url("participant_entry", study), params or {})
    client.post(url("participant_consent", study), {"agree": "yes", "decision": "agree"})
    return client.post(url("participant_statements", study), {"statement_0": MINE})


def me():
    return Participant.objects.order_by("-pk").first()


def shown_id(response) -> int:
    html = response.content.decode()
    marker = 'name="statement" value="'
    return int(html.split(marker, 1)[1].split('"', 1)[0])


# --------------------------------------------------------------------------- models


def test_one_vote_per_participant_and_statement_in_the_database(vstudy):
    participant = ParticipantFactory(study=vstudy)
    statement = ValueStatement.objects.filter(study=vstudy).first()
    StatementVote.objects.create(participant=participant, statement=statement, vote="agree")
    with pytest.raises(IntegrityError), transaction.atomic():
        StatementVote.objects.create(participant=participant, statement=statement, vote="pass")


def test_vote_value_is_checked_by_the_database(vstudy):
    participant = ParticipantFactory(study=vstudy)
    statement = ValueStatement.objects.filter(study=vstudy).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        StatementVote.objects.create(participant=participant, statement=statement, vote="maybe")


# --------------------------------------------------------------------------- sample


def test_sample_is_approved_statements_of_others_in_this_study_only(vstudy):
    participant = ParticipantFactory(study=vstudy)
    own = StatementFactory(study=vstudy, participant=participant, text=MINE)
    vstudy.vote_sample_size = 50
    sample = vote_sample_draw(participant=participant, study=vstudy)
    allowed = set(
        ValueStatement.objects.filter(study=vstudy, moderation="approved")
        .exclude(pk=own.pk)
        .values_list("pk", flat=True)
    )
    assert set(sample) == allowed
    assert len(sample) == 6


def test_sample_is_seeded_per_participant_and_stored(vstudy):
    participant = ParticipantFactory(study=vstudy)
    first = vote_sample_draw(participant=participant, study=vstudy)
    assert len(first) == 3
    # A later approval does not reshuffle a drawn sample.
    StatementFactory(study=vstudy, text="Approved after the draw.")
    participant.refresh_from_db()
    assert vote_sample_draw(participant=participant, study=vstudy) == first
    # The same participant drawing from scratch gets the same sample (seeded) ...
    participant.vote_sample = None
    StatementFactory(study=vstudy, text="x" * 30, moderation="rejected")
    ValueStatement.objects.filter(text="Approved after the draw.").delete()
    assert vote_sample_draw(participant=participant, study=vstudy) == first
    # ... and participants differ from one another.
    samples = {
        tuple(vote_sample_draw(participant=ParticipantFactory(study=vstudy), study=vstudy))
        for _ in range(8)
    }
    assert len(samples) > 1


def test_sample_size_zero_turns_the_step_off(client, vstudy):
    vstudy.vote_sample_size = 0
    vstudy.save()
    response = start(client, vstudy)
    assert response["Location"] == url("participant_done", vstudy)
    assert me().completed_at is not None
    assert me().vote_sample == []


def test_no_statements_of_others_skips_the_step(client):
    study = StudyFactory(statements_min=1, statements_max=1)
    assert start(client, study)["Location"] == url("participant_done", study)


# --------------------------------------------------------------------------- flow


def test_flow_rates_each_sampled_statement_then_completes(client, vstudy):
    response = start(client, vstudy, PROLIFIC)
    assert response["Location"] == url("participant_votes", vstudy)
    participant = me()
    assert participant.completed_at is None  # no completion code before the ratings
    assert client.get(url("participant_done", vstudy))["Location"] == url(
        "participant_votes", vstudy
    )
    seen = []
    for i, vote in enumerate(["agree", "pass", "disagree"]):
        page = client.get(url("participant_votes", vstudy))
        assert page.status_code == 200
        html = page.content.decode()
        assert f"Statement {i + 1} of 3" in html
        assert "Step 3 of 4" in html
        assert MINE not in html
        seen.append(shown_id(page))
        response = client.post(
            url("participant_votes", vstudy), {"statement": seen[-1], "vote": vote}
        )
        assert response.status_code == 302
    assert response["Location"] == url("participant_done", vstudy)
    participant.refresh_from_db()
    assert participant.completed_at is not None
    assert seen == participant.vote_sample
    votes = dict(participant.votes.values_list("statement_id", "vote"))
    assert votes == dict(zip(seen, ["agree", "pass", "disagree"], strict=True))
    assert "C0DE42" in client.get(url("participant_done", vstudy)).content.decode()


def test_reload_shows_the_same_statement_and_resumes_after_leaving(client, vstudy):
    start(client, vstudy, PROLIFIC)
    first = shown_id(client.get(url("participant_votes", vstudy)))
    assert shown_id(client.get(url("participant_votes", vstudy))) == first
    client.post(url("participant_votes", vstudy), {"statement": first, "vote": "agree"})
    second = shown_id(client.get(url("participant_votes", vstudy)))
    assert second != first
    # Back later in another browser with Prolific's proof: continues at the second one.
    other = Client()
    response = other.get(url("participant_entry", vstudy), PROLIFIC)
    assert response["Location"] == url("participant_votes", vstudy)
    page = other.get(url("participant_votes", vstudy))
    assert shown_id(page) == second
    assert "Statement 2 of 3" in page.content.decode()


def test_a_statement_rejected_after_the_draw_is_not_asked(client, vstudy):
    start(client, vstudy)
    participant = me()
    dropped = participant.vote_sample[0]
    ValueStatement.objects.filter(pk=dropped).update(moderation="rejected")
    page = client.get(url("participant_votes", vstudy))
    assert shown_id(page) == participant.vote_sample[1]
    assert "Statement 1 of 2" in page.content.decode()
    response = client.post(
        url("participant_votes", vstudy), {"statement": dropped, "vote": "agree"}
    )
    assert response.status_code == 409
    assert not StatementVote.objects.exists()


def test_bad_votes_are_refused_with_messages_and_store_nothing(client, vstudy):
    start(client, vstudy)
    participant = me()
    own = participant.statements.get()
    own.moderation = "approved"
    own.save()
    sampled = participant.vote_sample[0]
    foreign = ValueStatement.objects.exclude(study=vstudy).get().pk
    not_drawn = (
        ValueStatement.objects.filter(study=vstudy, moderation="approved")
        .exclude(pk__in=participant.vote_sample)
        .exclude(participant=participant)
        .first()
        .pk
    )
    cases = [
        ({"statement": sampled, "vote": "maybe"}, 400, "Choose agree, disagree or pass"),
        ({"statement": sampled}, 400, "Choose agree, disagree or pass"),
        ({"statement": "abc", "vote": "agree"}, 400, "Unknown statement"),
        ({"statement": "99999999999999999999", "vote": "agree"}, 400, "Unknown statement"),
        ({"statement": own.pk, "vote": "agree"}, 409, "not one of those you were asked"),
        ({"statement": foreign, "vote": "agree"}, 409, "not one of those you were asked"),
        ({"statement": not_drawn, "vote": "agree"}, 409, "not one of those you were asked"),
    ]
    for data, status, message in cases:
        response = client.post(url("participant_votes", vstudy), data)
        assert response.status_code == status, data
        assert message in response.content.decode(), data
    assert not StatementVote.objects.exists()


def test_a_repeated_vote_changes_the_one_row(vstudy):
    participant = ParticipantFactory(study=vstudy, consented_at="2026-01-01T00:00:00Z")
    StatementFactory(study=vstudy, participant=participant, text=MINE, moderation="pending")
    sample = vote_sample_draw(participant=participant, study=vstudy)
    vote_submit(participant=participant, statement_id=sample[0], vote="agree")
    vote_submit(participant=participant, statement_id=str(sample[0]), vote="disagree")
    assert list(participant.votes.values_list("vote", flat=True)) == ["disagree"]
    assert vote_progress(participant=participant).done == 1


def test_votes_after_finishing_are_refused(vstudy):
    participant = ParticipantFactory(study=vstudy, consented_at="2026-01-01T00:00:00Z")
    sample = vote_sample_draw(participant=participant, study=vstudy)
    Participant.objects.filter(pk=participant.pk).update(completed_at="2026-01-02T00:00:00Z")
    with pytest.raises(VoteError, match="already finished"):
        vote_submit(participant=participant, statement_id=sample[0], vote="agree")


def test_votes_before_own_statements_are_refused(client, vstudy):
    client.get(url("participant_entry", vstudy))
    client.post(url("participant_consent", vstudy), {"agree": "yes", "decision": "agree"})
    response = client.get(url("participant_votes", vstudy))
    assert response["Location"] == url("participant_statements", vstudy)
    statement = ValueStatement.objects.filter(study=vstudy, moderation="approved").first()
    with pytest.raises(VoteError, match="own statements first"):
        vote_submit(participant=me(), statement_id=statement.pk, vote="agree")


def test_vote_form_needs_the_csrf_token(vstudy):
    client = Client(enforce_csrf_checks=True)
    client.get(url("participant_entry", vstudy))
    participant = me()
    Participant.objects.filter(pk=participant.pk).update(consented_at="2026-01-01T00:00:00Z")
    StatementFactory(study=vstudy, participant=participant, text=MINE, moderation="pending")
    page = client.get(url("participant_votes", vstudy))
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = client.post(
        url("participant_votes", vstudy), {"statement": shown_id(page), "vote": "agree"}
    )
    assert response.status_code == 403
    assert not StatementVote.objects.exists()


def test_votes_page_without_a_session_is_refused(client, vstudy):
    response = client.get(url("participant_votes", vstudy))
    assert response.status_code == 403


def test_statements_api_names_the_votes_step(client, vstudy):
    client.get(url("participant_entry", vstudy))
    client.post(url("participant_consent", vstudy), {"agree": "yes", "decision": "agree"})
    api = reverse("api_participant_statements", args=[vstudy.entry_token])
    response = client.post(
        api, {"statements": [{"question": 0, "text": MINE}]}, content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["next_step"] == "votes"
    assert response.json()["completed"] is False


# --------------------------------------------------------------------------- researchers


def test_moderation_page_shows_totals_only(owner_client, study):
    statement = StatementFactory(study=study, text="Be honest about limitations.")
    voters = [ParticipantFactory(study=study, prolific_pid=f"PIDVOTER{i}") for i in range(4)]
    for voter, vote in zip(voters, ["agree", "agree", "disagree", "pass"], strict=True):
        StatementVote.objects.create(participant=voter, statement=statement, vote=vote)
    html = owner_client.get(
        reverse("moderation_queue", args=[study.pk]), {"state": "approved"}
    ).content.decode()
    assert "2 agree · 1 disagree · 1 pass" in html
    for voter in voters:
        assert voter.pseudonym not in html
        assert voter.prolific_pid not in html


def test_votes_export_names_voters_by_pseudonym_only(owner_client, study):
    statement = StatementFactory(study=study, text="Be honest about limitations.")
    voter = ParticipantFactory(study=study, prolific_pid="PIDSECRET1")
    StatementVote.objects.create(participant=voter, statement=statement, vote="disagree")
    StatementVote.objects.create(
        participant=ParticipantFactory(), statement=StatementFactory(), vote="agree"
    )  # another study's vote
    response = owner_client.get(reverse("study_export_votes", args=[study.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["statement_id", "statement_author", "voter", "vote", "voted_at"]
    assert [r[:4] for r in rows[1:]] == [
        [str(statement.pk), statement.participant.pseudonym, voter.pseudonym, "disagree"]
    ]
    assert "PIDSECRET1" not in body


def test_strangers_get_no_votes(stranger_client, study):
    StatementVote.objects.create(
        participant=ParticipantFactory(study=study),
        statement=StatementFactory(study=study),
        vote="agree",
    )
    assert stranger_client.get(reverse("study_export_votes", args=[study.pk])).status_code == 404


def test_study_form_limits_the_sample_size(owner_client, study):
    data = {
        "name": "x",
        "statements_min": 1,
        "statements_max": 2,
        "reason_min_length": 15,
        "participation": "open",
        "consent_text": "ok",
        "vote_sample_size": 51,
    }
    response = owner_client.post(reverse("study_edit", args=[study.pk]), data)
    assert "At most 50 statements per participant" in response.content.decode()
    study.refresh_from_db()
    assert study.vote_sample_size == 10
    data["vote_sample_size"] = 0
    assert owner_client.post(reverse("study_edit", args=[study.pk]), data).status_code == 302
    study.refresh_from_db()
    assert study.vote_sample_size == 0


# --------------------------------------------------------------------------- participant API


def test_the_participant_api_rates_the_sample_then_answers_the_questions(vstudy):
    vstudy.attribute_questions = [
        {"key": "region", "label": "Where do you live?", "options": ["North", "South"]}
    ]
    vstudy.save(update_fields=["attribute_questions"])
    client = Client()
    start(client, vstudy, PROLIFIC)
    votes_url = reverse("api_participant_votes", args=[vstudy.entry_token])
    about_url = reverse("api_participant_about", args=[vstudy.entry_token])

    # The questions are not open before the ratings are done.
    early = client.post(about_url, {"answers": {"region": "North"}}, "application/json")
    assert early.status_code == 409
    assert early.json()["code"] == "not_this_step"

    state = client.get(votes_url).json()
    assert (state["next_step"], state["total"], state["done"]) == ("votes", 3, 0)
    bad = client.post(
        votes_url, {"statement": state["statement"]["id"], "vote": "maybe"}, "application/json"
    )
    assert bad.status_code == 400
    own = ValueStatement.objects.get(text=MINE)
    refused = client.post(votes_url, {"statement": own.pk, "vote": "agree"}, "application/json")
    assert refused.status_code == 409
    assert StatementVote.objects.count() == 0
    seen = []
    while state["statement"] is not None:
        seen.append(state["statement"]["id"])
        state = client.post(
            votes_url, {"statement": state["statement"]["id"], "vote": "agree"}, "application/json"
        ).json()
    assert len(set(seen)) == 3
    assert own.pk not in seen
    assert state["next_step"] == "about"
    assert StatementVote.objects.filter(participant=me()).count() == 3

    questions = client.get(about_url).json()
    assert questions["questions"][0]["options"] == ["North", "South"]
    unknown = client.post(about_url, {"answers": {"region": "East"}}, "application/json")
    assert unknown.status_code == 400
    done = client.post(about_url, {"answers": {"region": "South"}}, "application/json")
    assert done.status_code == 201
    assert done.json()["next_step"] == "done"
    assert me().completed_at is not None
    assert me().attributes.get(key="region").value == "South"
    again = client.post(about_url, {"answers": {"region": "North"}}, "application/json")
    assert again.status_code == 409


def test_the_participant_api_needs_the_participants_own_session(vstudy):
    start(Client(), vstudy, PROLIFIC)
    stranger = Client()
    for name in ("api_participant_votes", "api_participant_about"):
        response = stranger.get(reverse(name, args=[vstudy.entry_token]))
        assert response.status_code in (401, 403)
