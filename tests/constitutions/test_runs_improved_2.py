"""Improved ICAI variant 2 as a stored run: the configured encoders are the ones that run."""

from __future__ import annotations

import pytest

from gcai.constitutions import runs
from gcai.constitutions.models import EmbeddingCacheEntry, StageArtifact
from gcai.constitutions.pipeline import RunInputs
from gcai.core import presets
from gcai.jobs.models import JobStatus
from tests.constitutions.conftest import load_synthetic
from tests.constitutions.judge_server import judge_responder
from tests.core.scripted import ORTHOGONAL_RULES, Judge

pytestmark = pytest.mark.django_db


def _run(drive_run, study, encoders):
    run = runs.run_create(
        study=study, method="icai_improved_2", method_config={"encoders": encoders}
    )
    return drive_run(run)


def test_improved_2_clusters_differences_with_every_configured_encoder(
    study, llm_server, drive_run
):
    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")
    llm_server.responder = judge_responder(Judge(ORTHOGONAL_RULES))
    run = _run(drive_run, study, ["content", "style", "sentiment"])

    assert run.status == JobStatus.SUCCEEDED, run.error
    triplets = StageArtifact.objects.get(run=run, stage="triplets", batch=-1).data
    assert {c["encoder"] for c in triplets["clusters"]} == {"content", "style", "sentiment"}
    assert triplets["encoders"] == {
        "content": "fake-embed",
        "style": "gcai-style-v1",
        "sentiment": "gcai-sentiment-vader-v1",
    }
    selected = [c for c in triplets["clusters"] if c["status"] == "selected"]
    assert 0 < len(selected) <= triplets["top_k"]
    # One joint generation call per selected triplet.
    generate = StageArtifact.objects.get(run=run, stage="generate", batch=-1).data
    assert generate["counts"]["inputs"] == len(selected)
    # Feature vectors share the database embedding cache, keyed by encoder.
    assert EmbeddingCacheEntry.objects.filter(model="gcai-style-v1").exists()
    assert EmbeddingCacheEntry.objects.filter(model="gcai-sentiment-vader-v1").exists()


def test_unknown_encoder_is_refused_when_the_run_is_created(study, llm_server):
    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")
    with pytest.raises(ValueError, match="unknown encoder 'tone'"):
        runs.run_create(study=study, method="icai_improved_2", method_config={"encoders": ["tone"]})


def test_a_named_model_missing_on_this_machine_fails_the_run_clearly(study, llm_server, drive_run):
    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")
    run = _run(drive_run, study, ["content", "st:nobody/no-such-model-xyz"])
    assert run.status == JobStatus.FAILED
    assert "not available on this machine" in run.error
    assert llm_server.chat_calls == 0


def test_the_current_preset_embeds_responses_with_the_fast_encoder_and_version_1_does_not():
    asked: list[int] = []

    def inputs(config):
        return RunInputs(
            method="icai_improved_2",
            config=config,
            pairs_loader=list,
            judgements_loader=list,
            statements_loader=list,
            output_loader=dict,
            model_factory=object,
            embedder_factory=lambda: "the run's embedder",
            fast_embedder_factory=lambda tokens: asked.append(tokens) or "the fast embedder",
        )

    assert inputs(presets.resolve("icai_improved_2").to_dict()).content_embedder == (
        "the fast embedder"
    )
    assert asked == [128]
    version_1 = presets.resolve("icai_improved_2", version=1).to_dict()
    assert inputs(version_1).content_embedder == "the run's embedder"
    assert asked == [128]
