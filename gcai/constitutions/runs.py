"""Pipeline runs: create, start, step, fan out, cancel, resume, finish.

A run is one kind of job on the shared engine (:mod:`gcai.jobs.engine`): its
stages come from :mod:`gcai.constitutions.pipeline`, its artifacts are
:class:`StageArtifact` rows, and when the last stage is stored ``run_finish`` turns the
final principles into a draft constitution. Scheduling, the database join of batches,
cancel and resume live in the engine.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotations.models import Annotation, Moderation, PreferencePair, Split, Study, ValueStatement
from gcai.constitutions import labels, pipeline
from gcai.constitutions.evidence import SOURCE_REASONS_KEY
from gcai.constitutions.llm import configured_backend
from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    Method,
    PipelineRun,
    Principle,
    StageArtifact,
)
from gcai.constitutions.pipeline import RunInputs
from gcai.constitutions.quality import QualityGateError
from gcai.core import presets
from gcai.core.llm.usage import UsageMeter
from gcai.core.types import Judgement, Pair, Preference, Statement
from gcai.jobs import engine, guards
from gcai.jobs.models import JobStatus
from gcai.jobs.stages import DEFAULT_BATCH_SIZE

log = logging.getLogger(__name__)


RunCancelled = guards.JobCancelled


# --------------------------------------------------------------------------- inputs


def pair_label(pair: PreferencePair, annotation_choices: Iterable[str] = ()) -> Preference:
    """The label a pipeline uses: the source preference, else the annotators' majority."""
    if pair.source_preference != "none":
        return Preference(pair.source_preference)
    return majority_label(annotation_choices)


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
    group = _group_filters(run)
    if group is not None:
        # A group's run learns from that group's own labels only, never the source's.
        choices: dict[int, list[str]] = {}
        human = (
            Annotation.objects.filter(pair__in=pairs)
            .exclude(metadata__has_key="annotator_type")
            .filter(group[0])
        )
        for pair_id, preferred in human.values_list("pair_id", "preferred"):
            choices.setdefault(pair_id, []).append(preferred)
        return [_core_pair(p, majority_label(choices.get(p.pk, ()))) for p in pairs]
    ties = run.config.get("ties", labels.LEGACY_TIE_POLICY)
    found = labels.pairs_labels(pairs, ties=ties)
    return [_core_pair(p, found.labels[p.pk]) for p in pairs]


def majority_label(choices: Iterable[str]) -> Preference:
    """The annotators' majority (a tie when the top choices are level; NONE without any)."""
    choices = list(choices)
    if not choices:
        return Preference.NONE
    counts = {c: choices.count(c) for c in set(choices)}
    best = max(counts.values())
    winners = [c for c, n in counts.items() if n == best]
    return Preference(winners[0]) if len(winners) == 1 else Preference.TIE


def _group_filters(run: PipelineRun):
    """(annotation filter, statement filter) of a per-group run, else None.

    A run built for one group of people (``gcai.groups``) stores that group's members,
    frozen when it was created, in ``config["people"]``.
    """
    people = run.config.get("people")
    if not people:
        return None
    from annotations.attributes import Person, group_filters

    return group_filters(Person(kind, ref) for kind, ref in people.get("members", []))


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
    group = _group_filters(run)
    if group is not None:
        annotations = annotations.filter(group[0])
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
        if group is not None:
            break  # reasons that came with the data are nobody's in particular
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
    group = _group_filters(run)
    if group is not None:
        statements = statements.filter(group[1])
    return [
        Statement(id=str(s.pk), text=s.text, participant=s.author_pseudonym, question=s.question)
        for s in statements
    ]


def _output_loader(run: PipelineRun):
    def load(stage: str) -> dict[str, Any]:
        return ENGINE.output(run, stage)

    return load


def _inputs(run: PipelineRun, meter: UsageMeter) -> RunInputs:
    from gcai.constitutions import llm

    cancel = guards.CancelCheck(PipelineRun, run.pk)
    return RunInputs(
        method=run.method,
        config=run.config,
        pairs_loader=lambda: run_pairs(run),
        judgements_loader=lambda: run_judgements(run),
        statements_loader=lambda: run_statements(run),
        output_loader=_output_loader(run),
        model_factory=lambda: guards.GuardedModel(
            llm.chat_model_for(meter=meter, should_cancel=cancel)
        ),
        embedder_factory=llm.embedder,
        fast_embedder_factory=llm.fast_content_embedder,
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
    batch_size: int = DEFAULT_BATCH_SIZE,
    training_pair_ids: list[int] | None = None,
    comparison_group: str = "",
    publish: bool = False,
    people: dict[str, Any] | None = None,
    ties: str = labels.DEFAULT_TIE_POLICY,
) -> PipelineRun:
    """Create a queued run. Raises ValueError (naming the setting) on bad configuration.

    ``people`` ({"attribute", "value", "members": [[kind, ref], ...]}) restricts the
    annotations, labels and statements the run learns from to one group of people.
    """
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
        "llm_backend": configured_backend(),
    }
    if people:
        config["people"] = people
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
        llm_model=str(getattr(settings, "GCAI_LLM_MODEL", ""))[:200],
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
    batch_size: int = DEFAULT_BATCH_SIZE,
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


# A pipeline run is one kind of job on the shared engine (gcai.jobs.engine).
ENGINE = engine.JobKind(
    job_model=PipelineRun,
    artifact_model=StageArtifact,
    job_field="run",
    stages=lambda run, ctx: pipeline.stages_for(run.method, ctx.config),
    inputs=lambda run, meter: _inputs(run, meter),
    finish=lambda run, ctx: run_finish(run=run, ctx=ctx),
    step_task="gcai.constitutions.tasks.run_step_task",
    batch_task="gcai.constitutions.tasks.run_batch_task",
)


def run_start(*, run: PipelineRun) -> None:
    """Queue the run's first step once the current transaction commits."""
    ENGINE.start(run)


def run_cancel(*, run: PipelineRun) -> None:
    """Ask a run to stop; running batches notice within a second and stop calling the LLM."""
    ENGINE.cancel(run)


def run_resume(*, run: PipelineRun) -> None:
    """Restart a failed, cancelled or stalled run from its last stored stage."""
    run_resume_prepare(run=run)
    run_start(run=run)


# --------------------------------------------------------------------------- execution


ProgressFn = engine.ProgressFn


def run_run_inline(*, run: PipelineRun, progress: ProgressFn | None = None) -> str:
    """Run (or resume) a run to the end in this process, without a worker.

    For the command-line builders, scripts and tests; the web never calls it. Batches
    are computed one after the other; storage, resume and the LLM cache work as with
    workers. Returns "succeeded", "cancelled" or "failed".
    """
    if run.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        run_resume_prepare(run=run)
    return ENGINE.step(run.pk, inline=True, progress=progress)


def run_resume_prepare(*, run: PipelineRun) -> None:
    if run.status == JobStatus.SUCCEEDED:
        raise ValueError("This run has already succeeded.")
    PipelineRun.objects.filter(pk=run.pk).update(
        status=JobStatus.QUEUED, cancel_requested=False, error="", finished_at=None
    )


def run_step(run_id: int) -> str:
    """Advance a run as far as possible in this process (see :meth:`JobKind.step`)."""
    return ENGINE.step(run_id)


def run_batch(run_id: int, stage_name: str, batch: int) -> str:
    """Compute one batch of a batched stage (see :meth:`JobKind.batch`)."""
    return ENGINE.batch(run_id, stage_name, batch)


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
    stats_updates: list[Principle] = []
    PairThrough = Principle.supporting_pairs.through
    AnnThrough = Principle.supporting_annotations.through
    StmtThrough = Principle.supporting_statements.through
    valid_pairs = set(run.training_pairs.values_list("pk", flat=True))
    for row, p in zip(rows, principles, strict=True):
        pair_ids = {int(x) for x in p.pair_ids if str(x).isdigit()}
        source_reasons: set[int] = set()
        for jid in p.judgement_ids:
            kind, _, pk = str(jid).partition(":")
            if kind == "ann" and pk.isdigit():
                ann_links.append(AnnThrough(principle_id=row.pk, annotation_id=int(pk)))
            elif kind == "src" and pk.isdigit():
                pair_ids.add(int(pk))
                source_reasons.add(int(pk))
        if source_reasons & valid_pairs:
            # A reason imported with its pair has no annotation row: keep which pairs
            # carried one, so pages count it as a reason (gcai.constitutions.evidence).
            row.stats[SOURCE_REASONS_KEY] = sorted(source_reasons & valid_pairs)
            stats_updates.append(row)
        for pid in sorted(pair_ids & valid_pairs):
            pair_links.append(PairThrough(principle_id=row.pk, preferencepair_id=pid))
        for sid in p.statement_ids:
            if str(sid).isdigit():
                stmt_links.append(StmtThrough(principle_id=row.pk, valuestatement_id=int(sid)))
    Principle.objects.bulk_update(stats_updates, ["stats"])
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

            try:
                # A savepoint: a refused publication must not undo the stored results.
                with transaction.atomic():
                    constitution_publish(constitution=constitution)
            except QualityGateError as exc:
                # Left as a draft for a researcher to fix or publish anyway.
                run.config = {**run.config, "publish_blocked": str(exc), "_flags": exc.flags}
                PipelineRun.objects.filter(pk=run.pk).update(config=run.config)
    PipelineRun.objects.filter(pk=run.pk).update(
        status=JobStatus.SUCCEEDED, stage="done", finished_at=timezone.now(), error=""
    )
    run_id = run.pk
    for hook in FINISH_HOOKS:
        transaction.on_commit(lambda hook=hook: hook(run_id))
    return constitution


# Called with the run id once a run has succeeded (after commit). Apps that build on
# runs (gcai.groups) register here instead of this module importing them.
FINISH_HOOKS: list[Callable[[int], None]] = []
