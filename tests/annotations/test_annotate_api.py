"""The annotator API: next, submit, skip, flag, progress."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotations.models import Annotation, AssignmentStatus, PairAssignment, Role
from tests.factories import DatasetFactory, MembershipFactory, PairFactory, UserFactory

pytestmark = pytest.mark.django_db

REASON = "Clearer, and it answers the question asked."


@pytest.fixture
def pairs(study):
    dataset = DatasetFactory(study=study, annotation_overlap=1, name="Mistral vs GPT-4 slice")
    return [
        PairFactory(
            dataset=dataset,
            external_id=f"Mistral-7B-Instruct-v0.2-{i}",
            response_a=f"Alpha answer {i}",
            response_b=f"Beta answer {i}",
        )
        for i in range(3)
    ]


@pytest.fixture
def ann_client(client, annotator):
    client.force_login(annotator)
    return client


def url(name, study):
    return reverse(name, args=[study.pk])


def post(client, name, study, data=None):
    return client.post(url(name, study), data or {}, content_type="application/json")


def test_next_shows_the_pair_in_screen_order_without_saying_which_is_a(ann_client, study, pairs):
    response = post(ann_client, "api_annotate_next", study)
    assert response.status_code == 200
    body = response.json()
    pair = body["pair"]
    assignment = PairAssignment.objects.get()
    expected_first = "Beta" if assignment.shown_swapped else "Alpha"
    assert pair["first"]["text"].startswith(expected_first)
    assert "shown_swapped" not in pair
    assert "response_a" not in pair
    # Row ids and dataset names can name the models or the source under comparison.
    assert "external_id" not in pair
    assert "dataset" not in pair
    assert "Mistral" not in response.content.decode()
    assert body["progress"]["in_progress"] == 1


def test_next_returns_null_when_nothing_is_left(ann_client, study):
    response = post(ann_client, "api_annotate_next", study)
    assert response.status_code == 200
    assert response.json()["pair"] is None


def test_submit_stores_the_choice_in_pair_terms(ann_client, study, pairs):
    pair_id = post(ann_client, "api_annotate_next", study).json()["pair"]["pair_id"]
    PairAssignment.objects.update(shown_swapped=True)
    response = post(
        ann_client,
        "api_annotate_submit",
        study,
        {"pair_id": pair_id, "screen_choice": "first", "reason": REASON},
    )
    assert response.status_code == 201, response.content
    # The reply echoes the choice as seen: the pair's a/b terms would reveal the side.
    assert response.json()["screen_choice"] == "first"
    assert "preferred" not in response.json()
    assert "shown_swapped" not in response.json()
    assert post(ann_client, "api_annotate_next", study).json()["progress"]["done"] == 1
    assert Annotation.objects.get().preferred == "b"


def test_submit_refuses_a_pair_not_leased_to_the_caller(ann_client, study, pairs):
    response = post(
        ann_client,
        "api_annotate_submit",
        study,
        {"pair_id": pairs[1].pk, "screen_choice": "first", "reason": REASON},
    )
    assert response.status_code == 409
    assert response.json() == {"detail": "This pair is not assigned to you.", "code": "not_leased"}
    assert not Annotation.objects.exists()


def test_submit_refuses_a_duplicate_with_a_clear_message(ann_client, study, pairs):
    pair_id = post(ann_client, "api_annotate_next", study).json()["pair"]["pair_id"]
    data = {"pair_id": pair_id, "screen_choice": "first", "reason": REASON}
    assert post(ann_client, "api_annotate_submit", study, data).status_code == 201
    again = post(ann_client, "api_annotate_submit", study, {**data, "screen_choice": "second"})
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate"
    assert Annotation.objects.get().preferred in ("a", "b")


def test_submit_refuses_a_short_reason(ann_client, study, pairs):
    pair_id = post(ann_client, "api_annotate_next", study).json()["pair"]["pair_id"]
    response = post(
        ann_client,
        "api_annotate_submit",
        study,
        {"pair_id": pair_id, "screen_choice": "first", "reason": "meh"},
    )
    assert response.status_code == 400
    assert "at least 15 characters" in response.json()["detail"]
    assert not Annotation.objects.exists()


def test_submit_refuses_an_unknown_choice(ann_client, study, pairs):
    pair_id = post(ann_client, "api_annotate_next", study).json()["pair"]["pair_id"]
    response = post(
        ann_client,
        "api_annotate_submit",
        study,
        {"pair_id": pair_id, "screen_choice": "a", "reason": REASON},
    )
    assert response.status_code == 400
    assert "screen_choice" in response.json()


def test_skip_and_flag(ann_client, study, pairs):
    first = post(ann_client, "api_annotate_next", study).json()["pair"]["pair_id"]
    skipped = post(ann_client, "api_annotate_skip", study, {"pair_id": first})
    assert skipped.status_code == 200
    assert skipped.json()["status"] == "skipped"
    second = post(ann_client, "api_annotate_next", study).json()["pair"]["pair_id"]
    assert second != first
    flagged = post(
        ann_client, "api_annotate_flag", study, {"pair_id": second, "note": "Broken markup"}
    )
    assert flagged.json()["status"] == "flagged"
    assert PairAssignment.objects.get(pair_id=second).note == "Broken markup"
    again = post(ann_client, "api_annotate_skip", study, {"pair_id": second})
    assert again.status_code == 409


def test_progress(ann_client, study, pairs):
    response = ann_client.get(url("api_annotate_progress", study))
    assert response.json()["total"] == 3
    assert response.json()["available"] == 3


def test_a_researcher_who_does_not_annotate_is_refused_with_a_message(owner_client, study, pairs):
    response = post(owner_client, "api_annotate_next", study)
    assert response.status_code == 403
    assert "Only annotators" in response.json()["detail"]
    assert not PairAssignment.objects.exists()


def test_strangers_and_anonymous_are_refused(client, study, pairs, other_researcher):
    assert post(client, "api_annotate_next", study).status_code in (401, 403)
    client.force_login(other_researcher)
    assert post(client, "api_annotate_next", study).status_code == 404
    stranger_annotator = UserFactory(username="elsewhere")
    MembershipFactory(user=stranger_annotator, role=Role.ANNOTATOR)  # of another study
    client.force_login(stranger_annotator)
    assert post(client, "api_annotate_next", study).status_code == 404
    assert not PairAssignment.objects.exists()


def test_session_requests_need_the_csrf_token(study, annotator, pairs):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    response = post(client, "api_annotate_next", study)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not PairAssignment.objects.exists()


def test_untrusted_markdown_is_rendered_without_markup(ann_client, study):
    dataset = DatasetFactory(study=study)
    PairFactory(
        dataset=dataset,
        prompt="Write **bold** <script>alert(1)</script>",
        response_a="```python\nprint('<b>hi</b>')\n```",
        response_b='<img src=x onerror="alert(2)"> [link](javascript:alert(3))',
    )
    pair = post(ann_client, "api_annotate_next", study).json()["pair"]
    assert "<strong>bold</strong>" in pair["prompt_html"]
    assert "<script>" not in pair["prompt_html"]
    htmls = pair["first"]["html"] + pair["second"]["html"]
    assert '<code class="language-python">' in htmls
    assert "&lt;b&gt;hi&lt;/b&gt;" in htmls
    assert "<img" not in htmls
    assert "javascript:" not in htmls.replace("[link](javascript:alert(3))", "")
    assert 'href="javascript' not in htmls


def test_annotation_status_after_submit_is_recorded(ann_client, study, pairs):
    pair_id = post(ann_client, "api_annotate_next", study).json()["pair"]["pair_id"]
    post(
        ann_client,
        "api_annotate_submit",
        study,
        {"pair_id": pair_id, "screen_choice": "tie", "reason": REASON},
    )
    assert PairAssignment.objects.get(pair_id=pair_id).status == AssignmentStatus.SUBMITTED
