"""``manage.py build_constitution --workers``: the deployed path, through a real Celery
worker process that reaches the rule-following fake judge on 127.0.0.1."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from gcai.constitutions.models import PipelineRun
from gcai.jobs.models import JobStatus
from tests.constitutions.test_reproduce import OWN_RULES, _own_data
from tests.fakes import FakeOpenAIServer
from tests.fakes.rule_judge import app_environment, rule_judge_responder

pytestmark = pytest.mark.django_db(transaction=True)


def test_build_constitution_on_the_workers(transactional_db, tmp_path):
    from gcai.celery import app
    from tests.conftest import start_worker

    previous_queue = app.conf.task_default_queue
    with FakeOpenAIServer(responder=rule_judge_responder(OWN_RULES)) as server:
        worker = start_worker(tmp_path, extra_env=app_environment(server))
        try:
            out, err = io.StringIO(), io.StringIO()
            call_command(
                "build_constitution",
                str(_own_data(tmp_path / "own.jsonl", 18)),
                "--method",
                "icai_improved_1",
                "--workers",
                "--out",
                str(tmp_path / "c"),
                stdout=out,
                stderr=err,
            )
        finally:
            worker.stop()
            app.conf.task_default_queue = previous_queue

    run = PipelineRun.objects.get()
    assert run.status == JobStatus.SUCCEEDED
    assert run.llm_calls > 0  # paid for by the worker, recorded on the run
    assert "gcai.run_batch" in worker.log()
    assert "icai_improved_1: " in err.getvalue()  # the progress bar followed the stages
    record = json.loads((tmp_path / "c" / "run.json").read_text(encoding="utf-8"))
    assert record["preset"] == "icai_improved_1"
    assert any("please" in p["text"].lower() for p in record["constitution"]["principles"])
