"""Evaluations: preference reconstruction on held-out pairs, as resumable Celery work.

An evaluation asks an LLM judge, told only a constitution (or nothing, or irrelevant
principles: the two baselines), which response of each held-out pair a human preferred.
The algorithm lives in :mod:`gcai.core.evaluate`; this module stores, schedules and
reports it.

Scheduling follows pipeline runs (:mod:`gcai.constitutions.runs`): ``evaluation_step``
fans the pairs out as a Celery ``group`` of ``evaluation_batch`` tasks; each batch stores
its per-pair judgements in ``Evaluation.results["batches"][i]`` under a row lock, and
the batch that completes the set enqueues the step again, which merges the batches and
computes the metrics. A resume only dispatches missing batches, and the LLM response
cache answers every call a failed batch had already paid for, so nothing is paid twice.
"""

from __future__ import annotations

import logging
import math
import traceback
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from annotations.models import Annotation, PreferencePair, Split, Study
from gcai.constitutions import jobs
from gcai.constitutions.llm import configured_backend
from gcai.constitutions.models import Constitution, Evaluation, EvaluationKind, JobStatus
from gcai.constitutions.pipeline import sample_ids
from gcai.constitutions.runs import pair_label
from gcai.core.evaluate import (
    EvalConfig,
    EvalMetrics,
    PairJudgement,
    compare_judgements,
    compute_metrics,
    judge_pairs,
    orthogonal_constitution,
    principle_texts,
)
from gcai.core.llm.base import LLMCancelled
from gcai.core.llm.usage import UsageMeter
from gcai.core.llm_similarity import llm_constitution_similarity, llm_reference_similarity
from gcai.core.similarity import constitution_similarity, reference_similarity
from gcai.core.stats import MIN_N_PAIRS, small_sample_warning
from gcai.core.types import Pair, Preference

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 25
SPLITS = (Split.TEST.value, Split.TRAIN.value)
_SCORABLE = (Preference.A, Preference.B, Preference.TIE, Preference.BOTH_BAD)


class EvaluationError(ValueError):
    """An evaluation that cannot be created or resumed; the message is safe to show."""


_Cancelled = jobs.JobCancelled
_JudgeUnavailable = jobs.LLMUnavailable


# --------------------------------------------------------------------------- inputs


def evaluation_labels(
    *, study: Study, split: str, dataset_ids: Sequence[int] | None = None
) -> dict[int, str]:
    """Human labels of the study's pairs in ``split``: pair id -> a | b | tie | both_bad.

    The label is the source preference, else the annotators' majority (as for pipeline
    runs); unlabelled pairs are left out because nothing can be scored on them. Two
    queries whatever the number of pairs.
    """
    pairs = PreferencePair.objects.filter(dataset__study=study, split=split)
    if dataset_ids:
        pairs = pairs.filter(dataset_id__in=dataset_ids)
    rows = list(pairs.only("pk", "source_preference").order_by("pk"))
    unlabelled = [p.pk for p in rows if p.source_preference == "none"]
    choices: dict[int, list[str]] = {}
    if unlabelled:
        for pair_id, preferred in Annotation.objects.filter(pair_id__in=unlabelled).values_list(
            "pair_id", "preferred"
        ):
            choices.setdefault(pair_id, []).append(preferred)
    labels = {}
    for pair in rows:
        label = pair_label(pair, choices.get(pair.pk, ()))
        if label in _SCORABLE:
            labels[pair.pk] = label.value
    return labels


def _held_out(
    *,
    study: Study,
    split: str,
    limit: int | None,
    seed: int,
    dataset_ids: Sequence[int] | None,
) -> dict[int, str]:
    if split not in SPLITS:
        raise EvaluationError(f"split: must be one of {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise EvaluationError("limit: must be at least 1")
    labels = evaluation_labels(study=study, split=split, dataset_ids=dataset_ids)
    if not labels:
        raise EvaluationError(
            f"No labelled {split} pairs in this study: import a dataset with a {split} split "
            "and preferences, or collect annotations first."
        )
    chosen = sample_ids(list(labels), limit, seed)
    return {pk: labels[pk] for pk in chosen}


def _clean_texts(texts: Iterable[str] | str | None) -> list[str]:
    if texts is None:
        return []
    if isinstance(texts, str):
        # One per line, as in the orthogonal default file: "#" lines are comments.
        lines = [ln for ln in texts.splitlines() if not ln.lstrip().startswith("#")]
        return principle_texts("\n".join(lines)) or []
    return [" ".join(str(t).split()) for t in texts if str(t).strip()]


def _principles_for(
    kind: str, constitution: Constitution | None, orthogonal: Iterable[str] | str | None
) -> list[str] | None:
    if kind == EvaluationKind.NO_CONSTITUTION:
        return None
    if kind == EvaluationKind.ORTHOGONAL:
        if orthogonal is None or (isinstance(orthogonal, str) and not orthogonal.strip()):
            return [p.text for p in orthogonal_constitution().principles]
        if isinstance(orthogonal, str):
            # Same format as the default file: one per line, "#" comments.
            return [p.text for p in orthogonal_constitution(orthogonal).principles]
        texts = _clean_texts(orthogonal)
        if not texts:
            raise EvaluationError("orthogonal_principles: give at least one principle")
        return texts
    assert constitution is not None
    texts = [item.text for item in constitution.items.order_by("position")]
    if not texts:
        raise EvaluationError(f"“{constitution}” has no principles to evaluate.")
    return texts


def target_label(evaluation: Evaluation) -> str:
    """What was evaluated, for tables: the constitution's title and version, or the baseline."""
    if evaluation.kind == EvaluationKind.CONSTITUTION and evaluation.constitution_id:
        c = evaluation.constitution
        method = f" [{c.get_method_display()}]" if c.method else ""
        return f"{c.title} v{c.version}{method}"
    return EvaluationKind(evaluation.kind).label


# --------------------------------------------------------------------------- create


@transaction.atomic
def evaluation_create(
    *,
    study: Study,
    kind: str = EvaluationKind.CONSTITUTION,
    constitution: Constitution | None = None,
    user: Any = None,
    split: str = Split.TEST,
    limit: int | None = None,
    seed: int = 0,
    dataset_ids: Sequence[int] | None = None,
    orthogonal_principles: Iterable[str] | str | None = None,
    ground_truth: Iterable[str] | str | None = None,
    llm_similarity: bool = False,
    principle_analysis: bool = True,
    allow_abstain: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    labels: dict[int, str] | None = None,
    comparison_group: str = "",
) -> Evaluation:
    """Create a queued evaluation of ``constitution`` (or a baseline ``kind``).

    Pairs are the study's labelled pairs of ``split`` (held-out ``test`` by default;
    ``train`` only when asked, and the evaluation keeps that label), sampled down to
    ``limit`` with ``seed``. ``labels`` (pair id -> label) fixes the pairs instead, so a
    comparison judges every target on the same pairs. The constitution's wording is
    copied into the config, so later edits to a draft cannot change a running
    evaluation. ``ground_truth`` (principle texts) adds constitution similarity to the
    results. Raises :class:`EvaluationError` naming the bad setting.
    """
    if kind not in EvaluationKind.values:
        raise EvaluationError(f"kind: must be one of {', '.join(EvaluationKind.values)}")
    if kind == EvaluationKind.CONSTITUTION:
        if constitution is None:
            raise EvaluationError("constitution: required to evaluate a constitution")
        if constitution.study_id != study.pk:
            raise EvaluationError("constitution: not a constitution of this study")
    else:
        constitution = None
    if not 1 <= batch_size <= 1000:
        raise EvaluationError("batch_size: must be between 1 and 1000")
    if labels is None:
        labels = _held_out(
            study=study, split=split, limit=limit, seed=seed, dataset_ids=dataset_ids
        )
    elif split not in SPLITS:
        raise EvaluationError(f"split: must be one of {', '.join(SPLITS)}")
    texts = _principles_for(kind, constitution, orthogonal_principles)
    truth = _clean_texts(ground_truth)
    eval_config = EvalConfig(
        allow_abstain=allow_abstain,
        seed=seed,
        principle_analysis=principle_analysis,
        batch_size=batch_size,
    )
    config = {
        "eval": eval_config.to_dict(),
        "batch_size": batch_size,
        "limit": limit,
        "dataset_ids": list(dataset_ids or []),
        "principles": texts,
        "ground_truth": truth or None,
        "llm_similarity": bool(llm_similarity and truth),
        "n_pairs": len(labels),
        # Labels are frozen at creation: annotations added later do not move the target.
        "labels": {str(pk): label for pk, label in sorted(labels.items())},
        "llm_backend": configured_backend(),
    }
    evaluation = Evaluation.objects.create(
        study=study,
        constitution=constitution,
        kind=kind,
        split=split,
        seed=seed,
        config=config,
        comparison_group=comparison_group or uuid.uuid4().hex,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        llm_model=settings.GCAI_LLM_MODEL,
        progress_total=len(labels),
    )
    evaluation.pairs.set(sorted(labels))
    return evaluation


@transaction.atomic
def evaluations_create_comparison(
    *,
    study: Study,
    constitutions: Sequence[Constitution] = (),
    baselines: bool = True,
    split: str = Split.TEST,
    limit: int | None = None,
    seed: int = 0,
    dataset_ids: Sequence[int] | None = None,
    **options: Any,
) -> list[Evaluation]:
    """One evaluation per chosen constitution, plus the no-constitution and orthogonal
    baselines, all with the same judge, the same pairs and one ``comparison_group``.

    ``options`` are passed to :func:`evaluation_create` (user, orthogonal_principles,
    ground_truth, llm_similarity, principle_analysis, allow_abstain, batch_size).
    """
    if not constitutions and not baselines:
        raise EvaluationError("Choose at least one constitution or the baselines.")
    labels = _held_out(study=study, split=split, limit=limit, seed=seed, dataset_ids=dataset_ids)
    group = uuid.uuid4().hex
    common = dict(
        study=study,
        split=split,
        limit=limit,
        seed=seed,
        dataset_ids=dataset_ids,
        labels=labels,
        comparison_group=group,
        **options,
    )
    out = [
        evaluation_create(kind=EvaluationKind.CONSTITUTION, constitution=c, **common)
        for c in constitutions
    ]
    if baselines:
        out.append(evaluation_create(kind=EvaluationKind.NO_CONSTITUTION, **common))
        out.append(evaluation_create(kind=EvaluationKind.ORTHOGONAL, **common))
    return out


# --------------------------------------------------------------------------- start / cancel


def evaluation_start(*, evaluation: Evaluation) -> None:
    """Queue the evaluation's first step once the current transaction commits."""
    from gcai.constitutions.evaluation_tasks import evaluation_step_task

    pk = evaluation.pk
    transaction.on_commit(lambda: evaluation_step_task.delay(pk))


def evaluation_cancel(*, evaluation: Evaluation) -> None:
    """Ask an evaluation to stop; running batches notice within a second."""
    Evaluation.objects.filter(pk=evaluation.pk).update(cancel_requested=True)
    # A queued evaluation has nothing in flight: cancel it at once.
    Evaluation.objects.filter(pk=evaluation.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )


def _reopen(evaluation: Evaluation) -> None:
    if evaluation.status == JobStatus.SUCCEEDED:
        raise EvaluationError("This evaluation has already succeeded.")
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=JobStatus.QUEUED, cancel_requested=False, error="", finished_at=None
    )


def evaluation_resume(*, evaluation: Evaluation) -> None:
    """Restart a failed, cancelled or stalled evaluation: stored batches are kept, only
    the missing ones are judged (and the response cache answers calls already paid)."""
    _reopen(evaluation)
    evaluation_start(evaluation=evaluation)


def evaluation_run_inline(*, evaluation: Evaluation) -> str:
    """Run (or resume) an evaluation to the end in this process, without a worker.

    For the ``evaluate --inline`` command, scripts and tests; the web never calls it.
    """
    if evaluation.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        _reopen(evaluation)
    return evaluation_step(evaluation.pk, inline=True)


# --------------------------------------------------------------------------- execution


def _judge(meter: UsageMeter, evaluation_id: int) -> jobs.GuardedModel:
    from gcai.constitutions import llm

    cancel = jobs.CancelCheck(Evaluation, evaluation_id)
    return jobs.GuardedModel(llm.chat_model_for(meter=meter, should_cancel=cancel))


def _record_usage(evaluation_id: int, meter: UsageMeter) -> None:
    jobs.record_usage(Evaluation, evaluation_id, meter)


def _end(evaluation_id: int, status: str, message: str = "") -> None:
    Evaluation.objects.filter(
        pk=evaluation_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    ).update(status=status, error=message[:5000], finished_at=timezone.now())


def _batch_size(evaluation: Evaluation) -> int:
    return int(evaluation.config.get("batch_size") or DEFAULT_BATCH_SIZE)


def _n_batches(evaluation: Evaluation) -> int:
    return math.ceil(int(evaluation.config.get("n_pairs", 0)) / _batch_size(evaluation))


def _batch_pairs(evaluation: Evaluation, batch: int) -> list[Pair]:
    """Batch ``batch`` of the evaluation's pairs (ordered by id), with the frozen labels."""
    size = _batch_size(evaluation)
    labels: dict[str, str] = evaluation.config.get("labels", {})
    ids = sorted(int(pk) for pk in labels)[batch * size : (batch + 1) * size]
    rows = PreferencePair.objects.filter(pk__in=ids).order_by("pk")
    return [
        Pair(
            id=str(p.pk),
            prompt=p.prompt,
            response_a=p.response_a,
            response_b=p.response_b,
            preferred=Preference(labels[str(p.pk)]),
            score_a=p.score_a,
            score_b=p.score_b,
        )
        for p in rows
    ]


def _stored_batches(evaluation_id: int) -> set[int]:
    batches = (
        Evaluation.objects.filter(pk=evaluation_id)
        .annotate(stored=KeyTransform("batches", "results"))
        .values_list("stored", flat=True)
        .first()
    )
    return {int(k) for k in (batches or {})}


def evaluation_step(evaluation_id: int, *, inline: bool = False) -> str:
    """Advance an evaluation: dispatch missing batches, or score the finished set.

    With ``inline`` the missing batches are judged here, one after the other, instead
    of being sent to workers. Returns "dispatched", "succeeded", "cancelled", "failed"
    or "idle" (the evaluation is not active).
    """
    with transaction.atomic():
        evaluation = (
            Evaluation.objects.select_for_update().defer("results").filter(pk=evaluation_id).first()
        )
        if evaluation is None or not evaluation.is_active:
            return "idle"
        if evaluation.cancel_requested:
            evaluation.status, evaluation.finished_at = JobStatus.CANCELLED, timezone.now()
            evaluation.save(update_fields=["status", "finished_at"])
            return "cancelled"
        if evaluation.status == JobStatus.QUEUED:
            evaluation.status = JobStatus.RUNNING
            evaluation.started_at = evaluation.started_at or timezone.now()
            evaluation.save(update_fields=["status", "started_at"])

    missing = [i for i in range(_n_batches(evaluation)) if i not in _stored_batches(evaluation_id)]
    if missing:
        Evaluation.objects.filter(pk=evaluation_id).update(stage="judging")
        if not inline:
            from celery import group

            from gcai.constitutions.evaluation_tasks import evaluation_batch_task

            group(evaluation_batch_task.s(evaluation_id, i) for i in missing).apply_async()
            return "dispatched"
        for i in missing:
            outcome = evaluation_batch(evaluation_id, i, join=False)
            if outcome not in ("stored", "batch-done"):
                return outcome
    return _finish(evaluation_id)


def evaluation_batch(evaluation_id: int, batch: int, *, join: bool = True) -> str:
    """Judge one batch of pairs in both orders and store the judgements.

    The batch that completes the set enqueues the scoring step (unless ``join`` is
    False: the inline runner scores itself). Idempotent: a stored batch is not judged
    again.
    """
    evaluation = Evaluation.objects.defer("results").filter(pk=evaluation_id).first()
    if evaluation is None or not evaluation.is_active:
        return "idle"
    if evaluation.cancel_requested:
        _end(evaluation_id, JobStatus.CANCELLED)
        return "cancelled"
    if batch in _stored_batches(evaluation_id):
        return "batch-done"
    meter = UsageMeter()
    try:
        pairs = _batch_pairs(evaluation, batch)
        config = EvalConfig.from_dict(evaluation.config.get("eval", {}))
        judge = _judge(meter, evaluation_id)
        if judge.name != evaluation.llm_model:
            # The worker's configuration decides which model judges; record it.
            Evaluation.objects.filter(pk=evaluation_id).update(llm_model=judge.name[:200])
        judgements = judge_pairs(judge, evaluation.config.get("principles"), pairs, config)
    except (_Cancelled, LLMCancelled):
        _record_usage(evaluation_id, meter)
        _end(evaluation_id, JobStatus.CANCELLED)
        return "cancelled"
    except _JudgeUnavailable as exc:
        _record_usage(evaluation_id, meter)
        _end(evaluation_id, JobStatus.FAILED, f"Batch {batch}: {exc}")
        return "failed"
    except Exception as exc:
        _record_usage(evaluation_id, meter)
        log.exception("evaluation %s batch %s failed", evaluation_id, batch)
        _end(evaluation_id, JobStatus.FAILED, f"Batch {batch}: {exc.__class__.__name__}: {exc}")
        return "failed"
    _record_usage(evaluation_id, meter)
    return _store_batch(evaluation_id, batch, judgements, join=join)


def _store_batch(
    evaluation_id: int, batch: int, judgements: list[PairJudgement], *, join: bool
) -> str:
    from gcai.constitutions.evaluation_tasks import evaluation_step_task

    with transaction.atomic():
        evaluation = Evaluation.objects.select_for_update().get(pk=evaluation_id)
        batches = dict(evaluation.results.get("batches") or {})
        if str(batch) in batches:
            # A duplicate delivery finished first; its judgements are the same.
            return "batch-done"
        batches[str(batch)] = [j.to_dict() for j in judgements]
        evaluation.results = {**evaluation.results, "batches": batches}
        evaluation.progress_done = sum(len(v) for v in batches.values())
        evaluation.save(update_fields=["results", "progress_done"])
        complete = len(batches) >= _n_batches(evaluation)
        if not join:
            return "stored"
        # Only the batch that completes the set schedules the scoring, and only while
        # the evaluation is running (a failed one is scored after its resume).
        if complete and evaluation.status == JobStatus.RUNNING:
            transaction.on_commit(lambda: evaluation_step_task.delay(evaluation_id))
            return "set-complete"
    return "batch-done"


def _finish(evaluation_id: int) -> str:
    """Merge the stored batches, compute metrics (and similarity) and store the results."""
    evaluation = Evaluation.objects.get(pk=evaluation_id)
    meter = UsageMeter()
    try:
        Evaluation.objects.filter(pk=evaluation_id).update(stage="scoring")
        results = evaluation_results_compute(evaluation=evaluation, meter=meter)
    except (_Cancelled, LLMCancelled):
        _record_usage(evaluation_id, meter)
        _end(evaluation_id, JobStatus.CANCELLED)
        return "cancelled"
    except _JudgeUnavailable as exc:
        _record_usage(evaluation_id, meter)
        _end(evaluation_id, JobStatus.FAILED, f"Similarity: {exc}")
        return "failed"
    except Exception as exc:
        _record_usage(evaluation_id, meter)
        log.exception("evaluation %s failed while scoring", evaluation_id)
        _end(
            evaluation_id,
            JobStatus.FAILED,
            f"Scoring: {exc.__class__.__name__}: {exc}\n\n{traceback.format_exc(limit=5)}",
        )
        return "failed"
    _record_usage(evaluation_id, meter)
    with transaction.atomic():
        locked = Evaluation.objects.select_for_update().defer("results").get(pk=evaluation_id)
        if not locked.is_active:
            return "idle"
        if locked.cancel_requested:
            _end(evaluation_id, JobStatus.CANCELLED)
            return "cancelled"
        Evaluation.objects.filter(pk=evaluation_id).update(
            results=results,
            status=JobStatus.SUCCEEDED,
            stage="done",
            error="",
            progress_done=int(evaluation.config.get("n_pairs", 0)),
            finished_at=timezone.now(),
        )
    return "succeeded"


def evaluation_results_compute(*, evaluation: Evaluation, meter: UsageMeter) -> dict[str, Any]:
    """The results document of an evaluation whose batches are all stored.

    ``metrics`` come from :func:`gcai.core.evaluate.compute_metrics` over the merged
    judgements; with a ground truth, ``similarity`` matches it against the evaluated
    principles and ``similarity_reference`` scores it against itself (the ceiling).
    """
    batches = evaluation.results.get("batches") or {}
    n = _n_batches(evaluation)
    absent = [i for i in range(n) if str(i) not in batches]
    if absent:
        raise EvaluationError(f"Batches {absent} have not been judged yet.")
    judgements = [PairJudgement.from_dict(d) for i in range(n) for d in batches[str(i)]]
    texts = evaluation.config.get("principles")
    config = EvalConfig.from_dict(evaluation.config.get("eval", {}))
    metrics = compute_metrics(judgements, principles=texts, confidence=config.confidence)
    results: dict[str, Any] = {
        "config": config.to_dict(),
        "principles": texts,
        "split": evaluation.split,
        "metrics": metrics.to_dict(),
        "judgements": [j.to_dict() for j in judgements],
        "similarity": None,
        "similarity_reference": None,
        "similarity_llm": None,
        "similarity_llm_reference": None,
    }
    truth = evaluation.config.get("ground_truth")
    if truth and texts:
        from gcai.constitutions import llm

        Evaluation.objects.filter(pk=evaluation.pk).update(stage="similarity")
        embedder = llm.embedder()
        # Embedding matching always (cheap); with llm_similarity also the paper's LLM
        # matching rated 1-10 (improved ICAI, section 3.2) and its ceiling.
        results["similarity"] = constitution_similarity(
            truth, texts, embedder, seed=config.seed
        ).to_dict()
        results["similarity_reference"] = reference_similarity(
            truth, embedder, seed=config.seed
        ).to_dict()
        if evaluation.config.get("llm_similarity"):
            judge = _judge(meter, evaluation.pk)
            results["similarity_llm"] = llm_constitution_similarity(
                truth, texts, judge, seed=config.seed
            ).to_dict()
            results["similarity_llm_reference"] = llm_reference_similarity(
                truth, judge, seed=config.seed
            ).to_dict()
    return results


# --------------------------------------------------------------------------- reads

#: The report table's metric columns, shared by the pages, the exports and the command.
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("accuracy", "Accuracy"),
    ("accuracy_abstain_half", "Accuracy (abstain = ½)"),
    ("coverage", "Coverage"),
    ("accuracy_covered", "Accuracy on covered"),
    ("order_disagreement", "Order disagreement"),
    ("kappa", "κ vs chance"),
)
#: Metrics shown as bars (shares on a 0..1 axis; kappa has its own scale).
CHART_METRICS: tuple[tuple[str, str], ...] = METRIC_COLUMNS[:5]


def evaluations_summarised(queryset: QuerySet[Evaluation]) -> QuerySet[Evaluation]:
    """Evaluations with ``metrics``, ``similarity`` and ``similarity_reference`` pulled out
    of the results in the database, without loading per-pair judgements or labels."""
    return (
        queryset.select_related("constitution")
        .defer("results", "config")
        .annotate(
            metrics=KeyTransform("metrics", "results"),
            similarity=KeyTransform("similarity", "results"),
            similarity_reference=KeyTransform("similarity_reference", "results"),
        )
    )


def evaluations_for_study(*, study: Study) -> QuerySet[Evaluation]:
    return evaluations_summarised(Evaluation.objects.filter(study=study)).order_by(
        "-created_at", "pk"
    )


_KIND_ORDER = {
    EvaluationKind.CONSTITUTION: 0,
    EvaluationKind.NO_CONSTITUTION: 1,
    EvaluationKind.ORTHOGONAL: 2,
}


def comparison_order(evaluation: Evaluation) -> tuple[int, int]:
    """Sort key inside a comparison: constitutions as chosen, then the two baselines."""
    return (_KIND_ORDER.get(evaluation.kind, 9), evaluation.pk)


def evaluations_in_group(*, study: Study, group: str) -> list[Evaluation]:
    """The evaluations of one comparison: constitutions first, then the baselines."""
    rows = list(
        evaluations_summarised(Evaluation.objects.filter(study=study, comparison_group=group))
    )
    return sorted(rows, key=comparison_order)


def _metrics_of(evaluation: Evaluation) -> dict[str, Any] | None:
    metrics = getattr(evaluation, "metrics", None)
    if metrics is None and "results" in evaluation.__dict__:
        metrics = (evaluation.results or {}).get("metrics")
    return metrics or None


def _similarity_of(evaluation: Evaluation) -> tuple[dict | None, dict | None]:
    if "results" in evaluation.__dict__:
        data = evaluation.results or {}
        return data.get("similarity"), data.get("similarity_reference")
    return getattr(evaluation, "similarity", None), getattr(
        evaluation, "similarity_reference", None
    )


def format_estimate(estimate: dict[str, Any] | None, *, percent: bool = True) -> str:
    """``"78.0% [70.1, 84.3]"`` (or ``"0.56 [0.40, 0.69]"`` for kappa); ``"-"`` if undefined."""
    if not estimate or estimate.get("value") is None:
        return "-"
    if percent:
        text = f"{100 * estimate['value']:.1f}%"
        if estimate.get("lo") is not None and estimate.get("hi") is not None:
            text += f" [{100 * estimate['lo']:.1f}, {100 * estimate['hi']:.1f}]"
        return text
    text = f"{estimate['value']:.2f}"
    if estimate.get("lo") is not None and estimate.get("hi") is not None:
        text += f" [{estimate['lo']:.2f}, {estimate['hi']:.2f}]"
    return text


def _point(estimate: dict[str, Any] | None) -> dict[str, Any] | None:
    return {"value": estimate.get("value")} if estimate else None


def evaluation_row(evaluation: Evaluation) -> dict[str, Any]:
    """One row of the report table: what was evaluated, on what, and every metric."""
    metrics = _metrics_of(evaluation)
    similarity, reference = _similarity_of(evaluation)
    cells = []
    for key, title in METRIC_COLUMNS:
        estimate = (metrics or {}).get(key)
        cells.append(
            {
                "key": key,
                "title": title,
                "estimate": estimate,
                "text": format_estimate(estimate, percent=key != "kappa"),
                # The same split in two for narrow table cells.
                "value": format_estimate(_point(estimate), percent=key != "kappa"),
                "interval": format_estimate(estimate, percent=key != "kappa").partition(" ")[2],
            }
        )
    return {
        "evaluation": evaluation,
        "id": evaluation.pk,
        "target": target_label(evaluation),
        "kind": evaluation.kind,
        "split": evaluation.split,
        "status": evaluation.status,
        "n_scored": (metrics or {}).get("n_scored"),
        "n_ties": (metrics or {}).get("n_ties"),
        "n_errors": (metrics or {}).get("n_errors"),
        "metrics": metrics,
        "cells": cells,
        "similarity": (similarity or {}).get("mean_similarity"),
        "similarity_padded": (similarity or {}).get("padded_similarity"),
        "similarity_reference": (reference or {}).get("mean_similarity"),
    }


def evaluation_table_text(evaluations: Sequence[Evaluation]) -> str:
    """The report table as plain text (what ``manage.py evaluate`` prints)."""
    rows = [evaluation_row(e) for e in evaluations]
    header = ["Evaluated", "Split", "n", *[title for _, title in METRIC_COLUMNS]]
    body = []
    for row in rows:
        n = "-" if row["n_scored"] is None else str(row["n_scored"])
        if row["status"] != JobStatus.SUCCEEDED:
            cells = [row["status"]] + [""] * (len(METRIC_COLUMNS) - 1)
        else:
            cells = [c["text"] for c in row["cells"]]
        body.append([f"#{row['id']} {row['target']}", row["split"], n, *cells])
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    notes = []
    scored = [r["n_scored"] for r in rows if r["n_scored"] is not None]
    if scored and min(scored) < MIN_N_PAIRS:
        notes.append(
            "Small sample: "
            + small_sample_warning(min(scored), MIN_N_PAIRS, "scored pairs")
            + " These numbers are shown for completeness only."
        )
    if any(r["split"] == Split.TRAIN for r in rows):
        notes.append("Split 'train': training pairs, not held out; accuracy is optimistic.")
    sims = [r for r in rows if r["similarity"] is not None]
    for r in sims:
        ref = r["similarity_reference"]
        notes.append(
            f"Similarity to the ground truth, #{r['id']}: {r['similarity']:.3f} "
            f"(padded {r['similarity_padded']:.3f}; ground truth vs itself "
            f"{'-' if ref is None else f'{ref:.3f}'})"
        )
    return "\n".join([line.rstrip() for line in lines] + notes)


def evaluation_metrics(evaluation: Evaluation) -> EvalMetrics | None:
    """The stored metrics as the core dataclass (None until the evaluation succeeded)."""
    data = _metrics_of(evaluation)
    return EvalMetrics.from_dict(data) if data else None


def evaluation_status(evaluation: Evaluation) -> dict[str, Any]:
    """What the progress display polls: status, stage, progress and LLM usage."""
    return {
        "id": evaluation.pk,
        "status": evaluation.status,
        "status_display": evaluation.get_status_display(),
        "is_active": evaluation.is_active,
        "cancel_requested": evaluation.cancel_requested,
        "stage": evaluation.stage,
        "progress_done": evaluation.progress_done,
        "progress_total": evaluation.progress_total,
        "percent": evaluation.progress_percent,
        "error": evaluation.error,
        "llm_model": evaluation.llm_model,
        "llm_calls": evaluation.llm_calls,
        "llm_cached_calls": evaluation.llm_cached_calls,
        "llm_errors": evaluation.llm_errors,
        "prompt_tokens": evaluation.prompt_tokens,
        "completion_tokens": evaluation.completion_tokens,
        "cost_usd": float(evaluation.cost_usd),
        "started_at": evaluation.started_at.isoformat() if evaluation.started_at else None,
        "finished_at": evaluation.finished_at.isoformat() if evaluation.finished_at else None,
    }


def evaluation_describe(evaluation: Evaluation) -> dict[str, Any]:
    """The evaluation's identity and settings, without the per-pair data."""
    config = evaluation.config if "config" in evaluation.__dict__ else {}
    return {
        "id": evaluation.pk,
        "study": evaluation.study_id,
        "target": target_label(evaluation),
        "kind": evaluation.kind,
        "constitution": evaluation.constitution_id,
        "split": evaluation.split,
        "held_out": evaluation.split == Split.TEST,
        "comparison_group": evaluation.comparison_group,
        "seed": evaluation.seed,
        "created_at": evaluation.created_at.isoformat(),
        "settings": {k: v for k, v in config.items() if k != "labels"},
    }


def evaluation_export_document(*, evaluation: Evaluation) -> dict[str, Any]:
    """Everything about one evaluation as one JSON document (the JSON export)."""
    return {
        "evaluation": evaluation_describe(evaluation),
        "status": evaluation_status(evaluation),
        "results": {k: v for k, v in (evaluation.results or {}).items() if k != "batches"},
    }


PAIR_CSV_HEADER = (
    "pair_id",
    "external_id",
    "dataset",
    "human",
    "judge_as_shown",
    "judge_swapped",
    "verdict",
    "agrees",
    "principles_applied",
    "decisive",
    "errors",
)


def evaluation_pair_rows(*, evaluation: Evaluation) -> list[list[Any]]:
    """Per-pair judgements for the CSV export (one query for the pairs' names)."""
    judgements = (evaluation.results or {}).get("judgements") or []
    ids = [int(j["pair_id"]) for j in judgements if str(j["pair_id"]).isdigit()]
    names = {
        pk: (external_id, dataset)
        for pk, external_id, dataset in PreferencePair.objects.filter(pk__in=ids).values_list(
            "pk", "external_id", "dataset__name"
        )
    }
    rows = []
    for j in judgements:
        pk = int(j["pair_id"]) if str(j["pair_id"]).isdigit() else None
        external_id, dataset = names.get(pk, ("", "")) if pk is not None else ("", "")
        votes = j.get("principle_votes") or {}
        scored = j["human"] in ("a", "b") and j["final"] != "error"
        rows.append(
            [
                j["pair_id"],
                external_id,
                dataset,
                j["human"],
                j["original"] or "",
                j["swapped"] or "",
                j["final"],
                ("1" if j["final"] == j["human"] else "0") if scored else "",
                " ".join(
                    f"{n}:{side}" for n, side in sorted(votes.items(), key=lambda kv: int(kv[0]))
                ),
                " ".join(str(d) for d in j.get("decisive") or []),
                " | ".join([*j.get("errors", []), *j.get("analysis_errors", [])]),
            ]
        )
    return rows


def comparison_csv_rows(evaluations: Sequence[Evaluation]) -> list[list[Any]]:
    """The report table with every interval bound, one row per evaluation, header first."""
    header = ["evaluation", "target", "kind", "split", "status", "n_pairs", "n_scored", "n_ties"]
    header += ["n_errors"]
    for key, _ in (*METRIC_COLUMNS, ("accuracy_per_order", "")):
        header += [key, f"{key}_lo", f"{key}_hi"]
    header += ["similarity_mean", "similarity_padded", "similarity_reference"]
    rows: list[list[Any]] = [header]
    for evaluation in evaluations:
        row = evaluation_row(evaluation)
        metrics = row["metrics"] or {}
        line = [row["id"], row["target"], row["kind"], row["split"], row["status"]]
        line += [metrics.get(k, "") for k in ("n_pairs", "n_scored", "n_ties", "n_errors")]
        for key, _ in (*METRIC_COLUMNS, ("accuracy_per_order", "")):
            est = metrics.get(key) or {}
            line += [_num(est.get("value")), _num(est.get("lo")), _num(est.get("hi"))]
        line += [
            _num(row["similarity"]),
            _num(row["similarity_padded"]),
            _num(row["similarity_reference"]),
        ]
        rows.append(line)
    return rows


def _num(value: Any) -> str:
    return "" if value is None else f"{float(value):.6f}"


def comparison_differences(
    evaluations: Sequence[Evaluation], *, score: str = "strict"
) -> list[dict[str, Any]]:
    """Paired accuracy differences: each evaluated constitution minus each baseline.

    Judged on the same pairs, the paired bootstrap interval is much narrower than
    comparing two separate intervals. Loads the judgements (one query).
    """
    done = [e for e in evaluations if e.status == JobStatus.SUCCEEDED]
    if len(done) < 2:
        return []
    judgements = {
        pk: [PairJudgement.from_dict(j) for j in (data or [])]
        for pk, data in Evaluation.objects.filter(pk__in=[e.pk for e in done])
        .annotate(judgements=KeyTransform("judgements", "results"))
        .values_list("pk", "judgements")
    }
    subjects = [e for e in done if e.kind == EvaluationKind.CONSTITUTION]
    baselines = [e for e in done if e.kind != EvaluationKind.CONSTITUTION]
    out = []
    for i, first in enumerate(subjects):
        # Constitutions (GCAI vs ICAI) are compared with each other, then with the baselines.
        for second in [*subjects[i + 1 :], *baselines]:
            est = compare_judgements(judgements[first.pk], judgements[second.pk], score=score)
            out.append(
                {
                    "first": target_label(first),
                    "second": target_label(second),
                    "first_id": first.pk,
                    "second_id": second.pk,
                    "estimate": est.to_dict(),
                    "text": _signed(est.to_dict()),
                }
            )
    return out


def _signed(estimate: dict[str, Any]) -> str:
    if estimate.get("value") is None:
        return "-"
    n = int(estimate.get("n") or 0)
    if estimate.get("lo") is None or estimate["lo"] == estimate["hi"]:
        # Every resample gives the same difference: the two were scored alike on every
        # pair, which says nothing about how they would differ on other pairs.
        text = f"{100 * estimate['value']:+.1f} pts (scored alike on all {n} pairs: no interval)"
    else:
        text = (
            f"{100 * estimate['value']:+.1f} pts "
            f"[{100 * estimate['lo']:+.1f}, {100 * estimate['hi']:+.1f}]"
        )
    warning = small_sample_warning(n, MIN_N_PAIRS, "pairs")
    return f"{text}. {warning}" if warning else text
