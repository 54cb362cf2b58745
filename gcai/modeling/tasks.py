"""Celery tasks for steering and critique runs: thin adapters onto the job engine."""

from __future__ import annotations

from celery import shared_task

from gcai.modeling import steering_jobs


# Runs record their own failures on the row; a resume is explicit and cheap (stored
# batches and the LLM response cache), so the tasks never retry blindly.
@shared_task(name="gcai.steering_step", ignore_result=True)
def steering_step_task(run_id: int) -> str:
    return steering_jobs.ENGINE.step(run_id)


@shared_task(name="gcai.steering_batch", ignore_result=True)
def steering_batch_task(run_id: int, stage: str, batch: int) -> str:
    return steering_jobs.ENGINE.batch(run_id, stage, batch)
