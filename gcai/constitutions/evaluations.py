"""Evaluations: preference reconstruction on held-out pairs, as resumable Celery work.

An evaluation asks an LLM judge, told only a constitution (or nothing, or irrelevant
principles: the two baselines), which response of each held-out pair a human preferred.
The algorithm lives in :mod:`gcai.core.evaluate`; this module stores, schedules and
reports it.

An evaluation is a job on the shared engine, declared in
:mod:`gcai.constitutions.evaluation_jobs` (stages "judging", batched over the pairs, and
"scoring"); the functions here create, start, cancel and resume it. A resume only judges
the batches that have no stored artifact, and the LLM response cache answers every call
a failed batch had already paid for, so nothing is paid twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from annotations.models import PreferencePair, Split, Study
from gcai.constitutions.evaluation_jobs import EVALUATION, JUDGING
from gcai.constitutions.labels import (
    DEFAULT_TIE_POLICY,
    PairLabels,
    check_tie_policy,
    pairs_labels,
)
from gcai.constitutions.llm import configured_backend
from gcai.constitutions.models import Constitution, Evaluation, EvaluationKind
from gcai.constitutions.pipeline import sample_ids
from gcai.core.evaluate import EvalConfig, orthogonal_constitution, principle_texts
from gcai.core.types import Preference
from gcai.jobs.models import JobStatus

DEFAULT_BATCH_SIZE = 25
SPLITS = (Split.TEST.value, Split.TRAIN.value)
_SCORABLE = (Preference.A, Preference.B, Preference.TIE, Preference.BOTH_BAD)


class EvaluationError(ValueError):
    """An evaluation that cannot be created or resumed; the message is safe to show."""


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
    EVALUATION.start(evaluation)


def evaluation_cancel(*, evaluation: Evaluation) -> None:
    """Ask an evaluation to stop; running batches notice within a second."""
    EVALUATION.cancel(evaluation)


def _reopen(evaluation: Evaluation) -> None:
    if evaluation.status == JobStatus.SUCCEEDED:
        raise EvaluationError("This evaluation has already succeeded.")
    EVALUATION.reopen(evaluation)


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
    ``progress(pairs judged, pairs)`` is called as batches finish. Returns "succeeded",
    "cancelled" or "failed".
    """
    if evaluation.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        _reopen(evaluation)

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None and stage == JUDGING:
            progress(done, total)

    return EVALUATION.step(evaluation.pk, inline=True, progress=report)


def evaluation_step(evaluation_id: int, *, inline: bool = False) -> str:
    """Advance an evaluation as far as possible in this process (see
    :meth:`~gcai.jobs.engine.JobKind.step`)."""
    return EVALUATION.step(evaluation_id, inline=inline)


def evaluation_batch(evaluation_id: int, stage: str, batch: int) -> str:
    """Compute one batch of an evaluation's stage (see
    :meth:`~gcai.jobs.engine.JobKind.batch`)."""
    return EVALUATION.batch(evaluation_id, stage, batch)
