"""Evaluations, declared on the job engine.

An :class:`~gcai.constitutions.models.Evaluation` is one kind of job on the shared engine
(:mod:`gcai.jobs.engine`), with :class:`EvaluationArtifact` rows as its stored
stages, so fan-out, the database join, cancel, resume, progress and usage accounting are
the same code as for pipeline runs and steering runs. Stages:

- ``judging`` (batched over the evaluation's frozen pair ids, in id order): the judge
  sees each pair in both orders (:func:`gcai.core.evaluate.judge_pairs`); one artifact
  of judgements per batch, merged into one list;
- ``scoring`` (whole): the metrics (:func:`gcai.core.evaluate.compute_metrics`) and,
  with a ground truth, constitution similarity.

``evaluation_finish`` writes the results document onto the row. Progress counts pairs,
not batches: the pages say "Pairs judged: N of M".
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.models import PreferencePair
from gcai.constitutions.models import Evaluation, EvaluationArtifact
from gcai.core.evaluate import EvalConfig, PairJudgement, compute_metrics, judge_pairs
from gcai.core.llm.usage import UsageMeter
from gcai.core.llm_similarity import llm_constitution_similarity, llm_reference_similarity
from gcai.core.similarity import constitution_similarity, reference_similarity
from gcai.core.types import Pair, Preference
from gcai.jobs import engine, guards
from gcai.jobs.models import JobStatus
from gcai.jobs.stages import Stage, concatenate

JUDGING = "judging"
SCORING = "scoring"


class EvaluationInputs:
    """What the stages read: the frozen labels and principles, the judge, earlier outputs."""

    def __init__(self, evaluation: Evaluation, meter: UsageMeter) -> None:
        self.evaluation = evaluation
        self.meter = meter
        self._outputs: dict[str, dict[str, Any]] = {}

    @cached_property
    def config(self) -> EvalConfig:
        return EvalConfig.from_dict(self.evaluation.config.get("eval", {}))

    @property
    def principles(self) -> list[str] | None:
        return self.evaluation.config.get("principles")

    @property
    def labels(self) -> dict[str, str]:
        # Frozen at creation: annotations added later do not move the target.
        return self.evaluation.config.get("labels", {})

    @cached_property
    def judge(self) -> guards.GuardedModel:
        from gcai.constitutions import llm

        cancel = guards.CancelCheck(Evaluation, self.evaluation.pk)
        return guards.GuardedModel(llm.chat_model_for(meter=self.meter, should_cancel=cancel))

    def output(self, stage: str) -> dict[str, Any]:
        if stage not in self._outputs:
            self._outputs[stage] = EVALUATION.output(self.evaluation, stage)
        return self._outputs[stage]

    def judgements(self) -> list[PairJudgement]:
        return [PairJudgement.from_dict(d) for d in self.output(JUDGING)["judgements"]]


# --------------------------------------------------------------------------- stages


def _pair_ids(ctx: EvaluationInputs) -> list[int]:
    return sorted(int(pk) for pk in ctx.labels)


def _judge_batch(ctx: EvaluationInputs, ids: Sequence[Any]) -> dict[str, Any]:
    """Judge one batch of pairs in both orders (with the per-principle analysis)."""
    labels = ctx.labels
    rows = PreferencePair.objects.filter(pk__in=[int(pk) for pk in ids]).order_by("pk")
    pairs = [
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
    judge = ctx.judge
    if judge.name != ctx.evaluation.llm_model:
        # The worker's configuration decides which model judges; record it.
        Evaluation.objects.filter(pk=ctx.evaluation.pk).update(llm_model=judge.name[:200])
    judgements = judge_pairs(judge, ctx.principles, pairs, ctx.config)
    return {"judgements": [j.to_dict() for j in judgements]}


def _score(ctx: EvaluationInputs) -> dict[str, Any]:
    """Metrics over the merged judgements; with a ground truth, ``similarity`` matches it
    against the evaluated principles and ``similarity_reference`` scores it against
    itself (the ceiling)."""
    texts = ctx.principles
    config = ctx.config
    metrics = compute_metrics(ctx.judgements(), principles=texts, confidence=config.confidence)
    scores: dict[str, Any] = {
        "metrics": metrics.to_dict(),
        "similarity": None,
        "similarity_reference": None,
        "similarity_llm": None,
        "similarity_llm_reference": None,
    }
    truth = ctx.evaluation.config.get("ground_truth")
    if truth and texts:
        from gcai.constitutions import llm

        embedder = llm.embedder()
        # Embedding matching always (cheap); with llm_similarity also the paper's LLM
        # matching rated 1-10 (improved ICAI, section 3.2) and its ceiling.
        scores["similarity"] = constitution_similarity(
            truth, texts, embedder, seed=config.seed
        ).to_dict()
        scores["similarity_reference"] = reference_similarity(
            truth, embedder, seed=config.seed
        ).to_dict()
        if ctx.evaluation.config.get("llm_similarity"):
            scores["similarity_llm"] = llm_constitution_similarity(
                truth, texts, ctx.judge, seed=config.seed
            ).to_dict()
            scores["similarity_llm_reference"] = llm_reference_similarity(
                truth, ctx.judge, seed=config.seed
            ).to_dict()
    return scores


EVALUATION_STAGES = [
    Stage(
        JUDGING,
        "Judge each pair in both orders",
        items=_pair_ids,
        compute_batch=_judge_batch,
        merge=concatenate("judgements"),
    ),
    Stage(SCORING, "Metrics and constitution similarity", compute=_score),
]


@transaction.atomic
def evaluation_finish(evaluation: Evaluation, ctx: EvaluationInputs) -> None:
    """Write the results document onto the row and mark the evaluation succeeded.

    ``results``: the settings, the principles, the split, the metrics, every pair's
    judgements and the similarity parts (None without a ground truth). Idempotent; a
    cancel that arrived while scoring wins (nothing is written).
    """
    locked = Evaluation.objects.select_for_update().defer("results").get(pk=evaluation.pk)
    if not locked.is_active:
        return
    if locked.cancel_requested:
        raise guards.JobCancelled()
    scores = ctx.output(SCORING)
    results = {
        "config": ctx.config.to_dict(),
        "principles": ctx.principles,
        "split": evaluation.split,
        "metrics": scores["metrics"],
        "judgements": ctx.output(JUDGING)["judgements"],
        **{k: v for k, v in scores.items() if k != "metrics"},
    }
    n_pairs = len(ctx.labels)
    Evaluation.objects.filter(pk=evaluation.pk).update(
        results=results,
        status=JobStatus.SUCCEEDED,
        stage="done",
        error="",
        progress_done=n_pairs,
        progress_total=n_pairs,
        finished_at=timezone.now(),
    )


EVALUATION = engine.JobKind(
    job_model=Evaluation,
    artifact_model=EvaluationArtifact,
    job_field="evaluation",
    stages=lambda evaluation, ctx: EVALUATION_STAGES,
    inputs=EvaluationInputs,
    finish=evaluation_finish,
    step_task="gcai.constitutions.evaluation_tasks.evaluation_step_task",
    batch_task="gcai.constitutions.evaluation_tasks.evaluation_batch_task",
    progress_unit="items",
)
