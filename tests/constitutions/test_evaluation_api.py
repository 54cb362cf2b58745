"""Evaluation API: create (one or a comparison), status, results, exports, cancel, resume."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

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
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


@pytest.fixture
def stranger_api(other_researcher):
    client = APIClient()
    client.force_authenticate(other_researcher)
    return client


def one(name, evaluation):
    return reverse(name, kwargs={"study_id": evaluation.study_id, "evaluation_id": evaluation.pk})


def test_create_one_evaluation_and_queue_it(api, study, django_capture_on_commit_callbacks):
    polite_pairs(study, 6)
    constitution = make_constitution(study, [PLEASE])
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            reverse("api_evaluations", kwargs={"study_id": study.pk}),
            {"constitution": constitution.pk, "limit": 4, "seed": 1},
            format="json",
        )

    assert response.status_code == 201, response.json()
    [created] = response.json()["evaluations"]
    assert created["kind"] == "constitution"
    assert created["constitution"] == constitution.pk
    assert created["split"] == "test"
    assert created["held_out"] is True
    assert created["status"] == "queued"
    assert created["progress_total"] == 4
    assert len(callbacks) == 1


def test_create_a_comparison_with_baselines_on_the_same_pairs(api, study):
    polite_pairs(study, 6)
    gcai = make_constitution(study, [PLEASE], title="GCAI")
    icai = make_constitution(study, ["Select the shorter response."], title="ICAI")
    response = api.post(
        reverse("api_evaluations", kwargs={"study_id": study.pk}),
        {
            "constitutions": [gcai.pk, icai.pk],
            "baselines": True,
            "orthogonal_principles": ["Select the response that mentions a fruit."],
            "ground_truth": [PLEASE],
            "start": False,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    payload = response.json()
    assert [e["kind"] for e in payload["evaluations"]] == [
        "constitution",
        "constitution",
        "no_constitution",
        "orthogonal",
    ]
    rows = Evaluation.objects.filter(comparison_group=payload["comparison_group"])
    assert rows.count() == 4
    assert len({tuple(sorted(e.config["labels"])) for e in rows}) == 1
    assert {e.config["ground_truth"][0] for e in rows} == {PLEASE}


def test_a_baseline_alone(api, study):
    polite_pairs(study, 2)
    response = api.post(
        reverse("api_evaluations", kwargs={"study_id": study.pk}),
        {"kind": "orthogonal", "split": "test", "start": False},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["evaluations"][0]["target"] == "Baseline: orthogonal constitution"


def test_ground_truth_may_be_another_constitution_of_the_study(api, study):
    polite_pairs(study, 2)
    truth = make_constitution(study, [PLEASE, "Select the response that is brief."], title="T")
    response = api.post(
        reverse("api_evaluations", kwargs={"study_id": study.pk}),
        {"constitution": truth.pk, "ground_truth_constitution": truth.pk, "start": False},
        format="json",
    )
    created = Evaluation.objects.get(pk=response.json()["evaluations"][0]["id"])
    assert created.config["ground_truth"] == [PLEASE, "Select the response that is brief."]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"constitution": 999999}, "constitution"),
        ({"split": "validation"}, "split"),
        ({"limit": 0}, "limit"),
        ({"batch_size": 5000}, "batch_size"),
    ],
)
def test_bad_input_is_refused_naming_the_field(api, study, payload, field):
    polite_pairs(study, 2)
    response = api.post(
        reverse("api_evaluations", kwargs={"study_id": study.pk}), payload, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_a_constitution_of_another_study_is_refused(api, study, other_researcher):
    polite_pairs(study, 2)
    foreign = make_constitution(other_researcher.memberships.get().study, [PLEASE])
    response = api.post(
        reverse("api_evaluations", kwargs={"study_id": study.pk}),
        {"constitution": foreign.pk},
        format="json",
    )
    assert response.status_code == 400
    assert not Evaluation.objects.exists()


def test_service_refusals_come_back_as_400_with_the_reason(api, study):
    response = api.post(
        reverse("api_evaluations", kwargs={"study_id": study.pk}),
        {"kind": "no_constitution"},
        format="json",
    )
    assert response.status_code == 400
    assert "No labelled test pairs" in response.json()["detail"]


def test_status_results_and_exports_of_a_finished_evaluation(api, study, judge_server):
    polite_pairs(study, 6)
    evaluation = evaluation_create(study=study, constitution=make_constitution(study, [PLEASE]))
    evaluation_run_inline(evaluation=evaluation)

    status = api.get(one("api_evaluation_detail", evaluation)).json()
    results = api.get(one("api_evaluation_results", evaluation)).json()
    with_pairs = api.get(one("api_evaluation_results", evaluation) + "?judgements=1").json()
    exported = api.get(one("api_evaluation_export_json", evaluation))
    csv_export = api.get(one("api_evaluation_export_csv", evaluation))

    assert status["status"] == "succeeded"
    assert status["accuracy"]["value"] == 1.0
    assert status["accuracy"]["lo"] < 1.0
    assert status["kappa"]["value"] == 1.0
    assert status["n_scored"] == 6
    assert status["warning"] == "Only 6 scored pairs (fewer than 30): too few to draw a conclusion."
    assert results["results"]["metrics"]["coverage"]["value"] == 1.0
    assert "judgements" not in results["results"]
    assert len(with_pairs["results"]["judgements"]) == 6
    assert exported["Content-Type"].startswith("application/json")
    assert csv_export["Content-Type"].startswith("text/csv")
    assert csv_export.content.decode().count("\n") == 7


def test_list_evaluations_with_bounded_queries(api, study, django_assert_max_num_queries):
    polite_pairs(study, 4)
    for _ in range(3):
        evaluations_create_comparison(
            study=study, constitutions=[make_constitution(study, [PLEASE])]
        )
    with django_assert_max_num_queries(5):
        response = api.get(reverse("api_evaluations", kwargs={"study_id": study.pk}))
    assert response.status_code == 200
    assert response.json()["count"] == 9


def test_comparison_endpoint_returns_the_table_and_paired_differences(api, study, judge_server):
    polite_pairs(study, 6)
    created = evaluations_create_comparison(
        study=study, constitutions=[make_constitution(study, [PLEASE], title="G")]
    )
    for evaluation in created:
        evaluation_run_inline(evaluation=evaluation)

    response = api.get(
        reverse(
            "api_evaluation_comparison",
            kwargs={"study_id": study.pk, "group": created[0].comparison_group},
        )
    )

    payload = response.json()
    assert [e["kind"] for e in payload["evaluations"]] == [
        "constitution",
        "no_constitution",
        "orthogonal",
    ]
    assert payload["table"][0][:2] == ["evaluation", "target"]
    assert len(payload["table"]) == 4
    assert [d["second"] for d in payload["differences"]] == [
        "Baseline: no constitution",
        "Baseline: orthogonal constitution",
    ]
    # Headline accuracy: the planted constitution 100%, the baseline at chance 50%.
    assert payload["differences"][0]["estimate"]["value"] == 0.5


def test_cancel_then_resume(api, study, django_capture_on_commit_callbacks):
    polite_pairs(study, 2)
    evaluation = evaluation_create(study=study, kind="no_constitution")

    cancelled = api.post(one("api_evaluation_cancel", evaluation)).json()
    with django_capture_on_commit_callbacks() as callbacks:
        resumed = api.post(one("api_evaluation_resume", evaluation))

    assert cancelled["status"] == JobStatus.CANCELLED
    assert resumed.status_code == 202
    assert resumed.json()["status"] == JobStatus.QUEUED
    assert len(callbacks) == 1


def test_resuming_a_finished_evaluation_is_a_conflict(api, study, judge_server):
    polite_pairs(study, 2)
    evaluation = evaluation_create(study=study, kind="no_constitution")
    evaluation_run_inline(evaluation=evaluation)
    response = api.post(one("api_evaluation_resume", evaluation))
    assert response.status_code == 409
    assert "already succeeded" in response.json()["detail"]


def test_stranger_gets_404_everywhere(stranger_api, study):
    polite_pairs(study, 2)
    evaluation = evaluation_create(study=study, kind="no_constitution")
    assert (
        stranger_api.get(reverse("api_evaluations", kwargs={"study_id": study.pk})).status_code
        == 404
    )
    for name in ("api_evaluation_detail", "api_evaluation_results", "api_evaluation_export_csv"):
        assert stranger_api.get(one(name, evaluation)).status_code == 404
    assert stranger_api.post(one("api_evaluation_cancel", evaluation)).status_code == 404
    evaluation.refresh_from_db()
    assert not evaluation.cancel_requested


def test_anonymous_is_refused(client, study):
    polite_pairs(study, 2)
    evaluation = evaluation_create(study=study, kind="no_constitution")
    assert client.get(one("api_evaluation_detail", evaluation)).status_code in (401, 403)
