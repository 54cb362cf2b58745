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


def _kill_midway_and_finish(tmp_path, server, job_model, start_job, stored):
    """Start a job on one worker, SIGKILL it once some answers are cached but before its
    three batches are stored, and let a second worker finish it. Returns the finished
    job, what the server had seen at the kill, and the second worker's log."""
    from gcai.celery import app
    from tests.conftest import start_worker

    previous_queue = app.conf.task_default_queue
    server.latency = 0.2  # calls are in flight when the worker dies
    env = _worker_env(server)
    first = start_worker(tmp_path, env)
    second = None
    try:
        job = start_job()
        # Three batches of 10 pairs, two calls at a time: kill once some answers are
        # cached, before a batch is complete.
        _wait(lambda: LLMCacheEntry.objects.count() >= 6, "the first answers", first)
        first.kill()
        at_kill = {
            "batches": stored(job).count(),
            "requests": server.chat_calls,
            "cached": LLMCacheEntry.objects.count(),
            "signatures": {_signature(b) for b in server.bodies("chat")},
        }
        assert at_kill["batches"] < 3
        assert job_model.objects.get(pk=job.pk).status == JobStatus.RUNNING

        second = start_worker(tmp_path, env, queue=first.queue)
        _wait(lambda: not job_model.objects.get(pk=job.pk).is_active, "the job", second)
        job.refresh_from_db()
    finally:
        if second is not None:
            second.stop()
        first.stop()
        app.conf.task_default_queue = previous_queue
    log = second.log()
    assert job.status == JobStatus.SUCCEEDED, f"{job.error}\n{log[-3000:]}"
    assert stored(job).count() == 3
    return job, at_kill, log


def _assert_only_in_flight_calls_were_asked_again(server, at_kill) -> None:
    signatures = [_signature(b) for b in server.bodies("chat")]
    repeated = len(signatures) - len(set(signatures))
    # Only a call whose answer never reached the cache may be asked again: one the dead
    # worker had sent (at most its in-flight calls), never one it had stored.
    assert repeated <= at_kill["requests"] - at_kill["cached"]
    assert repeated <= 4 * 2  # four worker threads, two calls each
    assert {s for s in signatures if signatures.count(s) > 1} <= at_kill["signatures"]
    # The second worker did the rest: it asked questions the first never had.
    assert set(signatures) - at_kill["signatures"]


def test_a_killed_workers_run_is_finished_by_another_without_repeating_paid_calls(
    study, tmp_path, settings
):
    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")

    def start_job():
        run = runs.run_create(
            study=study, method="icai", batch_size=10, method_config={"num_clusters": 6}
        )
        runs.run_start(run=run)
        return run

    with FakeOpenAIServer(responder=judge_responder(Judge(ORTHOGONAL_RULES))) as server:
        _, at_kill, log = _kill_midway_and_finish(
            tmp_path,
            server,
            PipelineRun,
            start_job,
            lambda run: StageArtifact.objects.filter(run=run, stage="generate", batch__gte=0),
        )
        _assert_only_in_flight_calls_were_asked_again(server, at_kill)
    assert "gcai.run_batch" in log


def test_a_killed_workers_evaluation_is_finished_by_another_without_repeating_paid_calls(
    study, tmp_path, settings
):
    polite_pairs(study, 30)
    constitution = make_constitution(study, [PLEASE])

    def start_job():
        evaluation = evaluations.evaluation_create(
            study=study, constitution=constitution, batch_size=10, principle_analysis=False
        )
        evaluations.evaluation_start(evaluation=evaluation)
        return evaluation

    with FakeOpenAIServer(responder=planted_rule_responder()) as server:
        evaluation, at_kill, log = _kill_midway_and_finish(
            tmp_path,
            server,
            Evaluation,
            start_job,
            lambda e: EvaluationArtifact.objects.filter(
                evaluation=e, stage="judging", batch__gte=0
            ),
        )
        _assert_only_in_flight_calls_were_asked_again(server, at_kill)
    assert evaluation.results["metrics"]["n_scored"] == 30
    assert evaluation.progress_done == evaluation.progress_total == 30
    assert "gcai.evaluation_batch" in log
