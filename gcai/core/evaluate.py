"""Preference reconstruction: how well does a judge told only a constitution reproduce
human preferences it has not seen?

For each held-out pair an LLM judge receives the constitution and the pair and
answers ``{"choice": "A" | "B"}`` (a forced choice, as published; with
``allow_abstain`` it may also answer "none": no principle applies). Every pair is judged
in BOTH orders (as shown, and with the responses swapped), because LLM judges are
position-biased.

The headline is the published measure (improved ICAI, Table 1): each order's answer is
scored on its own against the human label and the two are averaged
(``EvalMetrics.accuracy_per_order``, Wilson interval). A judge that ignores the content
(always "A", or a coin) lands at exactly 50%. Stricter views stay available as extra
columns: ``accuracy`` counts a pair only when both orders agree with each other and with
the human ("strict agreement"), and with abstaining on, ``coverage`` and
``accuracy_covered`` say how often the judge decided and how well.

Baselines run through the same code with the same judge and pairs:
:data:`NO_CONSTITUTION` (the judge's own taste) and :func:`orthogonal_constitution`
(irrelevant, length-neutral principles; a judge following them should score at chance).

Per-principle analysis (optional, on by default) is a second request kind per
pair and order: the judge lists the principles that clearly favour one response,
with the side each favours, and names the decisive one. It is a separate request,
not extra fields on the main one, so the headline judgement keeps exactly the same
output format as the no-constitution baseline (asking a model to explain itself
changes what it answers), and it can be switched off to halve the cost.

Flow: :func:`build_judge_requests` -> ``ChatModel.complete_many`` ->
:func:`judge_pairs` (one :class:`PairJudgement` per pair, never raises) ->
:func:`compute_metrics` (:class:`EvalMetrics`, 95% intervals). :func:`evaluate`
does all three; :func:`compare_judgements` compares two evaluations pair by pair. Requests depend only on (constitution, pair, order, config), never
on a pair's position in the batch, so any split of the pairs into batches (Celery
fan-out) gives the same requests and hits the same cache entries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gcai.core.judging import (
    NO_CONSTITUTION,
    ConstitutionLike,
    EvalConfig,
    PairJudgement,
    Verdict,
    baseline_constitutions,
    build_analysis_requests,
    build_judge_requests,
    judge_pairs,
    label_of,
    orthogonal_constitution,
    principle_texts,
)
from gcai.core.llm.base import ChatModel
from gcai.core.serial import Stored
from gcai.core.stats import Estimate, bootstrap, kappa_vs_chance, proportion
from gcai.core.types import Pair, Preference

__all__ = [
    "NO_CONSTITUTION",
    "EvalConfig",
    "EvalMetrics",
    "EvalResult",
    "PairJudgement",
    "PrincipleStats",
    "Verdict",
    "baseline_constitutions",
    "build_analysis_requests",
    "build_judge_requests",
    "compare_judgements",
    "compute_metrics",
    "evaluate",
    "judge_pairs",
    "orthogonal_constitution",
    "principle_texts",
]

# --------------------------------------------------------------------------- metrics

_HUMAN_SIDES = ("a", "b")
_JUDGE_COLUMNS = ("a", "b", "abstain", "inconsistent")


@dataclass(slots=True)
class PrincipleStats(Stored):
    """How one principle behaved across the scored pairs (from the analysis requests).

    ``relevance``: share of analysed pairs where the judge said the principle favours
    a response. ``accuracy``: among those, share where its side matched the human
    label (order-inconsistent votes count as wrong). ``decisive``: share of analysed
    pairs where the judge named it the decisive principle.
    """

    number: int
    text: str
    n_analysed: int
    n_applied: int
    n_correct: int
    n_decisive: int
    relevance: Estimate
    accuracy: Estimate
    decisive: Estimate


_ESTIMATE_FIELDS = (
    "accuracy",
    "accuracy_abstain_half",
    "accuracy_per_order",
    "coverage",
    "accuracy_covered",
    "order_disagreement",
    "order_flip",
    "kappa",
)


@dataclass(slots=True)
class EvalMetrics(Stored):
    """Preference-reconstruction metrics with confidence intervals.

    Scored pairs are those with a decisive human label (a/b) and a usable judgement
    in both orders; ``n_scored`` is the denominator of every rate below. Pairs with
    human ties/"both bad" are counted in ``n_ties`` (their judge outcomes in
    ``tie_outcomes``), unlabelled pairs in ``n_unlabelled``, failed judgements in
    ``n_errors``; none of them are scored.

    - ``accuracy_per_order``: THE HEADLINE (improved ICAI, Table 1): each order's
      answer scored on its own (1 right, 0.5 abstained, 0 wrong), averaged per pair.
      Chance is exactly 0.5 for any judge that ignores content: a coin-flipper, an
      always-"none" judge and a judge that always says "A" (right in one order, wrong
      in the other) alike.
    - ``accuracy`` ("strict agreement"): final verdict == human label, i.e. both orders
      picked the human's response; abstentions and order inconsistencies count as
      wrong (Wilson interval).
    - ``accuracy_abstain_half``: the same with an abstention worth half.
    - ``coverage``: share not abstained (both orders "none" is an abstention).
    - ``accuracy_covered``: accuracy among non-abstained pairs.
    - ``order_disagreement``: the two orders gave different answers;
      ``order_flip``: they picked opposite responses (pure position effect).
    - ``kappa``: Cohen's kappa against chance 0.5, ``(s - 0.5) / 0.5`` with ``s`` =
      ``accuracy_per_order``. It is computed on that score, not on the strict
      ``accuracy``, because only there is chance really 0.5: under the strict rule a
      coin-flipping judge scores 0.25 and a position-biased one 0, and kappa would call
      them systematically wrong. Interval: Wilson bounds of ``s`` over ``n_scored``
      pairs mapped through the same line (conservative: a per-pair score in
      {0, 0.25, ..., 1} varies less than a 0/1 outcome).
    - ``confusion``: ``{human "a"|"b": {judge "a"|"b"|"abstain"|"inconsistent": count}}``.

    Every interval is a Wilson interval. For the half-credit scores (abstain half,
    per order, kappa) it is taken with the fractional total as ``k``; a score in
    [0, 1] with mean p varies at most as much as a 0/1 outcome, so this is
    conservative, and unlike a percentile bootstrap it does not collapse to a point
    when every pair scores the same (e.g. [1, 1] for four perfect pairs).
    """

    n_pairs: int
    n_scored: int
    n_ties: int
    n_unlabelled: int
    n_errors: int
    accuracy: Estimate
    accuracy_abstain_half: Estimate
    accuracy_per_order: Estimate
    coverage: Estimate
    accuracy_covered: Estimate
    order_disagreement: Estimate
    order_flip: Estimate
    kappa: Estimate
    confusion: dict[str, dict[str, int]]
    tie_outcomes: dict[str, int]
    principles: list[PrincipleStats] = field(default_factory=list)
    confidence: float = 0.95


def _human(j: PairJudgement, labels: Mapping[str, Preference | str] | None) -> str:
    return label_of(labels[j.pair_id]) if labels and j.pair_id in labels else label_of(j.human)


def compute_metrics(
    judgements: Sequence[PairJudgement],
    labels: Mapping[str, Preference | str] | None = None,
    *,
    principles: ConstitutionLike = None,
    confidence: float = 0.95,
) -> EvalMetrics:
    """Score judgements against human labels.

    ``labels`` maps pair id -> human preference; without it (or for ids it lacks)
    the label recorded in each judgement is used. ``principles`` (the evaluated
    constitution) names the per-principle rows; without it rows are numbered only.
    """
    # (judgement, human label) for every scored pair; kept as a list, not keyed by
    # pair id, so duplicate ids in the input cannot mix up labels.
    scored: list[tuple[PairJudgement, str]] = []
    n_ties = n_unlabelled = n_errors = 0
    tie_outcomes: Counter[str] = Counter()
    for j in judgements:
        human = _human(j, labels)
        if j.final == Verdict.ERROR:
            n_errors += 1
        elif human in _HUMAN_SIDES:
            scored.append((j, human))
        elif human in (Preference.TIE, Preference.BOTH_BAD):
            n_ties += 1
            tie_outcomes[j.final] += 1
        else:
            n_unlabelled += 1

    n = len(scored)
    correct = sum(1 for j, h in scored if j.final == h)
    abstained = sum(1 for j, _ in scored if j.final == Verdict.ABSTAIN)
    disagree = sum(1 for j, _ in scored if j.orders_disagree)
    flips = sum(1 for j, _ in scored if j.order_flip)
    covered = n - abstained

    order_scores = [_pair_score(j, h, "per_order") for j, h in scored]
    half = proportion(sum(_pair_score(j, h, "abstain_half") for j, h in scored), n, confidence)
    per_order = proportion(sum(order_scores), n, confidence)

    confusion = {h: dict.fromkeys(_JUDGE_COLUMNS, 0) for h in _HUMAN_SIDES}
    for j, h in scored:
        confusion[h][j.final] += 1

    return EvalMetrics(
        n_pairs=len(judgements),
        n_scored=n,
        n_ties=n_ties,
        n_unlabelled=n_unlabelled,
        n_errors=n_errors,
        accuracy=proportion(correct, n, confidence),
        accuracy_abstain_half=half,
        accuracy_per_order=per_order,
        coverage=proportion(covered, n, confidence),
        accuracy_covered=proportion(correct, covered, confidence),
        order_disagreement=proportion(disagree, n, confidence),
        order_flip=proportion(flips, n, confidence),
        kappa=kappa_vs_chance(sum(order_scores), n, 0.5, confidence),
        confusion=confusion,
        tie_outcomes={k: tie_outcomes.get(k, 0) for k in (*_JUDGE_COLUMNS,)},
        principles=_principle_stats(scored, principle_texts(principles), confidence),
        confidence=confidence,
    )


def _order_score(answer: str | None, human: str) -> float:
    if answer == human:
        return 1.0
    return 0.5 if answer == Verdict.ABSTAIN else 0.0


def _pair_score(j: PairJudgement, human: str, score: str) -> float:
    """One pair's credit under ``score``: "strict", "abstain_half" or "per_order"."""
    if score == "strict":
        return 1.0 if j.final == human else 0.0
    if score == "abstain_half":
        return 1.0 if j.final == human else 0.5 if j.final == Verdict.ABSTAIN else 0.0
    if score == "per_order":
        return (_order_score(j.original, human) + _order_score(j.swapped, human)) / 2
    raise ValueError(f"unknown score {score!r}: use strict, abstain_half or per_order")


def _principle_stats(
    scored: Sequence[tuple[PairJudgement, str]],
    texts: Sequence[str] | None,
    confidence: float,
) -> list[PrincipleStats]:
    analysed = [(j, h) for j, h in scored if j.principle_votes is not None]
    if not analysed:
        return []
    # Without the texts, report every principle number the judge used.
    seen = max(
        (k for j, _ in analysed for k in [*(j.principle_votes or {}), *j.decisive]), default=0
    )
    count = len(texts) if texts is not None else seen
    n = len(analysed)
    rows = []
    for number in range(1, count + 1):
        applied = [(j, h) for j, h in analysed if number in (j.principle_votes or {})]
        right = sum(1 for j, h in applied if (j.principle_votes or {})[number] == h)
        decisive = sum(1 for j, _ in analysed if number in j.decisive)
        rows.append(
            PrincipleStats(
                number=number,
                text=texts[number - 1] if texts is not None else "",
                n_analysed=n,
                n_applied=len(applied),
                n_correct=right,
                n_decisive=decisive,
                relevance=proportion(len(applied), n, confidence),
                accuracy=proportion(right, len(applied), confidence),
                decisive=proportion(decisive, n, confidence),
            )
        )
    return rows


def compare_judgements(
    first: Sequence[PairJudgement],
    second: Sequence[PairJudgement],
    labels: Mapping[str, Preference | str] | None = None,
    *,
    score: str = "per_order",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Paired difference in score between two evaluations on the same pairs.

    E.g. a GCAI and an ICAI constitution (or a constitution and a baseline) judged
    on the same held-out pairs: ``value`` is the mean over shared scored pairs of
    ``score(first) - score(second)``, with a seeded percentile bootstrap over pairs.
    Pairing removes the pair-to-pair variation both evaluations share, so the
    interval is much narrower than comparing two separate intervals. ``score`` is
    "per_order" (the headline accuracy), "strict" or "abstain_half". Pairs that are
    unscored (ties, unlabelled, errors) in either evaluation are left out.
    """

    def by_id(judgements: Sequence[PairJudgement]) -> dict[str, tuple[PairJudgement, str]]:
        out: dict[str, tuple[PairJudgement, str]] = {}
        for j in judgements:
            if j.pair_id in out:
                raise ValueError(f"pair {j.pair_id!r} appears twice; pairing needs unique ids")
            human = _human(j, labels)
            if j.final != Verdict.ERROR and human in _HUMAN_SIDES:
                out[j.pair_id] = (j, human)
        return out

    a, b = by_id(first), by_id(second)
    diffs = [_pair_score(*a[pid], score) - _pair_score(*b[pid], score) for pid in a if pid in b]
    est = bootstrap(diffs, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return Estimate(est.value, est.lo, est.hi, est.n, None, "bootstrap-paired", confidence)


# --------------------------------------------------------------------------- one call


@dataclass(slots=True)
class EvalResult(Stored):
    """Everything an evaluation produces, ready to store as JSON."""

    judgements: list[PairJudgement]
    metrics: EvalMetrics
    config: EvalConfig
    principles: list[str] | None  # None: the no-constitution baseline
    usage: dict[str, int | float] = field(default_factory=dict)  # counts stay ints


def evaluate(
    model: ChatModel,
    constitution: ConstitutionLike,
    pairs: Sequence[Pair],
    config: EvalConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Judge ``pairs`` with ``constitution`` (``None`` for the baseline) and score them
    against the pairs' own labels."""
    config = config or EvalConfig()
    usage: dict[str, float] = {}
    judgements = judge_pairs(model, constitution, pairs, config, progress=progress, usage=usage)
    texts = principle_texts(constitution)
    metrics = compute_metrics(
        judgements,
        principles=texts,
        confidence=config.confidence,
    )
    return EvalResult(judgements, metrics, config, texts, usage)
