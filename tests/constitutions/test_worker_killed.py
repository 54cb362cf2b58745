"""A worker killed mid-job (SIGKILL): another worker finishes it, no paid call twice.

Pipeline runs and evaluations run on the same job engine; both are killed here.

Late acks leave the dead worker's unacknowledged tasks with Redis; once the visibility
timeout passes, the second worker takes them back. Re-running a task skips the batches
already stored, and the LLM response cache in the database answers every call the dead
worker had finished, so only the calls that were in flight at the kill are asked again.
"""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings as django_settings

from gcai.constitutions import evaluations, runs
from gcai.constitutions.models import (
    Evaluation,
    EvaluationArtifact,
    LLMCacheEntry,
    PipelineRun,
    StageArtifact,
)
from gcai.jobs.models import JobStatus
from tests.constitutions.conftest import load_synthetic
from tests.constitutions.evaluation_support import (
    PLEASE,
    llm_settings_for,
    make_constitution,
    planted_rule_responder,
    polite_pairs,
)
from tests.constitutions.judge_server import judge_responder
from tests.core.scripted import ORTHOGONAL_RULES, Judge
from tests.fakes import FakeOpenAIServer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not django_settings.CELERY_BROKER_URL.startswith("redis://"),
        reason="needs the Redis broker (make test sets CELERY_BROKER_URL)",
    ),
]

# Short enough for a test, yet longer than any task here takes even on a busy machine
# (a fresh worker's first task imports a lot): a shorter timeout would let the second
# worker hand its own running tasks out again, the very thing the settings forbid.
VISIBILITY_TIMEOUT = 25


def _wait(condition, what: str, worker, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{worker.log()[-3000:]}")


def _signature(body: dict) -> str:
    """What makes two chat requests the same paid question."""
    keep = {k: body.get(k) for k in ("model", "messages", "response_format", "temperature")}
    return json.dumps(keep, sort_keys=True)


def _worker_env(server: FakeOpenAIServer) -> dict[str, str]:
    return {
        **llm_settings_for(server),
        "GCAI_LLM_CONCURRENCY": "2",
        "CELERY_TASK_TIME_LIMIT": str(VISIBILITY_TIMEOUT - 2),
        "CELERY_TASK_SOFT_TIME_LIMIT": str(VISIBILITY_TIMEOUT - 4),
        "CELERY_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "CELERY_BROKER_RESTORE_INTERVAL": "1",
    }


def test_a_killed_workers_run_is_finished_by_another_without_repeating_paid_calls(
    study, tmp_path, settings
):
    from gcai.celery import app
    from tests.conftest import start_worker

    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")
    previous_queue = app.conf.task_default_queue
    with FakeOpenAIServer(responder=judge_responder(Judge(ORTHOGONAL_RULES))) as server:
        server.latency = 0.2  # calls are in flight when the worker dies
        env = _worker_env(server)
        first = start_worker(tmp_path, env)
        second = None
        try:
            run = runs.run_create(
                study=study, method="icai", batch_size=10, method_config={"num_clusters": 6}
            )
            runs.run_start(run=run)
            stored = StageArtifact.objects.filter(run=run, stage="generate", batch__gte=0)
            # 30 pairs in three batches of 10, two calls at a time each: kill once some
            # answers are cached, before a batch is complete.
            _wait(lambda: LLMCacheEntry.objects.count() >= 6, "the first answers", first)
            first.kill()
            at_kill = {
                "batches": stored.count(),
                "requests": server.chat_calls,
                "cached": LLMCacheEntry.objects.count(),
                "signatures": {_signature(b) for b in server.bodies("chat")},
            }
            assert at_kill["batches"] < 3
            assert PipelineRun.objects.get(pk=run.pk).status == JobStatus.RUNNING

            second = start_worker(tmp_path, env, queue=first.queue)
            _wait(lambda: not PipelineRun.objects.get(pk=run.pk).is_active, "the run", second)
            run.refresh_from_db()
        finally:
            if second is not None:
                second.stop()
            first.stop()
            app.conf.task_default_queue = previous_queue

        assert run.status == JobStatus.SUCCEEDED, f"{run.error}\n{second.log()[-3000:]}"
        assert StageArtifact.objects.filter(run=run, stage="generate", batch__gte=0).count() == 3
        signatures = [_signature(b) for b in server.bodies("chat")]
        repeated = len(signatures) - len(set(signatures))
        # Only a call whose answer never reached the cache may be asked again: one the
        # dead worker had sent (at most its in-flight calls), never one it had stored.
        assert repeated <= at_kill["requests"] - at_kill["cached"]
        assert repeated <= 4 * 2  # four worker threads, two calls each
        again = {s for s in signatures if signatures.count(s) > 1}
        assert again <= at_kill["signatures"]
        # The second worker did the rest: it asked questions the first never had.
        assert set(signatures) - at_kill["signatures"]
        assert "gcai.run_batch" in second.log()


def test_a_killed_workers_evaluation_is_finished_by_another_without_repeating_paid_calls(
    study, tmp_path, settings
):
    from gcai.celery import app
    from tests.conftest import start_worker

    polite_pairs(study, 30)
    constitution = make_constitution(study, [PLEASE])
    previous_queue = app.conf.task_default_queue
    with FakeOpenAIServer(responder=planted_rule_responder()) as server:
        server.latency = 0.2  # calls are in flight when the worker dies
        env = _worker_env(server)
        first = start_worker(tmp_path, env)
        second = None
        try:
            evaluation = evaluations.evaluation_create(
                study=study, constitution=constitution, batch_size=10, principle_analysis=False
            )
            evaluations.evaluation_start(evaluation=evaluation)
            stored = EvaluationArtifact.objects.filter(
                evaluation=evaluation, stage="judging", batch__gte=0
            )
            # 30 pairs in three batches of 10 (20 calls each, two at a time): kill once
            # some answers are cached, before a batch is complete.
            _wait(lambda: LLMCacheEntry.objects.count() >= 6, "the first answers", first)
            first.kill()
            at_kill = {
                "batches": stored.count(),
                "requests": server.chat_calls,
                "cached": LLMCacheEntry.objects.count(),
                "signatures": {_signature(b) for b in server.bodies("chat")},
            }
            assert at_kill["batches"] < 3
            assert Evaluation.objects.get(pk=evaluation.pk).status == JobStatus.RUNNING

            second = start_worker(tmp_path, env, queue=first.queue)
            _wait(
                lambda: not Evaluation.objects.get(pk=evaluation.pk).is_active,
                "the evaluation",
                second,
            )
            evaluation.refresh_from_db()
        finally:
            if second is not None:
                second.stop()
            first.stop()
            app.conf.task_default_queue = previous_queue

        assert evaluation.status == JobStatus.SUCCEEDED, (
            f"{evaluation.error}\n{second.log()[-3000:]}"
        )
        assert stored.count() == 3
        assert evaluation.results["metrics"]["n_scored"] == 30
        assert evaluation.progress_done == evaluation.progress_total == 30
        signatures = [_signature(b) for b in server.bodies("chat")]
        repeated = len(signatures) - len(set(signatures))
        assert repeated <= at_kill["requests"] - at_kill["cached"]
        assert repeated <= 4 * 2  # four worker threads, two calls each
        assert {s for s in signatures if signatures.count(s) > 1} <= at_kill["signatures"]
        assert set(signatures) - at_kill["signatures"]
        assert "gcai.evaluation_batch" in second.log()
