"""Pipeline runs: create, start, step, fan out, cancel, resume, finish.

Scheduling model (why not a Celery chord): a run advances through ``run_step``, which
executes whole stages in place and fans batched stages out as a Celery ``group`` of
``run_batch`` tasks. The join is done in the database, not by the result backend: each
batch stores its artifact and, under a row lock on the run, the batch that completes
the stage enqueues the next ``run_step``. That works with any broker (including the
server-less file-system one), survives killed workers, and makes ``resume`` nothing more
than "enqueue run_step again": stored artifacts are skipped and the LLM cache answers any
call that finished before the interruption.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.models import Annotation, Moderation, PreferencePair, Split, Study, ValueStatement
from gcai.constitutions import jobs, labels, pipeline
from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    JobStatus,
    Method,
    PipelineRun,
    Principle,
    StageArtifact,
)
from gcai.constitutions.pipeline import RunInputs, Stage, StageError
from gcai.core import presets
from gcai.core.llm.usage import UsageMeter
from gcai.core.types import Judgement, Pair, Preference, Statement

log = logging.getLogger(__name__)


RunCancelled = jobs.JobCancelled


# --------------------------------------------------------------------------- inputs


def _core_pair(pair: PreferencePair, label: Preference) -> Pair:
    return Pair(
        id=str(pair.pk),
        prompt=pair.prompt,
        response_a=pair.response_a,
        response_b=pair.response_b,
        preferred=label,
        score_a=pair.score_a,
        score_b=pair.score_b,
    )


def run_pairs(run: PipelineRun) -> list[Pair]:
    """The run's training pairs as core Pairs with their labels (two queries).

    Labels come from people only, with the run's recorded tie setting (see
    :mod:`gcai.constitutions.labels`).
    """
    pairs = list(run.training_pairs.order_by("pk"))
    ties = run.config.get("ties", labels.LEGACY_TIE_POLICY)
    found = labels.pairs_labels(pairs, ties=ties)
    return [_core_pair(p, found.labels[p.pk]) for p in pairs]


def run_judgements(run: PipelineRun) -> list[Judgement]:
    """Preferences with reasons on the training pairs: annotations, and reasons that came
    with imported data (``source_reason``), each under a pseudonym."""
    pairs = {p.pk: p for p in run.training_pairs.all()}
    core = {pk: _core_pair(p, Preference(p.source_preference)) for pk, p in pairs.items()}
    out: list[Judgement] = []
    annotations = (
        Annotation.objects.filter(pair_id__in=pairs.keys())
        .exclude(reason="")
        .exclude(metadata__has_key="annotator_type")  # machine annotators: not human input
        .select_related("participant")
        .order_by("pk")
    )
    memberships = dict(
        run.study.memberships.filter(role="annotator").values_list("user_id", "pseudonym")
    )
    for a in annotations:
        if a.annotator_id:
            # Someone no longer in the study keeps a stable pseudonym, never their id.
            who = (
                memberships.get(a.annotator_id)
                or "A-"
                + hashlib.sha256(f"{settings.SECRET_KEY}:{a.annotator_id}".encode()).hexdigest()[:8]
            )
        elif a.participant_id:
            who = a.participant.pseudonym
        else:
            who = a.external_annotator
        pair = core[a.pair_id]
        out.append(
            Judgement(
                id=f"ann:{a.pk}",
                pair=Pair(
                    pair.id,
                    pair.prompt,
                    pair.response_a,
                    pair.response_b,
                    Preference(a.preferred),
                    pair.score_a,
                    pair.score_b,
                ),
                preferred=Preference(a.preferred),
                reason=a.reason,
                annotator=who,
            )
        )
    for pk, p in sorted(pairs.items()):
        if p.source_reason.strip() and p.source_preference != "none":
            out.append(
                Judgement(
                    id=f"src:{pk}",
                    pair=core[pk],
                    preferred=Preference(p.source_preference),
                    reason=p.source_reason,
                    annotator=f"source:{p.dataset_id}",
                )
            )
    return out


def run_statements(run: PipelineRun) -> list[Statement]:
    statements = (
        ValueStatement.objects.filter(study=run.study, moderation=Moderation.APPROVED)
        .select_related("participant")
        .order_by("pk")
    )
    return [
        Statement(id=str(s.pk), text=s.text, participant=s.author_pseudonym, question=s.question)
        for s in statements
    ]


def _output_loader(run: PipelineRun):
    def load(stage: str) -> dict[str, Any]:
        artifact = StageArtifact.objects.filter(run=run, stage=stage, batch=-1).first()
        if artifact is None:
            raise StageError(f"Stage {stage!r} has no stored output yet.")
        return artifact.data

    return load


def _inputs(run: PipelineRun, meter: UsageMeter) -> RunInputs:
    from gcai.constitutions import llm

    cancel = jobs.CancelCheck(PipelineRun, run.pk)
    return RunInputs(
        method=run.method,
        config=run.config,
        pairs_loader=lambda: run_pairs(run),
        judgements_loader=lambda: run_judgements(run),
        statements_loader=lambda: run_statements(run),
        output_loader=_output_loader(run),
        model_factory=lambda: jobs.GuardedModel(
            llm.chat_model_for(meter=meter, should_cancel=cancel)
        ),
        embedder_factory=llm.embedder,
    )


# --------------------------------------------------------------------------- create / start


def _training_pair_ids(study: Study, dataset_ids: list[int] | None) -> list[int]:
    pairs = PreferencePair.objects.filter(dataset__study=study)
    if dataset_ids:
        pairs = pairs.filter(dataset_id__in=dataset_ids)
    train = list(pairs.filter(split=Split.TRAIN).values_list("pk", flat=True))
    if not train:
        if pairs.filter(split=Split.UNASSIGNED).exists():
            raise ValueError("No training pairs: assign a train/test split to the dataset first.")
        raise ValueError("No training pairs: import a dataset with a train split first.")
    return train


@transaction.atomic
def run_create(
    *,
    study: Study,
    method: str,
    user: Any = None,
    title: str = "",
    seed: int = 0,
    method_config: dict[str, Any] | None = None,
    dataset_ids: list[int] | None = None,
    max_training_pairs: int | None = None,
    batch_size: int = pipeline.DEFAULT_BATCH_SIZE,
    training_pair_ids: list[int] | None = None,
    comparison_group: str = "",
    publish: bool = False,
    ties: str = labels.DEFAULT_TIE_POLICY,
) -> PipelineRun:
    """Create a queued run of the preset ``method``; ``method_config`` holds the
    researcher's deviations from it. The preset's name and version and the fully
    resolved settings are stored, so the run keeps its meaning when presets change.
    Raises ValueError (naming the setting) on bad configuration."""
    if method not in Method.values:
        raise ValueError(f"method: must be one of {', '.join(Method.values)}")
    if batch_size < 1 or batch_size > 1000:
        raise ValueError("batch_size: must be between 1 and 1000")
    if max_training_pairs is not None and max_training_pairs < 1:
        raise ValueError("max_training_pairs: must be at least 1")
    resolved = presets.resolve(method, method_config, seed=seed)  # validates, naming the field
    config = {
        "seed": seed,
        **resolved.to_dict(),
        "batch_size": batch_size,
        "max_training_pairs": max_training_pairs,
        "dataset_ids": list(dataset_ids or []),
        "publish": bool(publish),
        "ties": labels.check_tie_policy(ties),
    }
    if training_pair_ids is None:
        training_pair_ids = pipeline.sample_ids(
            _training_pair_ids(study, dataset_ids), max_training_pairs, seed
        )
    run = PipelineRun.objects.create(
        study=study,
        method=method,
        title=title or f"{Method(method).label} · {timezone.now():%Y-%m-%d %H:%M}",
        seed=seed,
        config=config,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        comparison_group=comparison_group,
    )
    run.training_pairs.set(training_pair_ids)
    return run


@transaction.atomic
def runs_create_comparison(
    *,
    study: Study,
    user: Any = None,
    seed: int = 0,
    icai_method: str = Method.ICAI,
    gcai_config: dict[str, Any] | None = None,
    icai_config: dict[str, Any] | None = None,
    dataset_ids: list[int] | None = None,
    max_training_pairs: int | None = None,
    batch_size: int = pipeline.DEFAULT_BATCH_SIZE,
    publish: bool = False,
    ties: str = labels.DEFAULT_TIE_POLICY,
) -> tuple[PipelineRun, PipelineRun]:
    """GCAI and an ICAI baseline on the same study and the SAME training pairs."""
    if icai_method == Method.GCAI or icai_method not in Method.values:
        raise ValueError("icai_method: must be one of the ICAI methods")
    group = uuid.uuid4().hex
    pair_ids = pipeline.sample_ids(_training_pair_ids(study, dataset_ids), max_training_pairs, seed)
    common = dict(
        study=study,
        user=user,
        seed=seed,
        dataset_ids=dataset_ids,
        max_training_pairs=max_training_pairs,
        batch_size=batch_size,
        training_pair_ids=pair_ids,
        comparison_group=group,
        publish=publish,
        ties=ties,
    )
    gcai_run = run_create(method=Method.GCAI, method_config=gcai_config, **common)
    icai_run = run_create(method=icai_method, method_config=icai_config, **common)
    return gcai_run, icai_run


def run_start(*, run: PipelineRun) -> None:
    """Queue the run's first step once the current transaction commits."""
    from gcai.constitutions.tasks import run_step_task

    transaction.on_commit(lambda: run_step_task.delay(run.pk))


def run_cancel(*, run: PipelineRun) -> None:
    """Ask a run to stop; running batches notice within a second and stop calling the LLM."""
    PipelineRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    # A queued run has nothing in flight: cancel it at once.
    PipelineRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )


def run_resume(*, run: PipelineRun) -> None:
    """Restart a failed, cancelled or stalled run from its last stored stage."""
    run_resume_prepare(run=run)
    run_start(run=run)


# --------------------------------------------------------------------------- execution


def _record_usage(run_id: int, meter: UsageMeter) -> None:
    jobs.record_usage(PipelineRun, run_id, meter)


def _fail(run_id: int, message: str, *, status: str = JobStatus.FAILED) -> None:
    PipelineRun.objects.filter(pk=run_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=status, error=message[:5000], finished_at=timezone.now()
    )


def _save_artifact(run: PipelineRun, stage: str, batch: int, data: dict[str, Any]) -> None:
    try:
        with transaction.atomic():
            StageArtifact.objects.create(run=run, stage=stage, batch=batch, data=data)
    except IntegrityError:
        # A duplicate delivery of the same batch finished first; its result is identical.
        log.info("artifact %s[%s] of run %s already stored", stage, batch, run.pk)


def _stage_by_name(run: PipelineRun, ctx: RunInputs, name: str) -> Stage:
    for stage in pipeline.stages_for(run.method, ctx.config):
        if stage.name == name:
            return stage
    raise StageError(f"Unknown stage {name!r} for {run.method}.")


ProgressFn = Callable[[str, int, int], None]  # (stage, batches done, batches in stage)


def run_run_inline(*, run: PipelineRun, progress: ProgressFn | None = None) -> str:
    """Run (or resume) a run to the end in this process, without a worker.

    For the command-line builders, scripts and tests; the web never calls it. Batches
    are computed one after the other; storage, resume and the LLM cache work as with
    workers. Returns "succeeded", "cancelled" or "failed".
    """
    if run.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        run_resume_prepare(run=run)
    return run_step(run.pk, inline=True, progress=progress)


def run_resume_prepare(*, run: PipelineRun) -> None:
    if run.status == JobStatus.SUCCEEDED:
        raise ValueError("This run has already succeeded.")
    PipelineRun.objects.filter(pk=run.pk).update(
        status=JobStatus.QUEUED, cancel_requested=False, error="", finished_at=None
    )


def run_step(run_id: int, *, inline: bool = False, progress: ProgressFn | None = None) -> str:
    """Advance a run as far as possible in this process.

    Batched stages go to the workers, unless ``inline``: then they are computed here.
    Returns what happened: "dispatched:<stage>", "succeeded", "cancelled", "failed" or
    "idle" (nothing to do: the run is not active).
    """
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return "idle"
        if run.cancel_requested:
            run.status, run.finished_at = JobStatus.CANCELLED, timezone.now()
            run.save(update_fields=["status", "finished_at"])
            return "cancelled"
        if run.status == JobStatus.QUEUED:
            run.status = JobStatus.RUNNING
            run.started_at = run.started_at or timezone.now()
            run.save(update_fields=["status", "started_at"])

    meter = UsageMeter()
    ctx = _inputs(run, meter)
    try:
        stages = pipeline.stages_for(run.method, ctx.config)
        done = set(StageArtifact.objects.filter(run=run, batch=-1).values_list("stage", flat=True))
        for stage in stages:
            if stage.name in done:
                continue
            if PipelineRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
                raise RunCancelled()
            if stage.batched:
                outcome = _advance_batched(run, ctx, stage, inline=inline, progress=progress)
                if outcome is not None:
                    return outcome
                continue
            if progress is not None:
                progress(stage.name, 0, 1)
            PipelineRun.objects.filter(pk=run.pk).update(
                stage=stage.name, progress_done=0, progress_total=1
            )
            assert stage.compute is not None
            data = stage.compute(ctx)
            _save_artifact(run, stage.name, -1, data)
            _record_usage(run.pk, meter)
            PipelineRun.objects.filter(pk=run.pk).update(progress_done=1)
            if progress is not None:
                progress(stage.name, 1, 1)
        run_finish(run=run, ctx=ctx)
        return "succeeded"
    except RunCancelled:
        _record_usage(run.pk, meter)
        _fail(run.pk, "", status=JobStatus.CANCELLED)
        return "cancelled"
    except (StageError, jobs.LLMUnavailable, ValueError) as exc:
        _record_usage(run.pk, meter)
        _fail(run.pk, str(exc))
        return "failed"
    except Exception as exc:
        _record_usage(run.pk, meter)
        log.exception("run %s failed", run.pk)
        _fail(run.pk, f"{exc.__class__.__name__}: {exc}\n\n{traceback.format_exc(limit=5)}")
        return "failed"


def _advance_batched(
    run: PipelineRun,
    ctx: RunInputs,
    stage: Stage,
    *,
    inline: bool = False,
    progress: ProgressFn | None = None,
) -> str | None:
    """Merge a batched stage whose batches are all stored, or dispatch (``inline``:
    compute) the missing ones."""
    from gcai.constitutions.tasks import run_batch_task

    assert stage.items is not None
    assert stage.merge is not None
    items = stage.items(ctx)
    size = int(run.config.get("batch_size") or pipeline.DEFAULT_BATCH_SIZE)
    n = len(pipeline.batches(items, size))
    stored = set(
        StageArtifact.objects.filter(run=run, stage=stage.name, batch__gte=0).values_list(
            "batch", flat=True
        )
    )
    missing = [i for i in range(n) if i not in stored]
    PipelineRun.objects.filter(pk=run.pk).update(
        stage=stage.name, progress_done=n - len(missing), progress_total=max(n, 1)
    )
    if missing and inline:
        for done, i in enumerate(missing, n - len(missing)):
            if progress is not None:
                progress(stage.name, done, n)
            outcome = run_batch(run.pk, stage.name, i, join=False)
            if outcome != "stored":
                return outcome
        if progress is not None:
            progress(stage.name, n, n)
    elif missing:
        from celery import group

        group(run_batch_task.s(run.pk, stage.name, i) for i in missing).apply_async()
        return f"dispatched:{stage.name}"
    parts = list(
        StageArtifact.objects.filter(run=run, stage=stage.name, batch__gte=0)
        .order_by("batch")
        .values_list("data", flat=True)
    )
    _save_artifact(run, stage.name, -1, stage.merge(ctx, parts))
    return None


def run_batch(run_id: int, stage_name: str, batch: int, *, join: bool = True) -> str:
    """Compute one batch of a batched stage; the batch that completes the stage advances
    the run (unless ``join`` is False: the in-process runner advances it itself, and then
    "stored" means the batch is done)."""
    run = PipelineRun.objects.filter(pk=run_id).first()
    if run is None or run.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return "idle"
    if run.cancel_requested:
        return run_step(run_id)
    if not StageArtifact.objects.filter(run=run, stage=stage_name, batch=batch).exists():
        meter = UsageMeter()
        ctx = _inputs(run, meter)
        try:
            stage = _stage_by_name(run, ctx, stage_name)
            assert stage.items is not None
            assert stage.compute_batch is not None
            size = int(run.config.get("batch_size") or pipeline.DEFAULT_BATCH_SIZE)
            chunks = pipeline.batches(stage.items(ctx), size)
            if batch >= len(chunks):
                raise StageError(f"Batch {batch} of {stage_name} does not exist.")
            data = stage.compute_batch(ctx, chunks[batch])
            _save_artifact(run, stage_name, batch, data)
        except RunCancelled:
            _record_usage(run.pk, meter)
            _fail(run.pk, "", status=JobStatus.CANCELLED)
            return "cancelled"
        except (StageError, jobs.LLMUnavailable, ValueError) as exc:
            _record_usage(run.pk, meter)
            _fail(run.pk, f"{stage_name} batch {batch}: {exc}")
            return "failed"
        except Exception as exc:
            _record_usage(run.pk, meter)
            log.exception("run %s batch %s[%s] failed", run_id, stage_name, batch)
            _fail(run.pk, f"{stage_name} batch {batch}: {exc.__class__.__name__}: {exc}")
            return "failed"
        _record_usage(run.pk, meter)
    if not join:
        return "stored"
    return _join(run_id, stage_name)


def _join(run_id: int, stage_name: str) -> str:
    """Under a row lock, let exactly one finishing batch trigger the next step."""
    from gcai.constitutions.tasks import run_step_task

    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().get(pk=run_id)
        stored = StageArtifact.objects.filter(run=run, stage=stage_name, batch__gte=0).count()
        run.progress_done = stored
        run.save(update_fields=["progress_done"])
        joined = run.config.get("_joined", [])
        complete = stored >= run.progress_total and run.stage == stage_name
        if not complete or stage_name in joined:
            return "batch-done"
        run.config = {**run.config, "_joined": [*joined, stage_name]}
        run.save(update_fields=["config"])
        transaction.on_commit(lambda: run_step_task.delay(run_id))
    return "stage-complete"


# --------------------------------------------------------------------------- finish


@transaction.atomic
def run_finish(*, run: PipelineRun, ctx: RunInputs) -> Constitution:
    """Store the final principles with their evidence and a draft constitution (idempotent).

    Locks the run: a redelivered or resumed step that reaches this point a second time
    finds the run succeeded and leaves its (possibly published) constitution alone.
    """
    locked = PipelineRun.objects.select_for_update().get(pk=run.pk)
    if locked.status == JobStatus.SUCCEEDED:
        existing = Constitution.objects.filter(run=run).order_by("version").first()
        if existing is not None:
            return existing
    principles = pipeline.final_principles(run.method, ctx)
    Principle.objects.filter(run=run).delete()
    Constitution.objects.filter(run=run, status="draft").delete()
    rows = Principle.objects.bulk_create(
        [
            Principle(
                run=run,
                study=run.study,
                text=p.text,
                origin=str(p.origin),
                stats={**p.stats, "participants": list(p.participants)},
                rank=i,
            )
            for i, p in enumerate(principles, 1)
        ]
    )
    pair_links, ann_links, stmt_links = [], [], []
    PairThrough = Principle.supporting_pairs.through
    AnnThrough = Principle.supporting_annotations.through
    StmtThrough = Principle.supporting_statements.through
    valid_pairs = set(run.training_pairs.values_list("pk", flat=True))
    for row, p in zip(rows, principles, strict=True):
        pair_ids = {int(x) for x in p.pair_ids if str(x).isdigit()}
        for jid in p.judgement_ids:
            kind, _, pk = str(jid).partition(":")
            if kind == "ann" and pk.isdigit():
                ann_links.append(AnnThrough(principle_id=row.pk, annotation_id=int(pk)))
            elif kind == "src" and pk.isdigit():
                pair_ids.add(int(pk))
        for pid in sorted(pair_ids & valid_pairs):
            pair_links.append(PairThrough(principle_id=row.pk, preferencepair_id=pid))
        for sid in p.statement_ids:
            if str(sid).isdigit():
                stmt_links.append(StmtThrough(principle_id=row.pk, valuestatement_id=int(sid)))
    PairThrough.objects.bulk_create(pair_links, ignore_conflicts=True)
    AnnThrough.objects.bulk_create(ann_links, ignore_conflicts=True)
    StmtThrough.objects.bulk_create(stmt_links, ignore_conflicts=True)

    constitution = Constitution.objects.filter(run=run).first()
    if constitution is None:
        constitution = Constitution.objects.create(
            study=run.study,
            run=run,
            method=run.method,
            title=f"{Method(run.method).label} constitution (run {run.pk})",
            created_by=run.created_by,
        )
        ConstitutionPrinciple.objects.bulk_create(
            [
                ConstitutionPrinciple(
                    constitution=constitution, principle=row, position=i, text=row.text
                )
                for i, row in enumerate(rows, 1)
            ]
        )
        if run.config.get("publish") and rows:
            from gcai.constitutions.services import constitution_publish

            constitution_publish(constitution=constitution)
    PipelineRun.objects.filter(pk=run.pk).update(
        status=JobStatus.SUCCEEDED, stage="done", finished_at=timezone.now(), error=""
    )
    return constitution
