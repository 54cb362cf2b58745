"""REST API for runs: list/create, one-call comparison, status, cancel, resume, artifacts."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from gcai.constitutions import selectors
from gcai.constitutions.models import Method, PipelineRun, StageArtifact
from gcai.jobs.models import JobStatus
from tests.constitutions.constitutions_owned_objects import (
    build_gcai_run,
    build_icai_run,
    make_study_input,
)
from tests.factories import DatasetFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


@pytest.fixture
def data(study):
    return make_study_input(study)


@pytest.fixture
def started(monkeypatch):
    calls: list[PipelineRun] = []
    monkeypatch.setattr("gcai.constitutions.runs.run_start", lambda *, run: calls.append(run))
    return calls


def _run_url(name, run, **extra):
    return reverse(name, kwargs={"study_id": run.study_id, "run_id": run.pk, **extra})


def test_list_runs_with_progress_usage_and_constitutions(api, study, data):
    run = build_icai_run(study, data)
    response = api.get(reverse("api_runs", args=[study.pk]))
    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert row["id"] == run.pk
    assert row["method"] == "icai"
    assert row["status"] == "succeeded"
    assert row["stage_title"] == "Finished"
    assert row["progress"] == {"done": 1, "total": 1, "percent": 100}
    assert row["usage"]["calls"] == 42
    assert row["usage"]["cached_calls"] == 7
    assert row["n_training_pairs"] == 4
    assert row["constitution_ids"] == [run.constitutions.get().pk]
    assert row["html_url"] == reverse("run_detail", args=[study.pk, run.pk])


def test_run_list_query_count_is_bounded(api, study, data, django_assert_max_num_queries):
    for _ in range(6):
        build_icai_run(study, data)
    # session/auth + study + count + runs + prefetched constitutions
    with django_assert_max_num_queries(6):
        response = api.get(reverse("api_runs", args=[study.pk]))
    assert len(response.json()["results"]) == 6


def test_create_run_queues_it(api, study, data, started):
    response = api.post(
        reverse("api_runs", args=[study.pk]),
        {
            "method": "icai_improved_1",
            "seed": 2,
            "method_config": {"num_clusters": 3, "max_principles": 2},
            "dataset_ids": [data["dataset"].pk],
            "max_training_pairs": 3,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    run = PipelineRun.objects.get(pk=response.json()["id"])
    assert started == [run]
    assert run.method == Method.ICAI_IMPROVED_1
    assert run.config["method_config"]["num_clusters"] == 3
    assert run.training_pairs.count() == 3
    assert response.json()["status"] == "queued"


def test_create_run_without_start_only_creates(api, study, data, started):
    response = api.post(
        reverse("api_runs", args=[study.pk]), {"method": "gcai", "start": False}, format="json"
    )
    assert response.status_code == 201
    assert started == []


def test_create_run_reports_bad_method_settings_by_name(api, study, data, started):
    response = api.post(
        reverse("api_runs", args=[study.pk]),
        {"method": "icai", "method_config": {"num_clusters": 0}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["method_config"][0].startswith("num_clusters:")
    unknown = api.post(
        reverse("api_runs", args=[study.pk]),
        {"method": "gcai", "method_config": {"colour": "blue"}},
        format="json",
    )
    assert unknown.status_code == 400
    assert "colour: unknown GCAI setting" in unknown.json()["method_config"][0]
    assert not PipelineRun.objects.exists()
    assert started == []


def test_create_run_refuses_datasets_of_other_studies(api, study, data, started):
    foreign = DatasetFactory(study=StudyFactory())
    response = api.post(
        reverse("api_runs", args=[study.pk]),
        {"method": "icai", "dataset_ids": [foreign.pk]},
        format="json",
    )
    assert response.status_code == 400
    assert "dataset_ids" in response.json()


def test_create_run_without_training_pairs_explains(api, study, started):
    response = api.post(reverse("api_runs", args=[study.pk]), {"method": "icai"}, format="json")
    assert response.status_code == 400
    assert "No training pairs" in response.json()["detail"]


def test_one_call_builds_gcai_and_icai_on_the_same_pairs(api, study, data, started):
    response = api.post(
        reverse("api_runs_comparison", args=[study.pk]),
        {
            "icai_method": "icai",
            "seed": 1,
            "max_training_pairs": 3,
            "gcai_config": {"contextual_clusters": 4},
            "icai_config": {"num_clusters": 4},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["same_training_pairs"] is True
    assert body["n_training_pairs"] == 3
    assert body["gcai"]["method"] == "gcai"
    assert body["icai"]["method"] == "icai"
    gcai = PipelineRun.objects.get(pk=body["gcai"]["id"])
    icai = PipelineRun.objects.get(pk=body["icai"]["id"])
    assert gcai.comparison_group == icai.comparison_group == body["comparison_group"]
    assert set(gcai.training_pairs.all()) == set(icai.training_pairs.all())
    assert set(started) == {gcai, icai}


def test_comparison_reports_which_config_is_wrong(api, study, data, started):
    response = api.post(
        reverse("api_runs_comparison", args=[study.pk]),
        {"icai_config": {"contextual_clusters": 4}},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()) == ["icai_config"]
    assert not PipelineRun.objects.exists()


def test_run_detail_lists_stages_and_training_pairs(api, study, data):
    run = build_gcai_run(study, data)
    body = api.get(_run_url("api_run_detail", run)).json()
    names = [s["name"] for s in body["stages"]]
    assert names[0] == "contextual_generate"
    assert names[-1] == "merge"
    assert all(s["stored"] for s in body["stages"])
    assert body["training_pair_ids"] == sorted(p.pk for p in data["pairs"])
    assert "_joined" not in body["config"]
    assert body["config"]["batch_size"] == 25


def test_status_endpoint_is_small_and_current(api, study, data):
    run = build_icai_run(
        study, data, status=JobStatus.RUNNING, stage="vote", progress_done=1, progress_total=4
    )
    body = api.get(_run_url("api_run_status", run)).json()
    assert body["status"] == "running"
    assert body["is_active"] is True
    assert body["stage_title"] == "Test principles on training pairs"
    assert body["progress"] == {"done": 1, "total": 4, "percent": 25}
    assert body["stored_stages"] == 5
    assert body["usage"]["cost_usd"] == "0.012300"


def test_cancel_active_run(api, study, data):
    run = build_icai_run(study, data, status=JobStatus.RUNNING, stage="vote")
    response = api.post(_run_url("api_run_cancel", run))
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True


def test_cancel_finished_run_is_a_conflict(api, study, data):
    run = build_icai_run(study, data)
    response = api.post(_run_url("api_run_cancel", run))
    assert response.status_code == 409
    run.refresh_from_db()
    assert not run.cancel_requested


def test_resume_failed_run(api, study, data, started):
    run = build_icai_run(study, data, status=JobStatus.FAILED, error="boom")
    response = api.post(_run_url("api_run_resume", run))
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert [r.pk for r in started] == [run.pk]


def test_resume_succeeded_run_is_a_conflict(api, study, data, started):
    run = build_icai_run(study, data)
    response = api.post(_run_url("api_run_resume", run))
    assert response.status_code == 409
    assert "already succeeded" in response.json()["detail"]
    assert started == []


def test_artifact_list_has_no_data_and_links_each_artifact(api, study, data):
    run = build_icai_run(study, data)
    rows = api.get(_run_url("api_run_artifacts", run)).json()
    assert {(r["stage"], r["batch"]) for r in rows} == {
        ("generate", 0),
        ("generate", -1),
        ("cluster", -1),
        ("representatives", -1),
        ("vote", -1),
        ("filter", -1),
    }
    assert all("data" not in r for r in rows)
    batch = next(r for r in rows if r["batch"] == 0)
    assert batch["url"].endswith("/artifacts/generate/?batch=0")


def test_artifact_detail_streams_the_stored_data(api, study, data):
    run = build_icai_run(study, data)
    response = api.get(_run_url("api_run_artifact_detail", run, stage="filter"))
    assert response.status_code == 200
    body = json.loads(b"".join(response.streaming_content))
    stored = StageArtifact.objects.get(run=run, stage="filter", batch=-1).data
    assert body["artifacts"][0]["data"] == stored
    missing = api.get(_run_url("api_run_artifact_detail", run, stage="merge"))
    assert missing.status_code == 404


def test_strangers_cannot_create_runs_in_a_study(other_researcher, study, data, started):
    client = APIClient()
    client.force_authenticate(other_researcher)
    response = client.post(reverse("api_runs", args=[study.pk]), {"method": "icai"}, format="json")
    assert response.status_code == 404
    assert not PipelineRun.objects.exists()


def test_run_of_another_study_is_not_found(api, study):
    other = StudyFactory()
    foreign = build_icai_run(other, make_study_input(other))
    url = reverse("api_run_detail", kwargs={"study_id": study.pk, "run_id": foreign.pk})
    assert api.get(url).status_code == 404


def test_status_endpoint_says_which_stage_of_how_many_and_each_stage_state(api, study, data):
    run = build_icai_run(
        study, data, status=JobStatus.RUNNING, stage="vote", progress_done=1, progress_total=4
    )
    names = [s.name for s in selectors.run_stages_list(run=run)]
    at = names.index("vote")
    StageArtifact.objects.filter(run=run, stage__in=names[at:], batch=-1).delete()
    overall = api.get(_run_url("api_run_status", run)).json()["overall"]
    assert overall["index"] == at + 1
    assert overall["count"] == len(names)
    assert overall["text"] == f"Stage {at + 1} of {len(names)}"
    states = {s["name"]: s["state"] for s in overall["stages"]}
    assert [states[n] for n in names[:at]] == ["done"] * at
    assert states["vote"] == "running"
    assert {states[n] for n in names[at + 1 :]} <= {"waiting"}

    run.status = JobStatus.FAILED
    run.save(update_fields=["status"])
    overall = api.get(_run_url("api_run_status", run)).json()["overall"]
    assert overall["text"] == f"Stopped at stage {at + 1} of {len(names)}"
    assert {s["name"]: s["state"] for s in overall["stages"]}["vote"] == "stopped"


def test_status_of_a_finished_run_says_all_stages_done(api, study, data):
    run = build_icai_run(study, data)
    overall = api.get(_run_url("api_run_status", run)).json()["overall"]
    assert overall["text"] == f"All {overall['count']} stages done"
    assert {s["state"] for s in overall["stages"]} == {"done"}
