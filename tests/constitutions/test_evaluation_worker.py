"""Evaluations through real processes: web-side enqueue, broker, a Celery worker, database.

The worker is another process, so it gets the LLM settings through its environment and
reaches the fake judge server, which runs in this process on 127.0.0.1.
"""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command

from gcai.constitutions.evaluations import evaluation_start, evaluations_create_comparison
from gcai.constitutions.models import Evaluation, EvaluationArtifact
from gcai.jobs.models import JobStatus
from tests.constitutions.evaluation_support import (
    PLEASE,
    llm_settings_for,
    make_constitution,
    planted_rule_responder,
    polite_pairs,
)
from tests.fakes import FakeOpenAIServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def judge_worker(transactional_db, tmp_path, settings):
    """A fake judge server and a real worker process configured to use it."""
    from gcai.celery import app
    from tests.conftest import start_worker

    previous_queue = app.conf.task_default_queue
    with FakeOpenAIServer(responder=planted_rule_responder()) as server:
        env = llm_settings_for(server)
        settings.GCAI_LLM_MODEL = env["GCAI_LLM_MODEL"]
        worker = start_worker(tmp_path, extra_env=env)
        try:
            yield server, worker
        finally:
            worker.stop()
            app.conf.task_default_queue = previous_queue


def wait_for(ids: list[int], worker, timeout: float = 180) -> list[Evaluation]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(Evaluation.objects.filter(pk__in=ids).order_by("pk"))
        if not any(e.is_active for e in rows):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"evaluations still running\n{worker.log()[-3000:]}")


def test_a_comparison_runs_through_the_worker_in_batches(study, judge_worker):
    server, worker = judge_worker
    polite_pairs(study, 10)
    created = evaluations_create_comparison(
        study=study, constitutions=[make_constitution(study, [PLEASE])], batch_size=3
    )
    for evaluation in created:
        evaluation_start(evaluation=evaluation)

    done = wait_for([e.pk for e in created], worker)

    assert [e.status for e in done] == [JobStatus.SUCCEEDED] * 3, [e.error for e in done]
    constitution, no_constitution, orthogonal = done
    assert constitution.results["metrics"]["accuracy_per_order"]["value"] == 1.0
    assert constitution.results["metrics"]["n_scored"] == 10
    # Forced to choose without a deciding rule, the judge lands at chance.
    assert no_constitution.results["metrics"]["accuracy_per_order"]["value"] == 0.5
    assert orthogonal.results["metrics"]["accuracy_per_order"]["value"] == 0.5
    # Both orders for every pair and target, plus the per-principle analysis of the two
    # constitutions; nothing was asked twice.
    assert server.chat_calls == 10 * (4 + 2 + 4)
    assert sum(e.llm_calls for e in done) == server.chat_calls
    log = worker.log()
    assert "gcai.evaluation_batch" in log
    assert "gcai.evaluation_step" in log
    # Ten pairs in batches of three: four stored batches each, then the merged stages.
    for evaluation in done:
        stored = sorted(
            EvaluationArtifact.objects.filter(evaluation=evaluation).values_list("stage", "batch")
        )
        assert stored == [("judging", b) for b in range(-1, 4)] + [("scoring", -1)]
        assert evaluation.progress_done == evaluation.progress_total == 10


def test_the_command_waits_for_the_worker_and_prints_the_table(study, judge_worker):
    server, _worker = judge_worker
    polite_pairs(study, 6)
    constitution = make_constitution(study, [PLEASE], title="Polite")
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "evaluate", str(constitution.pk), "--wait", "--timeout", "180", stdout=out, stderr=err
    )

    assert "Polite v1" in out.getvalue()
    assert "100.0% [" in out.getvalue()
    assert "6/6 pair judgements stored, 0 running" in err.getvalue()
    assert server.chat_calls == 6 * 4
