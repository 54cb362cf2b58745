"""Celery tasks for evaluations: thin adapters that take ids and call the engine.

Imported from ``gcai/constitutions/tasks.py`` so Celery's autodiscovery registers them.
"""

from __future__ import annotations

from celery import shared_task

from gcai.constitutions import evaluations
from gcai.constitutions.evaluation_jobs import JUDGING


# Evaluations record their own failures on the Evaluation row; a resume is explicit and
# cheap (stored batches and the LLM response cache), so the tasks never retry blindly.
@shared_task(name="gcai.evaluation_step", ignore_result=True)
def evaluation_step_task(evaluation_id: int) -> str:
    return evaluations.evaluation_step(evaluation_id)


@shared_task(name="gcai.evaluation_batch", ignore_result=True)
def evaluation_batch_task(evaluation_id: int, stage: str | int, batch: int | None = None) -> str:
    if batch is None:
        # A message queued before evaluations ran on the engine: (id, batch), judging.
        stage, batch = JUDGING, int(stage)
    return evaluations.evaluation_batch(evaluation_id, str(stage), batch)
