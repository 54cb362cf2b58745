"""The pair screen as a page (also usable without JavaScript)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Annotation, PairAssignment
from tests.factories import DatasetFactory, PairFactory

pytestmark = pytest.mark.django_db

REASON = "More accurate and it cites its source."


@pytest.fixture
def dataset(study):
    return DatasetFactory(study=study, annotation_overlap=1)


@pytest.fixture
def ann_client(client, annotator):
    client.force_login(annotator)
    return client


def page(study):
    return reverse("annotate", args=[study.pk])


def test_pair_screen_shows_prompt_responses_choices_and_shortcuts(ann_client, study, dataset):
    PairFactory(dataset=dataset, prompt="Explain *tides*", response_a="Moon.", response_b="Sun.")
    html = ann_client.get(page(study)).content.decode()
    assert "<em>tides</em>" in html
    assert "Moon." in html
    assert "Sun." in html
    for label in ("A is better", "B is better", "Tie"):
        assert label in html
    assert "Ctrl</kbd>+<kbd>Enter" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'for="reason"' in html  # the reason box has a label
    assert "at least 15 characters" in html
    assert "js/annotate.js" in html
    assert '<strong id="progress-left">1</strong> left for you (including this one)' in html
    assert "Stop for now" in html


def test_pair_screen_names_no_model_source_or_side(ann_client, study):
    dataset = DatasetFactory(study=study, name="alpacaeval gpt4 vs mistral", annotation_overlap=1)
    PairFactory(
        dataset=dataset,
        external_id="Mistral-7B-Instruct-v0.2-6",
        metadata={"generator_a": "gpt-4-turbo", "generator_b": "Mistral-7B-Instruct-v0.2"},
    )
    html = ann_client.get(page(study)).content.decode()
    for secret in ("Mistral", "gpt-4", "alpacaeval", "shown_swapped", "response_a"):
        assert secret not in html
    assert ">Prompt</h2>" in html


def test_progress_shows_a_sliver_and_less_than_one_percent_after_the_first_of_many(
    ann_client, study, dataset, annotator
):
    from annotations import queue

    pairs = [PairFactory(dataset=dataset) for _ in range(201)]
    queue.pair_next_for_annotator(user=annotator, study=study)
    leased = PairAssignment.objects.get(annotator=annotator).pair_id
    queue.annotation_submit(
        user=annotator, study=study, pair_id=leased, choice="first", reason=REASON
    )
    html = ann_client.get(page(study)).content.decode()
    assert len(pairs) == 201
    assert '<strong id="progress-done">1</strong> done' in html
    assert '<strong id="progress-left">200</strong> left for you' in html
    assert "&lt;1%" in html
    assert 'class="started"' in html


def test_submitting_without_javascript_confirms_the_save(ann_client, study, dataset):
    pair = PairFactory(dataset=dataset)
    PairFactory(dataset=dataset)
    ann_client.get(page(study))
    response = ann_client.post(
        page(study),
        {"pair_id": pair.pk, "choice": "first", "reason": REASON, "action": "submit"},
        follow=True,
    )
    assert "Saved: your judgement on the last pair is recorded." in response.content.decode()


def test_screen_order_follows_the_recorded_lease(ann_client, study, dataset):
    PairFactory(dataset=dataset, response_a="ALPHA-TEXT", response_b="BETA-TEXT")
    html = ann_client.get(page(study)).content.decode()
    swapped = PairAssignment.objects.get().shown_swapped
    assert (html.index("ALPHA-TEXT") > html.index("BETA-TEXT")) is swapped


def test_chat_turns_are_rendered_with_their_roles(ann_client, study, dataset):
    PairFactory(
        dataset=dataset,
        prompt="fallback",
        prompt_messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi **there**"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "And now?"},
        ],
    )
    html = ann_client.get(page(study)).content.decode()
    assert "turn-system" in html
    assert "turn-assistant" in html
    assert "Hi <strong>there</strong>" in html
    assert "fallback" not in html


def test_scripts_in_datasets_never_reach_the_page(ann_client, study, dataset):
    PairFactory(
        dataset=dataset,
        prompt="<script>alert('p')</script>",
        response_a="<script>alert('a')</script>",
        response_b='<a href="javascript:alert(1)">x</a>',
    )
    html = ann_client.get(page(study)).content.decode()
    assert "alert('p')</script>" not in html
    assert "<script>alert" not in html
    assert '<a href="javascript' not in html


def test_form_submission_without_javascript(ann_client, study, dataset):
    pair = PairFactory(dataset=dataset)
    ann_client.get(page(study))
    response = ann_client.post(
        page(study), {"pair_id": pair.pk, "choice": "second", "reason": REASON, "action": "submit"}
    )
    assert response.status_code == 302
    annotation = Annotation.objects.get()
    swapped = PairAssignment.objects.get().shown_swapped
    assert annotation.preferred == ("a" if swapped else "b")


def test_short_reason_is_refused_and_the_text_kept(ann_client, study, dataset):
    pair = PairFactory(dataset=dataset)
    ann_client.get(page(study))
    response = ann_client.post(
        page(study), {"pair_id": pair.pk, "choice": "first", "reason": "<b>short</b>"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "at least 15 characters" in html
    assert "&lt;b&gt;short&lt;/b&gt;" in html  # kept, escaped
    assert 'value="first"' in html
    assert "checked" in html
    assert not Annotation.objects.exists()


def test_skip_and_flag_from_the_page(ann_client, study, dataset):
    p1, p2 = PairFactory(dataset=dataset), PairFactory(dataset=dataset)
    ann_client.get(page(study))
    ann_client.post(page(study), {"pair_id": p1.pk, "action": "skip"}, follow=True)
    ann_client.post(page(study), {"pair_id": p2.pk, "action": "flag", "note": "unreadable"})
    statuses = dict(PairAssignment.objects.values_list("pair_id", "status"))
    assert statuses == {p1.pk: "skipped", p2.pk: "flagged"}
    html = ann_client.get(page(study)).content.decode()
    assert "Nothing left to label" in html


def test_a_pair_not_leased_to_the_caller_is_refused_on_the_page(ann_client, study, dataset):
    p1, p2 = PairFactory(dataset=dataset), PairFactory(dataset=dataset)
    ann_client.get(page(study))
    response = ann_client.post(page(study), {"pair_id": p2.pk, "choice": "first", "reason": REASON})
    assert response.status_code == 409
    assert "not assigned to you" in response.content.decode()
    assert not Annotation.objects.exists()
    assert p1.pk


def test_researcher_is_sent_to_the_dashboard_with_an_explanation(owner_client, study, dataset):
    PairFactory(dataset=dataset)
    response = owner_client.get(page(study), follow=True)
    assert response.redirect_chain[-1][0] == reverse("study_detail", args=[study.pk])
    assert "Only annotators label pairs" in response.content.decode()
    assert not PairAssignment.objects.exists()


def test_home_links_annotators_to_the_pair_screen(ann_client, study):
    html = ann_client.get(reverse("home")).content.decode()
    assert page(study) in html
