"""A steering evaluation through a real Celery worker process, broker and database."""

from __future__ import annotations

import time

import pytest

from gcai.modeling import services
from gcai.modeling.models import SteeringRun
from tests.fakes import FakeOpenAIServer
from tests.modeling.support import RULE, make_constitution, steering_responder

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_and_server(transactional_db, tmp_path, settings):
    from gcai.celery import app
    from tests.conftest import start_worker

    previous_queue = app.conf.task_default_queue
    with FakeOpenAIServer(responder=steering_responder()) as server:
        env = {
            "GCAI_LLM_BACKEND": "openai",
            "GCAI_LLM_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "test",
            "GCAI_LLM_MODEL": "fake-judge",
            "GCAI_LLM_MAX_RETRIES": "1",
            "GCAI_LLM_TIMEOUT": "10",
        }
        worker = start_worker(tmp_path, extra_env=env)
        try:
            yield server, worker
        finally:
            worker.stop()
            app.conf.task_default_queue = previous_queue


def test_steering_batches_run_on_the_worker(study, worker_and_server):
    server, worker = worker_and_server
    run = services.steering_create(
        study=study,
        constitution=make_constitution(study, [RULE]),
        prompts=[f"Q{i}?" for i in range(6)],
        target={"base_url": server.base_url, "model": "target"},
        batch_size=4,
    )
    services.steering_start(run=run)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            break
        time.sleep(0.5)
    assert run.status == "succeeded", f"{run.error}\n{worker.log()[-3000:]}"
    assert run.results["comparisons"][0]["win_rate"]["value"] == 1.0
    assert server.chat_calls == 12 + 12
    assert SteeringRun.objects.get(pk=run.pk).llm_calls == 24
    log = worker.log()
    assert "gcai.steering_batch" in log
    assert "gcai.steering_step" in log
