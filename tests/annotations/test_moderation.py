"""Moderation of value statements: page, bulk actions, API, and the service's rules."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Moderation, ValueStatement
from annotations.statements import StatementError, StatementInput, statements_submit
from tests.factories import ParticipantFactory, StatementFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(study):
    return [
        StatementFactory(study=study, moderation="pending", text=f"Statement number {i} <i>x</i>")
        for i in range(3)
    ]


def page(study, **query):
    base = reverse("moderation_queue", args=[study.pk])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_queue_lists_pending_statements_escaped(owner_client, study, pending):
    StatementFactory(study=study, moderation="approved", text="Already approved statement")
    html = owner_client.get(page(study)).content.decode()
    assert "Statement number 0 &lt;i&gt;x&lt;/i&gt;" in html
    assert "Already approved statement" not in html
    assert "Pending (3)" in html
    assert "Approved (1)" in html


def test_bulk_approve_and_single_reject(owner_client, study, pending, researcher):
    response = owner_client.post(
        page(study), {"action": "approved", "ids": [pending[0].pk, pending[1].pk]}, follow=True
    )
    assert "2 statements approved." in response.content.decode()
    owner_client.post(page(study), {"action": f"rejected:{pending[2].pk}"})
    states = dict(ValueStatement.objects.values_list("pk", "moderation"))
    assert states == {
        pending[0].pk: "approved",
        pending[1].pk: "approved",
        pending[2].pk: "rejected",
    }
    assert ValueStatement.objects.filter(moderated_by=researcher).count() == 3


def test_bulk_with_a_statement_of_another_study_changes_nothing(owner_client, study, pending):
    foreign = StatementFactory(study=StudyFactory(), moderation="pending")
    response = owner_client.post(
        page(study), {"action": "approved", "ids": [pending[0].pk, foreign.pk]}, follow=True
    )
    assert "Not statements of this study" in response.content.decode()
    assert not ValueStatement.objects.filter(moderation="approved").exists()


def test_nothing_selected_is_explained(owner_client, study, pending):
    response = owner_client.post(page(study), {"action": "approved"}, follow=True)
    assert "Select at least one statement." in response.content.decode()


def test_strangers_cannot_moderate(stranger_client, study, pending):
    response = stranger_client.post(page(study), {"action": f"approved:{pending[0].pk}"})
    assert response.status_code == 404
    assert not ValueStatement.objects.filter(moderation="approved").exists()


# --- API -----------------------------------------------------------------------------------


def test_api_lists_statements_by_state_without_n_plus_one(
    owner_client, study, django_assert_max_num_queries
):
    for i in range(30):
        StatementFactory(study=study, moderation="pending" if i % 3 else "approved")
    url = reverse("api_statements", args=[study.pk])
    with django_assert_max_num_queries(6):
        response = owner_client.get(url, {"moderation": "pending"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 20
    assert {s["moderation"] for s in body["results"]} == {"pending"}
    assert body["results"][0]["participant"].startswith("P-")


def test_api_bulk_and_single_moderation(owner_client, study, pending):
    bulk = owner_client.post(
        reverse("api_statements_moderate", args=[study.pk]),
        {"ids": [pending[0].pk, pending[1].pk], "moderation": "rejected"},
        content_type="application/json",
    )
    assert bulk.json() == {"updated": 2, "moderation": "rejected"}
    one = owner_client.patch(
        reverse("api_statement_moderate", args=[study.pk, pending[0].pk]),
        {"moderation": "approved"},
        content_type="application/json",
    )
    assert one.status_code == 200
    assert ValueStatement.objects.get(pk=pending[0].pk).moderation == Moderation.APPROVED


def test_api_refuses_statements_of_another_study(owner_client, study, pending):
    foreign = StatementFactory(study=StudyFactory(), moderation="pending")
    response = owner_client.patch(
        reverse("api_statement_moderate", args=[study.pk, foreign.pk]),
        {"moderation": "approved"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert ValueStatement.objects.get(pk=foreign.pk).moderation == "pending"


def test_api_refuses_an_unknown_state(owner_client, study, pending):
    response = owner_client.post(
        reverse("api_statements_moderate", args=[study.pk]),
        {"ids": [pending[0].pk], "moderation": "maybe"},
        content_type="application/json",
    )
    assert response.status_code == 400


# --- the submission service's rules ----------------------------------------------------------


def test_submit_refuses_more_statements_than_the_study_allows(study):
    participant = ParticipantFactory(study=study)
    participant.consented_at = participant.created_at
    participant.save()
    items = [StatementInput(question=0, text="A" * 25) for _ in range(study.statements_max + 1)]
    with pytest.raises(StatementError) as exc:
        statements_submit(participant=participant, study=study, items=items)
    assert exc.value.code == "count"
    assert not ValueStatement.objects.exists()


def test_submit_refuses_a_participant_of_another_study(study):
    participant = ParticipantFactory(study=StudyFactory())
    with pytest.raises(StatementError) as exc:
        statements_submit(participant=participant, study=study, items=[StatementInput(0, "B" * 30)])
    assert exc.value.code == "wrong_study"
    assert not ValueStatement.objects.exists()


def test_queue_page_does_not_query_per_statement(
    owner_client, study, django_assert_max_num_queries
):
    for _ in range(40):
        StatementFactory(study=study, moderation="pending")
    with django_assert_max_num_queries(8):
        response = owner_client.get(page(study))
    assert response.content.decode().count('name="ids"') == 40


def test_the_last_moderation_can_be_undone(owner_client, study, pending):
    ValueStatement.objects.filter(pk=pending[2].pk).update(moderation="rejected")
    response = owner_client.post(
        page(study),
        {"action": "approved", "ids": [pending[0].pk, pending[2].pk]},
        follow=True,
    )
    html = response.content.decode()
    assert 'id="undo-form"' in html
    assert "Undo the last change (2 statements approved)." in html
    response = owner_client.post(page(study), {"action": "undo"}, follow=True)
    assert "Undone: 2 statements approved" in response.content.decode()
    states = dict(ValueStatement.objects.values_list("pk", "moderation"))
    assert states == {
        pending[0].pk: "pending",
        pending[1].pk: "pending",
        pending[2].pk: "rejected",
    }
    # One undo per change: a second one has nothing left to undo.
    again = owner_client.post(page(study), {"action": "undo"}, follow=True)
    assert "Nothing to undo." in again.content.decode()
    assert 'id="undo-form"' not in again.content.decode()


def test_undo_is_kept_per_study(owner_client, study, pending, researcher):
    from tests.factories import MembershipFactory

    other = StudyFactory(name="Second study")
    MembershipFactory(user=researcher, study=other, role="researcher")
    theirs = StatementFactory(study=other, moderation="pending")
    owner_client.post(page(study), {"action": f"approved:{pending[0].pk}"})
    response = owner_client.post(page(other), {"action": "undo"}, follow=True)
    assert "Nothing to undo." in response.content.decode()
    assert ValueStatement.objects.get(pk=pending[0].pk).moderation == "approved"
    assert ValueStatement.objects.get(pk=theirs.pk).moderation == "pending"
