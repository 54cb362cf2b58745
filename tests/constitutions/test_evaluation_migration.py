"""Migration 0005: batches that evaluations kept in ``results["batches"]`` before they ran
on the job engine become artifact rows, so a resume after the upgrade pays nothing twice.

The migration functions run on the historical models of the migration state, as
``migrate`` runs them.
"""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from gcai.constitutions.evaluations import evaluation_create, evaluation_run_inline
from gcai.constitutions.models import Evaluation, EvaluationArtifact, LLMCacheEntry
from gcai.jobs.models import JobStatus
from tests.constitutions.evaluation_support import (
    failed_in_batch_three,
    polite_pairs,
    serve_judge,
)

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("gcai.constitutions.migrations.0005_evaluation_artifacts")


@pytest.fixture
def judge_server(settings):
    yield from serve_judge(settings)


@pytest.fixture
def state_apps():
    """The app registry as of the migration, as ``migrate`` hands it to RunPython."""
    loader = MigrationExecutor(connection).loader
    return loader.project_state(("constitutions", "0005_evaluation_artifacts")).apps


def _to_old_layout(evaluation: Evaluation) -> dict[str, list]:
    """Put an evaluation's stored batches back where the old code kept them."""
    rows = EvaluationArtifact.objects.filter(evaluation=evaluation, stage="judging", batch__gte=0)
    batches = {str(a.batch): a.data["judgements"] for a in rows}
    rows.delete()
    Evaluation.objects.filter(pk=evaluation.pk).update(results={"batches": batches, "note": "kept"})
    return batches


def test_old_batches_become_artifact_rows_and_the_key_is_dropped(study, state_apps):
    polite_pairs(study, 6)
    evaluation = evaluation_create(study=study, kind="no_constitution", batch_size=2)
    judged = [{"pair_id": "1", "verdict": "a"}, {"pair_id": "2", "verdict": "b"}]
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=JobStatus.FAILED,
        results={"batches": {"2": [judged[1]], "0": judged, "10": []}, "note": "kept"},
    )
    untouched = evaluation_create(study=study, kind="no_constitution")
    Evaluation.objects.filter(pk=untouched.pk).update(results={"metrics": {"n": 1}})

    MIGRATION.batches_to_artifacts(state_apps, None)

    rows = EvaluationArtifact.objects.filter(evaluation=evaluation).order_by("batch")
    assert [(a.stage, a.batch, a.data) for a in rows] == [
        ("judging", 0, {"judgements": judged}),
        ("judging", 2, {"judgements": [judged[1]]}),
        ("judging", 10, {"judgements": []}),
    ]
    assert Evaluation.objects.get(pk=evaluation.pk).results == {"note": "kept"}
    assert Evaluation.objects.get(pk=untouched.pk).results == {"metrics": {"n": 1}}
    assert not EvaluationArtifact.objects.filter(evaluation=untouched).exists()

    # Running it again (or over rows already moved) changes nothing.
    MIGRATION.batches_to_artifacts(state_apps, None)
    assert EvaluationArtifact.objects.filter(evaluation=evaluation).count() == 3

    # And back: the old layout again, for the old code.
    MIGRATION.artifacts_to_batches(state_apps, None)
    assert Evaluation.objects.get(pk=evaluation.pk).results == {
        "note": "kept",
        "batches": {"0": judged, "2": [judged[1]], "10": []},
    }


def test_an_evaluation_failed_before_the_upgrade_resumes_without_paying_again(
    study, judge_server, settings, state_apps
):
    evaluation, outage = failed_in_batch_three(study, judge_server, settings)
    old = _to_old_layout(evaluation)
    assert sorted(old) == ["0", "1"]
    # Only the moved batches can spare the calls: the response cache is gone too.
    LLMCacheEntry.objects.all().delete()

    MIGRATION.batches_to_artifacts(state_apps, None)
    outage["on"] = False
    before = judge_server.chat_calls
    evaluation.refresh_from_db()
    assert evaluation_run_inline(evaluation=evaluation) == "succeeded"

    evaluation.refresh_from_db()
    assert judge_server.chat_calls - before == 4 * 2  # batch 2 only, both orders
    assert evaluation.results["metrics"]["n_scored"] == 12
    assert "batches" not in evaluation.results
    assert [j["pair_id"] for j in evaluation.results["judgements"][:8]] == [
        j["pair_id"] for j in old["0"] + old["1"]
    ]
