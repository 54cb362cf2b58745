"""The one job engine: stages of batches, a stored artifact per batch, resume, cancel.

A job kind is a declaration (:class:`JobKind`): which row holds the job's status
(a :class:`~gcai.constitutions.models.Job` subclass), which table holds its artifacts
(rows with ``<job_field>``, ``stage``, ``batch``, ``data``), the job's stages, how to
build the stage inputs, what to do when the last stage is stored, and the two Celery
tasks that advance it. Pipeline runs (:mod:`gcai.constitutions.runs`), evaluations
(:mod:`gcai.constitutions.evaluation_jobs`) and steering evaluations
(:mod:`gcai.modeling.steering_jobs`) are all declared this way.

Scheduling model (why not a Celery chord): ``step`` executes whole stages in place and
fans batched stages out as a Celery ``group`` of batch tasks. The join is done in the
database, not by the result backend: each batch stores its artifact and, under a row
lock on the job, the batch that completes the stage enqueues the next step. That works
with any broker (including the server-less file-system one), survives killed workers,
and makes resume nothing more than "enqueue the step again": stored artifacts are
skipped and the LLM cache answers any call that finished before the interruption.
"""

from __future__ import annotations

import logging
import math
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.module_loading import import_string

from gcai.core.llm.base import LLMCancelled
from gcai.core.llm.usage import UsageMeter
from gcai.jobs import guards
from gcai.jobs.models import JobStatus
from gcai.jobs.stages import DEFAULT_BATCH_SIZE, Stage, StageError, batches

log = logging.getLogger(__name__)

# (stage, done, total): batches of the stage, or its items (see JobKind.progress_unit).
ProgressFn = Callable[[str, int, int], None]

# A cancel reaches a job as JobCancelled (GuardedModel) or, from a client used without
# the guard, as the LLM layer's own LLMCancelled.
_CANCELLED = (guards.JobCancelled, LLMCancelled)

# A worker process runs many batches of the same stage in a row; reloading and re-deriving
# every training pair for each of them cost more than a batch's own work on large runs.
# Keeping them for the process also keeps its batches cut from one consistent list.
_ITEMS: OrderedDict[tuple[str, int, str, str], list[Any]] = OrderedDict()
_ITEMS_MAX = 4
_ITEMS_LOCK = threading.Lock()


def _stage_items(job: Any, stage: Stage, ctx: Any) -> list[Any]:
    assert stage.items is not None
    # created_at too: a test database that rolls back may hand out the same id again.
    created = getattr(job, "created_at", None)
    key = (job._meta.label, job.pk, created.isoformat() if created else "", stage.name)
    with _ITEMS_LOCK:
        if key in _ITEMS:
            _ITEMS.move_to_end(key)
            return _ITEMS[key]
    items = list(stage.items(ctx))
    with _ITEMS_LOCK:
        _ITEMS[key] = items
        while len(_ITEMS) > _ITEMS_MAX:
            _ITEMS.popitem(last=False)
    return items


@dataclass(frozen=True)
class JobKind:
    """Everything the engine needs to know about one kind of job."""

    job_model: type[Model]
    artifact_model: type[Model]
    job_field: str
    # stages(job, ctx) -> the ordered stages; inputs(job, meter) -> ctx for the stages.
    stages: Callable[[Any, Any], list[Stage]]
    inputs: Callable[[Any, UsageMeter], Any]
    # finish(job, ctx) runs once every stage is stored; it marks the job succeeded.
    finish: Callable[[Any, Any], Any]
    # The two Celery tasks as dotted paths, imported when first needed: the tasks modules
    # import the module that declares the kind, so a module-level import would be a cycle.
    step_task: str
    batch_task: str
    # What progress_done / progress_total count: "batches" of the current stage (whole
    # stages count as one), or "items" of the batched stages (an evaluation's pairs:
    # "Pairs judged: N of M"); with "items", whole stages leave the count as it is.
    progress_unit: str = "batches"

    def __post_init__(self) -> None:
        if self.progress_unit not in ("batches", "items"):
            raise ValueError("progress_unit: must be 'batches' or 'items'")

    # ------------------------------------------------------------------ storage

    def artifacts(self, job: Any):
        return self.artifact_model.objects.filter(**{self.job_field: job})  # type: ignore[attr-defined]

    def output(self, job: Any, stage: str) -> dict[str, Any]:
        """A finished stage's merged output (StageError when it is not stored yet)."""
        artifact = self.artifacts(job).filter(stage=stage, batch=-1).first()
        if artifact is None:
            raise StageError(f"Stage {stage!r} has no stored output yet.")
        return artifact.data

    def save_artifact(self, job: Any, stage: str, batch: int, data: dict[str, Any]) -> None:
        try:
            with transaction.atomic():
                self.artifact_model.objects.create(  # type: ignore[attr-defined]
                    **{self.job_field: job}, stage=stage, batch=batch, data=data
                )
        except IntegrityError:
            # A duplicate delivery of the same batch finished first; its result is identical.
            log.info("artifact %s[%s] of job %s already stored", stage, batch, job.pk)

    def _jobs(self):
        return self.job_model.objects  # type: ignore[attr-defined]

    def record_usage(self, job_id: int, meter: UsageMeter) -> None:
        guards.record_usage(self.job_model, job_id, meter)

    def fail(self, job_id: int, message: str, *, status: str = JobStatus.FAILED) -> None:
        self._jobs().filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
            status=status, error=message[:5000], finished_at=timezone.now()
        )

    def batch_size(self, job: Any) -> int:
        return int(job.config.get("batch_size") or DEFAULT_BATCH_SIZE)

    def _progress(self, n_items: int, stored: Iterable[int], size: int) -> tuple[int, int]:
        """(done, total) of a batched stage of ``n_items`` cut in batches of ``size``,
        ``stored`` being the indices of the stored batches, in this kind's unit."""
        n = math.ceil(n_items / size)
        have = {i for i in stored if 0 <= i < n}
        if self.progress_unit == "items":
            return sum(min(size, n_items - i * size) for i in have), n_items
        return len(have), max(n, 1)

    def _stage_by_name(self, job: Any, ctx: Any, name: str) -> Stage:
        for stage in self.stages(job, ctx):
            if stage.name == name:
                return stage
        raise StageError(f"Unknown stage {name!r}.")

    # ------------------------------------------------------------------ control

    def cancel(self, job: Any) -> None:
        """Ask a job to stop; running batches notice within a second and stop calling the LLM."""
        self._jobs().filter(pk=job.pk).update(cancel_requested=True)
        # A queued job has nothing in flight: cancel it at once.
        self._jobs().filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now()
        )

    def start(self, job: Any) -> None:
        """Queue the job's next step once the current transaction commits."""
        task = import_string(self.step_task)
        job_id = job.pk
        transaction.on_commit(lambda: task.delay(job_id))

    def reopen(self, job: Any) -> None:
        """Queue a failed, cancelled or stalled job again (without starting it)."""
        if job.status == JobStatus.SUCCEEDED:
            raise ValueError("This job has already succeeded.")
        self._jobs().filter(pk=job.pk).update(
            status=JobStatus.QUEUED, cancel_requested=False, error="", finished_at=None
        )

    def resume(self, job: Any) -> None:
        """Restart a failed, cancelled or stalled job from its last stored stage."""
        self.reopen(job)
        self.start(job)

    # ------------------------------------------------------------------ execution

    def step(self, job_id: int, *, inline: bool = False, progress: ProgressFn | None = None) -> str:
        """Advance a job as far as possible in this process.

        Batched stages go to the workers, unless ``inline``: then they are computed here,
        one batch after the other (the command-line builders and scripts; never the web).
        Returns what happened: "dispatched:<stage>", "succeeded", "cancelled", "failed"
        or "idle" (nothing to do: the job is not active).
        """
        with transaction.atomic():
            job = self._jobs().select_for_update().filter(pk=job_id).first()
            if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                return "idle"
            if job.cancel_requested:
                job.status, job.finished_at = JobStatus.CANCELLED, timezone.now()
                job.save(update_fields=["status", "finished_at"])
                return "cancelled"
            if job.status == JobStatus.QUEUED:
                job.status = JobStatus.RUNNING
                job.started_at = job.started_at or timezone.now()
                job.save(update_fields=["status", "started_at"])

        meter = UsageMeter()
        try:
            ctx = self.inputs(job, meter)
            stages = self.stages(job, ctx)
            done = set(self.artifacts(job).filter(batch=-1).values_list("stage", flat=True))
            for stage in stages:
                if stage.name in done:
                    continue
                if self._jobs().filter(pk=job.pk, cancel_requested=True).exists():
                    raise guards.JobCancelled()
                if stage.batched:
                    outcome = self._advance_batched(
                        job, ctx, stage, inline=inline, progress=progress
                    )
                    if outcome is not None:
                        return outcome
                    continue
                if progress is not None:
                    progress(stage.name, 0, 1)
                counts = self.progress_unit == "batches"
                self._jobs().filter(pk=job.pk).update(
                    stage=stage.name,
                    **({"progress_done": 0, "progress_total": 1} if counts else {}),
                )
                assert stage.compute is not None
                data = stage.compute(ctx)
                self.save_artifact(job, stage.name, -1, data)
                self.record_usage(job.pk, meter)
                if counts:
                    self._jobs().filter(pk=job.pk).update(progress_done=1)
                if progress is not None:
                    progress(stage.name, 1, 1)
            self.finish(job, ctx)
            return "succeeded"
        except Exception as exc:
            return self._stopped_by(exc, job.pk, meter, traceback_too=True)

    def _stopped_by(
        self,
        exc: Exception,
        job_id: int,
        meter: UsageMeter,
        *,
        where: str = "",
        traceback_too: bool = False,
    ) -> str:
        """End the job for an exception raised while computing (call it from the ``except``
        block): cancelled, failed with the error's message (stage errors, an unreachable
        LLM, bad values), or failed on a bug with its class (and traceback). The usage up
        to the exception is recorded either way. Returns the outcome."""
        self.record_usage(job_id, meter)
        if isinstance(exc, _CANCELLED):
            self.fail(job_id, "", status=JobStatus.CANCELLED)
            return "cancelled"
        prefix = f"{where}: " if where else ""
        if isinstance(exc, StageError | guards.LLMUnavailable | ValueError):
            self.fail(job_id, f"{prefix}{exc}")
            return "failed"
        log.exception("job %s failed%s", job_id, f" in {where}" if where else "")
        detail = f"{exc.__class__.__name__}: {exc}"
        if traceback_too:
            detail += f"\n\n{traceback.format_exc(limit=5)}"
        self.fail(job_id, prefix + detail)
        return "failed"

    def _advance_batched(
        self,
        job: Any,
        ctx: Any,
        stage: Stage,
        *,
        inline: bool = False,
        progress: ProgressFn | None = None,
    ) -> str | None:
        """Merge a batched stage whose batches are all stored, or dispatch (``inline``:
        compute) the missing ones."""
        assert stage.items is not None
        assert stage.merge is not None
        size = self.batch_size(job)
        n_items = len(stage.items(ctx))
        n = math.ceil(n_items / size)
        stored = set(
            self.artifacts(job)
            .filter(stage=stage.name, batch__gte=0)
            .values_list("batch", flat=True)
        )
        missing = [i for i in range(n) if i not in stored]
        done, total = self._progress(n_items, stored, size)
        self._jobs().filter(pk=job.pk).update(
            stage=stage.name, progress_done=done, progress_total=total
        )
        if missing and inline:
            for i in missing:
                if progress is not None:
                    progress(stage.name, done, total)
                outcome = self.batch(job.pk, stage.name, i, join=False)
                if outcome != "stored":
                    return outcome
                stored.add(i)
                done, _ = self._progress(n_items, stored, size)
                self._jobs().filter(pk=job.pk).update(progress_done=done)
            if progress is not None:
                progress(stage.name, total, total)
        elif missing:
            from celery import group

            task = import_string(self.batch_task)
            group(task.s(job.pk, stage.name, i) for i in missing).apply_async()
            return f"dispatched:{stage.name}"
        parts = list(
            self.artifacts(job)
            .filter(stage=stage.name, batch__gte=0)
            .order_by("batch")
            .values_list("data", flat=True)
        )
        self.save_artifact(job, stage.name, -1, stage.merge(ctx, parts))
        return None

    def batch(self, job_id: int, stage_name: str, batch: int, *, join: bool = True) -> str:
        """Compute one batch of a batched stage; the batch that completes the stage advances
        the job (unless ``join`` is False: the in-process runner advances it itself, and
        then "stored" means the batch is done)."""
        job = self._jobs().filter(pk=job_id).first()
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return "idle"
        if job.cancel_requested:
            return self.step(job_id)
        if not self.artifacts(job).filter(stage=stage_name, batch=batch).exists():
            meter = UsageMeter()
            try:
                ctx = self.inputs(job, meter)
                stage = self._stage_by_name(job, ctx, stage_name)
                assert stage.items is not None
                assert stage.compute_batch is not None
                chunks = batches(_stage_items(job, stage, ctx), self.batch_size(job))
                if batch >= len(chunks):
                    raise StageError(f"Batch {batch} of {stage_name} does not exist.")
                data = stage.compute_batch(ctx, chunks[batch])
                self.save_artifact(job, stage_name, batch, data)
            except Exception as exc:
                return self._stopped_by(exc, job.pk, meter, where=f"{stage_name} batch {batch}")
            self.record_usage(job.pk, meter)
        if not join:
            return "stored"
        return self._join(job_id, stage_name)

    def _join(self, job_id: int, stage_name: str) -> str:
        """Under a row lock, let exactly one finishing batch trigger the next step."""
        with transaction.atomic():
            job = self._jobs().select_for_update().get(pk=job_id)
            stored = list(
                self.artifacts(job)
                .filter(stage=stage_name, batch__gte=0)
                .values_list("batch", flat=True)
            )
            if self.progress_unit == "items":
                # progress_total holds the stage's item count (set when it was dispatched).
                size = self.batch_size(job)
                n_batches = math.ceil(job.progress_total / size)
                job.progress_done, _ = self._progress(job.progress_total, stored, size)
            else:
                n_batches = job.progress_total
                job.progress_done = len(stored)
            job.save(update_fields=["progress_done"])
            joined = job.config.get("_joined", [])
            complete = len(stored) >= n_batches and job.stage == stage_name
            if not complete or stage_name in joined:
                return "batch-done"
            job.config = {**job.config, "_joined": [*joined, stage_name]}
            job.save(update_fields=["config"])
            task = import_string(self.step_task)
            transaction.on_commit(lambda: task.delay(job_id))
        return "stage-complete"
