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
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from annotations.models import PreferencePair, Split, Study
from gcai.constitutions import jobs
from gcai.constitutions.labels import (
    DEFAULT_TIE_POLICY,
    PairLabels,
    check_tie_policy,
    pairs_labels,
)
from gcai.constitutions.llm import configured_backend
from gcai.constitutions.models import Constitution, Evaluation, EvaluationKind, JobStatus
from gcai.constitutions.pipeline import sample_ids
from gcai.core.evaluate import (
    EvalConfig,
    PairJudgement,
    compute_metrics,
    judge_pairs,
    orthogonal_constitution,
    principle_texts,
)
from gcai.core.llm.base import LLMCancelled
from gcai.core.llm.usage import UsageMeter
from gcai.core.llm_similarity import llm_constitution_similarity, llm_reference_similarity
from gcai.core.similarity import constitution_similarity, reference_similarity
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


def evaluation_label_set(
    *,
    study: Study,
    split: str,
    dataset_ids: Sequence[int] | None = None,
    ties: str = DEFAULT_TIE_POLICY,
) -> PairLabels:
    """Labels of the study's pairs in ``split`` and where each came from.

    From human annotations only (machine annotators never label a held-out pair), else
    the dataset's own label; ties and split annotators follow ``ties`` (see
    :mod:`gcai.constitutions.labels`). Two queries whatever the number of pairs.
    """
    pairs = PreferencePair.objects.filter(dataset__study=study, split=split)
    if dataset_ids:
        pairs = pairs.filter(dataset_id__in=dataset_ids)
    rows = list(pairs.only("pk", "source_preference").order_by("pk"))
    return pairs_labels(rows, ties=ties)


def evaluation_labels(
    *,
    study: Study,
    split: str,
    dataset_ids: Sequence[int] | None = None,
    ties: str = DEFAULT_TIE_POLICY,
) -> dict[int, str]:
    """Scorable labels of the study's pairs in ``split``: pair id -> a | b | tie | both_bad
    (ties only with ``ties="tie"``); unlabelled and excluded pairs are left out."""
    found = evaluation_label_set(study=study, split=split, dataset_ids=dataset_ids, ties=ties)
    return {pk: label.value for pk, label in found.labels.items() if label in _SCORABLE}


def _held_out(
    *,
    study: Study,
    split: str,
    limit: int | None,
    seed: int,
    dataset_ids: Sequence[int] | None,
    ties: str = DEFAULT_TIE_POLICY,
) -> dict[int, str]:
    if split not in SPLITS:
        raise EvaluationError(f"split: must be one of {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise EvaluationError("limit: must be at least 1")
    _check_ties(ties)
    found = evaluation_labels(study=study, split=split, dataset_ids=dataset_ids, ties=ties)
    if not found:
        raise EvaluationError(
            f"No labelled {split} pairs in this study: import a dataset with a {split} split "
            "and preferences, or collect annotations first."
        )
    chosen = sample_ids(list(found), limit, seed)
    return {pk: found[pk] for pk in chosen}


def _check_ties(ties: str) -> str:
    try:
        return check_tie_policy(ties)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None


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
    allow_abstain: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    labels: dict[int, str] | None = None,
    comparison_group: str = "",
    ties: str = DEFAULT_TIE_POLICY,
) -> Evaluation:
    """Create a queued evaluation of ``constitution`` (or a baseline ``kind``).

    Pairs are the study's labelled pairs of ``split`` (held-out ``test`` by default;
    ``train`` only when asked, and the evaluation keeps that label), sampled down to
    ``limit`` with ``seed``. ``labels`` (pair id -> label) fixes the pairs instead, so a
    comparison judges every target on the same pairs. The constitution's wording is
    copied into the config, so later edits to a draft cannot change a running
    evaluation. ``ground_truth`` (principle texts) adds constitution similarity to the
    results. Labels come from people only (else the dataset's own label); ``ties`` says
    what happens to tied and split pairs and is recorded (see
    :mod:`gcai.constitutions.labels`). Raises :class:`EvaluationError` naming the bad
    setting.
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
    _check_ties(ties)
    if labels is None:
        labels = _held_out(
            study=study, split=split, limit=limit, seed=seed, dataset_ids=dataset_ids, ties=ties
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
        "ties": ties,
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
    ground_truth, llm_similarity, principle_analysis, allow_abstain, batch_size); ``ties``
    decides which pairs are labelled (see :mod:`gcai.constitutions.labels`).
    """
    if not constitutions and not baselines:
        raise EvaluationError("Choose at least one constitution or the baselines.")
    ties = options.pop("ties", DEFAULT_TIE_POLICY)
    labels = _held_out(
        study=study, split=split, limit=limit, seed=seed, dataset_ids=dataset_ids, ties=ties
    )
    group = uuid.uuid4().hex
    common = dict(
        study=study,
        split=split,
        limit=limit,
        seed=seed,
        dataset_ids=dataset_ids,
        labels=labels,
        comparison_group=group,
        ties=ties,
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


def evaluation_run_inline(
    *, evaluation: Evaluation, progress: Callable[[int, int], None] | None = None
) -> str:
    """Run (or resume) an evaluation to the end in this process, without a worker.

    For the ``evaluate --inline`` command, scripts and tests; the web never calls it.
    ``progress(batches done, batches)`` is called as batches finish.
    """
    if evaluation.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        _reopen(evaluation)
    return evaluation_step(evaluation.pk, inline=True, progress=progress)


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


def evaluation_step(
    evaluation_id: int,
    *,
    inline: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> str:
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
        total = _n_batches(evaluation)
        for done, i in enumerate(missing, total - len(missing)):
            if progress is not None:
                progress(done, total)
            outcome = evaluation_batch(evaluation_id, i, join=False)
            if outcome not in ("stored", "batch-done"):
                return outcome
        if progress is not None:
            progress(total, total)
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
