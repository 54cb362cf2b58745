"""Evaluation pages: start form, report, comparison, progress, exports, cancel/resume."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from annotations.models import Split
from gcai.constitutions.evaluations import (
    evaluation_create,
    evaluation_run_inline,
    evaluations_create_comparison,
)
from gcai.constitutions.models import Evaluation
from gcai.jobs.models import JobStatus
from tests.constitutions.evaluation_support import (
    PLEASE,
    make_constitution,
    polite_pairs,
    serve_judge,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge_server(settings):
    yield from serve_judge(settings)


@pytest.fixture
def finished_group(study, judge_server):
    """A constitution and both baselines evaluated on the same eight pairs."""
    polite_pairs(study, 8)
    constitution = make_constitution(study, [PLEASE], title="GCAI constitution")
    created = evaluations_create_comparison(study=study, constitutions=[constitution])
    for evaluation in created:
        assert evaluation_run_inline(evaluation=evaluation) == "succeeded"
    return [Evaluation.objects.get(pk=e.pk) for e in created]


def url(name, evaluation, **extra):
    return reverse(name, kwargs={"study_id": evaluation.study_id, "evaluation_id": evaluation.pk})


# --------------------------------------------------------------------------- start


def test_form_offers_the_study_constitutions_and_the_default_orthogonal_list(owner_client, study):
    make_constitution(study, [PLEASE], title="Mine")
    polite_pairs(study, 3)
    response = owner_client.get(reverse("evaluation_new", kwargs={"study_id": study.pk}))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Mine v1" in body
    assert "1 principle" in body
    assert "Select the response whose first word begins with a vowel." in body
    assert "Test pairs (held out)" in body
    assert "<strong>3</strong> labelled test pairs and 0 labelled training pairs" in body


def test_starting_a_comparison_queues_one_evaluation_per_target(
    owner_client, study, django_capture_on_commit_callbacks
):
    polite_pairs(study, 6)
    constitution = make_constitution(study, [PLEASE])
    with django_capture_on_commit_callbacks() as callbacks:
        response = owner_client.post(
            reverse("evaluation_new", kwargs={"study_id": study.pk}),
            {
                "constitutions": [constitution.pk],
                "baselines": "on",
                "split": "test",
                "limit": "4",
                "seed": "2",
                "orthogonal_principles": "Select the response that mentions a fruit.",
                "principle_analysis": "on",
                "batch_size": "2",
            },
        )

    created = list(Evaluation.objects.filter(study=study).order_by("pk"))
    assert [e.kind for e in created] == ["constitution", "no_constitution", "orthogonal"]
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "evaluation_compare", kwargs={"study_id": study.pk, "group": created[0].comparison_group}
    )
    assert len(callbacks) == 3  # one queued step per evaluation, after the commit
    assert created[2].config["principles"] == ["Select the response that mentions a fruit."]
    assert {e.progress_total for e in created} == {4}


def test_a_study_without_test_pairs_gets_advice_instead_of_an_evaluation(owner_client, study):
    polite_pairs(study, 3, split=Split.TRAIN)
    response = owner_client.post(
        reverse("evaluation_new", kwargs={"study_id": study.pk}),
        {"baselines": "on", "split": "test", "seed": "0", "batch_size": "25"},
    )
    assert response.status_code == 200
    assert "No labelled test pairs" in response.content.decode()
    assert not Evaluation.objects.exists()


def test_nothing_to_evaluate_is_refused(owner_client, study):
    response = owner_client.post(
        reverse("evaluation_new", kwargs={"study_id": study.pk}),
        {"split": "test", "seed": "0", "batch_size": "25"},
    )
    assert "Choose at least one constitution or the baselines." in response.content.decode()


def test_another_studys_constitution_cannot_be_chosen(owner_client, study, other_researcher):
    polite_pairs(study, 2)
    foreign = make_constitution(other_researcher.memberships.get().study, [PLEASE])
    response = owner_client.post(
        reverse("evaluation_new", kwargs={"study_id": study.pk}),
        {"constitutions": [foreign.pk], "split": "test", "seed": "0", "batch_size": "25"},
    )
    assert response.status_code == 200
    assert not Evaluation.objects.exists()


# --------------------------------------------------------------------------- report


def test_report_shows_table_with_intervals_charts_confusion_and_principles(
    owner_client, finished_group
):
    evaluation = finished_group[0]
    response = owner_client.get(url("evaluation_detail", evaluation))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Evaluation of GCAI constitution v1" in body
    assert "100.0% [" in body  # accuracy with its interval
    assert body.count("<svg") == 4  # summary + relevance, accuracy, decisive per principle
    assert "Confusion table" in body
    assert "Orders disagree" in body
    assert PLEASE in body
    assert "held-out test split" in body
    assert 'class="evaluation-progress"' in body
    assert 'data-active="false"' in body


def test_report_of_a_running_evaluation_polls_its_status(owner_client, study):
    polite_pairs(study, 4)
    evaluation = evaluation_create(study=study, kind="no_constitution")
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=JobStatus.RUNNING, stage="judging", progress_done=1
    )

    page = owner_client.get(url("evaluation_detail", evaluation)).content.decode()
    status = owner_client.get(url("evaluation_status", evaluation)).json()

    assert 'data-active="true"' in page
    assert url("evaluation_status", evaluation) in page
    assert "fetch(box.dataset.statusUrl" in page
    assert status["status"] == "running"
    assert status["progress_done"] == 1
    assert status["progress_total"] == 4
    assert status["percent"] == 25


def test_comparison_of_running_evaluations_polls_each_of_them(owner_client, study):
    polite_pairs(study, 4)
    created = evaluations_create_comparison(study=study, constitutions=[], baselines=True)
    Evaluation.objects.filter(pk=created[0].pk).update(status=JobStatus.RUNNING)

    page = owner_client.get(
        reverse(
            "evaluation_compare",
            kwargs={"study_id": study.pk, "group": created[0].comparison_group},
        )
    ).content.decode()

    assert page.count('data-active="true"') == 2  # the queued one is active too
    for evaluation in created:
        assert url("evaluation_status", evaluation) in page
    assert "Promise.all" in page


def test_training_split_is_labelled_on_the_report(owner_client, study):
    polite_pairs(study, 2, split=Split.TRAIN)
    evaluation = evaluation_create(study=study, kind="no_constitution", split=Split.TRAIN)
    body = owner_client.get(url("evaluation_detail", evaluation)).content.decode()
    assert "training split (not held out" in body


def test_comparison_page_shows_constitution_and_baselines_side_by_side(
    owner_client, finished_group, django_assert_max_num_queries
):
    first = finished_group[0]
    target = reverse(
        "evaluation_compare",
        kwargs={"study_id": first.study_id, "group": first.comparison_group},
    )
    with django_assert_max_num_queries(8):
        response = owner_client.get(target)

    body = response.content.decode()
    assert "GCAI constitution v1" in body
    assert "Baseline: no constitution" in body
    assert "Baseline: orthogonal constitution" in body
    assert "Paired differences in accuracy" in body
    assert "+50.0 pts" in body  # headline accuracy: 100% against a baseline at chance
    # Forced choice: one chart per share shown (accuracy, order disagreement).
    assert body.count("<svg") == 2
    assert "The published measure (improved ICAI, Table 1)" in body  # defined by its number
    assert "Coverage" not in body


def test_list_page_groups_evaluations_with_bounded_queries(
    owner_client, study, finished_group, django_assert_max_num_queries
):
    evaluations_create_comparison(study=study, constitutions=[], baselines=True)
    with django_assert_max_num_queries(6):
        response = owner_client.get(reverse("evaluation_list", kwargs={"study_id": study.pk}))
    body = response.content.decode()
    assert body.count("compare</a>") == 2
    assert body.count("Baseline: no constitution") == 2


# --------------------------------------------------------------------------- exports


def test_per_pair_csv_export(owner_client, finished_group):
    evaluation = finished_group[0]
    response = owner_client.get(url("evaluation_export_csv", evaluation))

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:7] == [
        "pair_id",
        "external_id",
        "dataset",
        "human",
        "judge_as_shown",
        "judge_swapped",
        "verdict",
    ]
    assert len(rows) == 1 + 8
    assert {r[7] for r in rows[1:]} == {"1"}
    assert rows[1][1] == "polite-0"
    assert rows[1][8] == "1:a"


def test_json_export_holds_settings_metrics_and_judgements(owner_client, finished_group):
    evaluation = finished_group[0]
    response = owner_client.get(url("evaluation_export_json", evaluation))
    document = json.loads(response.content)

    assert document["evaluation"]["split"] == "test"
    assert document["evaluation"]["held_out"] is True
    assert "labels" not in document["evaluation"]["settings"]
    assert document["results"]["metrics"]["accuracy"]["value"] == 1.0
    assert len(document["results"]["judgements"]) == 8
    assert document["status"]["status"] == "succeeded"


def test_comparison_csv_has_every_interval_bound(owner_client, finished_group):
    first = finished_group[0]
    response = owner_client.get(
        reverse(
            "evaluation_compare_csv",
            kwargs={"study_id": first.study_id, "group": first.comparison_group},
        )
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header = rows[0]
    assert {"accuracy", "accuracy_lo", "accuracy_hi", "kappa_lo", "coverage_hi"} <= set(header)
    assert len(rows) == 4
    by_target = {r[1]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert float(by_target["GCAI constitution v1 [GCAI (grounded)]"]["accuracy"]) == 1.0


# --------------------------------------------------------------------------- cancel / resume


def test_cancel_and_resume_from_the_page(owner_client, study, django_capture_on_commit_callbacks):
    polite_pairs(study, 2)
    evaluation = evaluation_create(study=study, kind="no_constitution")

    owner_client.post(url("evaluation_cancel", evaluation))
    evaluation.refresh_from_db()
    assert evaluation.status == JobStatus.CANCELLED

    with django_capture_on_commit_callbacks() as callbacks:
        response = owner_client.post(url("evaluation_resume", evaluation))
    evaluation.refresh_from_db()
    assert response.status_code == 302
    assert evaluation.status == JobStatus.QUEUED
    assert len(callbacks) == 1


def test_resuming_a_succeeded_evaluation_explains_why_not(owner_client, finished_group):
    response = owner_client.post(url("evaluation_resume", finished_group[0]), follow=True)
    assert "already succeeded" in response.content.decode()


def test_cancel_needs_post(owner_client, study):
    polite_pairs(study, 2)
    evaluation = evaluation_create(study=study, kind="no_constitution")
    assert owner_client.get(url("evaluation_cancel", evaluation)).status_code == 405


def test_stranger_cannot_open_an_evaluation(stranger_client, study):
    polite_pairs(study, 2)
    evaluation = evaluation_create(study=study, kind="no_constitution")
    for name in ("evaluation_detail", "evaluation_status", "evaluation_export_json"):
        assert stranger_client.get(url(name, evaluation)).status_code == 404


def test_evaluation_of_another_study_is_not_found_under_this_study(
    owner_client, study, other_researcher
):
    other_study = other_researcher.memberships.get().study
    polite_pairs(other_study, 2)
    foreign = evaluation_create(study=other_study, kind="no_constitution")
    response = owner_client.get(
        reverse("evaluation_detail", kwargs={"study_id": study.pk, "evaluation_id": foreign.pk})
    )
    assert response.status_code == 404


def test_abstaining_evaluations_show_coverage_with_its_definition(
    owner_client, study, judge_server
):
    polite_pairs(study, 4)
    constitution = make_constitution(study, [PLEASE])
    evaluation = evaluation_create(study=study, constitution=constitution, allow_abstain=True)
    assert evaluation_run_inline(evaluation=evaluation) == "succeeded"

    body = owner_client.get(url("evaluation_detail", evaluation)).content.decode()

    for title in ("Accuracy", "Strict agreement", "Coverage", "Order disagreement"):
        assert f"<td>{title}</td>" in body
    # Each number is read next to what it measures: coverage counts answers, not agreement.
    assert "It counts answers, not agreement" in body
    assert "the two orders gave different answers" in body


def test_methods_page_shows_the_presets_and_their_sources(owner_client):
    body = owner_client.get(reverse("methods")).content.decode()
    assert "<h1>Methods and their sources</h1>" in body
    for preset in ("icai", "icai_improved_1", "icai_improved_2", "icai_scores", "gcai"):
        assert f"<code>{preset}</code>" in body
    assert "s3_voting_method_cross_seed" in body
