"""Runs record the preset they follow, its version and the resolved settings."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gcai.constitutions import pipeline, runs
from gcai.constitutions.models import Method, PipelineRun
from tests.factories import DatasetFactory, PairFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def train_pairs(study):
    dataset = DatasetFactory(study=study)
    return [PairFactory(dataset=dataset, split="train") for _ in range(3)]


def test_a_run_stores_its_preset_version_overrides_and_resolved_settings(study, train_pairs):
    run = runs.run_create(
        study=study, method=Method.ICAI_SCORES, seed=3, method_config={"max_principles": 4}
    )
    run.refresh_from_db()
    assert run.config["preset"] == "icai_scores"
    assert run.config["preset_version"] == 1
    assert run.config["overrides"] == {"max_principles": 4}
    stored = run.config["method_config"]
    assert stored["use_scores"] is True
    assert stored["aggregation"] == "unanimous"
    assert stored["max_principles"] == 4
    assert stored["seed"] == 3
    assert pipeline.method_config(run.method, run.config).to_dict() == stored


def test_a_run_made_before_presets_keeps_its_stored_behaviour(study, train_pairs):
    run = runs.run_create(study=study, method=Method.ICAI)
    # As stored by earlier versions: no preset fields, settings of that time.
    legacy = {k: v for k, v in run.config["method_config"].items() if k != "require_majority_valid"}
    legacy.update(use_scores=True, aggregation="majority")
    PipelineRun.objects.filter(pk=run.pk).update(
        config={"seed": 0, "method_config": legacy, "batch_size": 25}
    )
    run.refresh_from_db()
    config = pipeline.method_config(run.method, run.config)
    assert config.aggregation == "majority"
    assert config.use_scores is True
    assert config.require_majority_valid is False  # the filter did not exist then


def test_the_api_creates_a_preset_run_and_reports_its_version(owner_client, study, train_pairs):
    url = reverse("api_runs", kwargs={"study_id": study.pk})
    response = owner_client.post(
        url, {"method": "icai_scores", "start": False}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["method"] == "icai_scores"
    assert response.json()["preset_version"] == 1
    assert PipelineRun.objects.get(pk=response.json()["id"]).config["ties"] == "exclude"
    tied = owner_client.post(
        url, {"method": "gcai", "ties": "tie", "start": False}, content_type="application/json"
    )
    assert tied.status_code == 201, tied.content
    assert PipelineRun.objects.get(pk=tied.json()["id"]).config["ties"] == "tie"
    bad = owner_client.post(
        url,
        {"method": "icai", "method_config": {"aggregation": "plurality"}, "start": False},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "aggregation" in str(bad.json())
