"""Celery tasks: thin adapters that take ids and call a service."""

from __future__ import annotations

import socket

from celery import shared_task

from gcai.constitutions import runs, services


@shared_task(name="gcai.worker_ping")
def record_worker_ping(token: str) -> str:
    services.worker_ping_record(token=token, worker=socket.gethostname())
    return token


# Runs record their own failures on the PipelineRun row; the tasks never retry blindly
# (a resume is explicit and cheap thanks to stored stages and the LLM cache).
@shared_task(name="gcai.run_step", ignore_result=True)
def run_step_task(run_id: int) -> str:
    return runs.run_step(run_id)


@shared_task(name="gcai.run_batch", ignore_result=True)
def run_batch_task(run_id: int, stage: str, batch: int) -> str:
    return runs.run_batch(run_id, stage, batch)


from gcai.constitutions import evaluation_tasks  # noqa: E402,F401
