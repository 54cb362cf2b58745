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

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any

from gcai.core import prompts
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult, LLMCancelled, LLMError
from gcai.core.stats import Estimate, bootstrap, kappa_vs_chance, proportion
from gcai.core.types import Constitution, Pair, Preference, Principle

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

#: The "no constitution" baseline: the judge decides by its own notion of "better".
NO_CONSTITUTION: None = None

ConstitutionLike = Constitution | Sequence[str] | str | None


class Verdict(StrEnum):
    """A judge's outcome on one pair, in the pair's own a/b terms."""

    A = "a"
    B = "b"
    ABSTAIN = "abstain"  # both orders said "none"
    INCONSISTENT = "inconsistent"  # the two orders gave different answers
    ERROR = "error"  # at least one order has no usable answer


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """Settings of one evaluation. Part of every request, so part of the cache key."""

    # Forced choice, as published; True lets the judge answer "none" and adds the
    # strict-agreement, coverage and abstention columns.
    allow_abstain: bool = False
    seed: int = 0
    prompt_version: str = "v1"
    temperature: float = 0.0
    principle_analysis: bool = True
    # Pairs per complete_many call; progress is reported between batches.
    batch_size: int = 64
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# --------------------------------------------------------------------------- constitutions


def principle_texts(constitution: ConstitutionLike) -> list[str] | None:
    """Principle texts of a constitution given as an object, a list or one text per line.

    ``None`` stays ``None`` (the no-constitution baseline). A string is read as one
    principle per line; a leading ``"1."``/``"1)"`` numbering is dropped so that
    ``Constitution.as_text()`` round-trips.
    """
    if constitution is None:
        return None
    if isinstance(constitution, Constitution):
        return [p.text.strip() for p in constitution.principles]
    if isinstance(constitution, str):
        lines = [re.sub(r"^\s*\d+\s*[.)]\s*", "", ln).strip() for ln in constitution.splitlines()]
        return [ln for ln in lines if ln]
    return [str(t).strip() for t in constitution]


def _numbered(texts: Sequence[str]) -> str:
    return "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))


def orthogonal_constitution(text: str | None = None) -> Constitution:
    """The orthogonal baseline: principles unrelated to what makes a response good.

    Reads ``gcai/core/prompts/orthogonal_default.txt`` (one principle per line, ``#``
    comments) unless ``text`` in the same format is given, so a study can edit the list.
    """
    if text is None:
        text = (
            resources.files("gcai.core.prompts")
            .joinpath("orthogonal_default.txt")
            .read_text(encoding="utf-8")
        )
    lines = [ln.strip() for ln in text.splitlines()]
    principles = [Principle(text=ln) for ln in lines if ln and not ln.startswith("#")]
    return Constitution(principles=principles, title="Orthogonal baseline")


def baseline_constitutions() -> dict[str, Constitution | None]:
    """The two baselines every evaluation is compared against, by name."""
    return {"no_constitution": NO_CONSTITUTION, "orthogonal": orthogonal_constitution()}


# --------------------------------------------------------------------------- requests

_NO_PRINCIPLE_APPLIES = (
    'If no principle of the constitution applies to the two responses, answer "none".'
)
_ANSWER_RULES = {
    # (has a constitution, abstaining allowed) -> the instruction line of the prompt
    (True, True): _NO_PRINCIPLE_APPLIES,
    (True, False): "You must pick one response, even if no principle applies clearly.",
    (False, True): 'If neither response is better than the other, answer "none".',
    (False, False): "You must pick one response.",
}


def _choice_schema(allow_abstain: bool) -> dict[str, Any]:
    choices = ["A", "B", "none"] if allow_abstain else ["A", "B"]
    return {
        "type": "object",
        "properties": {"choice": {"type": "string", "enum": choices}},
        "required": ["choice"],
        "additionalProperties": False,
    }


_ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "applicable": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "principle": {"type": "integer"},
                    "favours": {"type": "string", "enum": ["A", "B"]},
                },
                "required": ["principle", "favours"],
                "additionalProperties": False,
            },
        },
        "decisive": {"type": "integer"},
    },
    "required": ["applicable", "decisive"],
    "additionalProperties": False,
}


def _shown(pair: Pair, swapped: bool) -> tuple[str, str]:
    return (pair.response_b, pair.response_a) if swapped else (pair.response_a, pair.response_b)


def build_judge_requests(
    constitution: ConstitutionLike, pairs: Sequence[Pair], config: EvalConfig | None = None
) -> list[ChatRequest]:
    """Two judge requests per pair: ``[p0 as shown, p0 swapped, p1 as shown, ...]``.

    With a constitution the judge may answer "none" when no principle applies; without
    one (baseline) it says which response is better, with "none" only when
    ``config.allow_abstain``. Requests are deterministic for the cache.
    """
    config = config or EvalConfig()
    texts = principle_texts(constitution)
    has = texts is not None
    choices = " | ".join(
        f'"{c}"' for c in (["A", "B", "none"] if config.allow_abstain else ["A", "B"])
    )
    values = {"answer_rule": _ANSWER_RULES[(has, config.allow_abstain)], "choices": choices}
    if texts is not None:
        name = f"judge_constitution_{config.prompt_version}"
        values["constitution"] = _numbered(texts)
    else:
        name = f"judge_baseline_{config.prompt_version}"
    schema = _choice_schema(config.allow_abstain)
    requests = []
    for pair in pairs:
        for swapped in (False, True):
            first, second = _shown(pair, swapped)
            messages = prompts.render(
                name, prompt=pair.prompt, response_a=first, response_b=second, **values
            )
            requests.append(
                ChatRequest(
                    messages=messages,
                    schema=schema,
                    temperature=config.temperature,
                    seed=config.seed,
                    max_tokens=32,
                    purpose="evaluate.judge",
                )
            )
    return requests


def build_analysis_requests(
    constitution: ConstitutionLike, pairs: Sequence[Pair], config: EvalConfig | None = None
) -> list[ChatRequest]:
    """Two per-principle analysis requests per pair (as shown, swapped); empty without
    a constitution, since there are no principles to analyse."""
    config = config or EvalConfig()
    texts = principle_texts(constitution)
    if not texts:
        return []
    name = f"judge_principles_{config.prompt_version}"
    requests = []
    for pair in pairs:
        for swapped in (False, True):
            first, second = _shown(pair, swapped)
            messages = prompts.render(
                name,
                constitution=_numbered(texts),
                prompt=pair.prompt,
                response_a=first,
                response_b=second,
            )
            requests.append(
                ChatRequest(
                    messages=messages,
                    schema=_ANALYSIS_SCHEMA,
                    temperature=config.temperature,
                    seed=config.seed,
                    # Room for every principle to be listed once.
                    max_tokens=48 + 24 * len(texts),
                    purpose="evaluate.principles",
                )
            )
    return requests


# --------------------------------------------------------------------------- parsing


def _payload(result: ChatResult) -> Any:
    """The JSON object of an answer: the client's parse, else a lenient parse of the text.

    Clients parse when a schema was given; the fallback covers clients (and fakes)
    that only return text.
    """
    if result.parsed is not None:
        return result.parsed
    text = (result.text or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        match = re.search(r"\{.*\}", text, re.DOTALL)
        if match:
            try:
                return json.loads(match.group(0))
            except json.JSONDecodeError:
                pass
    return text


_NONE_WORDS = {"none", "neither", "n/a", "na", "no", "abstain", "tie", "null", ""}


def _parse_choice(result: ChatResult, allow_abstain: bool) -> tuple[str | None, str | None]:
    """``("A" | "B" | "none", None)`` or ``(None, error message)``."""
    if result.error is not None:
        return None, f"{type(result.error).__name__}: {result.error}"
    payload = _payload(result)
    raw = payload.get("choice") if isinstance(payload, dict) else payload
    if raw is None and isinstance(payload, dict):
        return None, f"no 'choice' in answer: {str(result.text)[:200]!r}"
    if not isinstance(raw, str):
        return None, f"unusable choice {raw!r}"
    word = raw.strip().strip("\"'.").strip()
    if word.upper() in ("A", "B"):
        return word.upper(), None
    for prefix in ("RESPONSE ", "RESPONSE_"):
        if word.upper().startswith(prefix) and word.upper()[len(prefix) :] in ("A", "B"):
            return word.upper()[len(prefix) :], None
    if word.lower() in _NONE_WORDS:
        if not allow_abstain:
            return None, "the judge abstained although abstaining was not allowed"
        return "none", None
    return None, f"unusable choice {raw[:100]!r}"


def _to_pair_terms(answer: str, swapped: bool) -> str:
    if answer == "none":
        return Verdict.ABSTAIN.value
    side = answer.lower()
    if swapped:
        side = "b" if side == "a" else "a"
    return side


def _parse_analysis(
    result: ChatResult, n_principles: int, swapped: bool
) -> tuple[dict[int, str], int | None, str | None]:
    """Votes ``{principle number: "a" | "b"}`` in pair terms, decisive number, error."""
    if result.error is not None:
        return {}, None, f"{type(result.error).__name__}: {result.error}"
    payload = _payload(result)
    if not isinstance(payload, dict):
        return {}, None, f"unusable analysis {str(result.text)[:200]!r}"
    votes: dict[int, str] = {}
    items = payload.get("applicable") or []
    if not isinstance(items, list):
        return {}, None, "'applicable' is not a list"
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            number = int(item.get("principle"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        side = str(item.get("favours", "")).strip().upper()
        # Numbers outside the constitution are the model inventing principles: ignore.
        if not 1 <= number <= n_principles or side not in ("A", "B"):
            continue
        mapped = _to_pair_terms(side, swapped)
        # Listing one principle for both sides in one answer is a contradiction.
        votes[number] = mapped if votes.get(number, mapped) == mapped else Verdict.INCONSISTENT
    decisive: int | None = None
    try:
        d = int(payload.get("decisive") or 0)
        decisive = d if 1 <= d <= n_principles else None
    except (TypeError, ValueError):
        pass
    return votes, decisive, None


# --------------------------------------------------------------------------- judgements


@dataclass(slots=True)
class PairJudgement:
    """The judge's answers on one pair, all in the pair's own a/b terms.

    ``original``/``swapped``: ``"a"``, ``"b"``, ``"abstain"`` or ``None`` when that order
    failed (see ``errors``). ``final``: a :class:`Verdict` value. ``principle_votes``:
    per principle number (1-based), the side it favoured (``"a"``, ``"b"`` or
    ``"inconsistent"`` when the two orders disagreed); only principles the judge said
    apply are present, and ``None`` means the analysis was not run or failed.
    ``decisive``: principle numbers named decisive in either order.
    """

    pair_id: str
    human: str
    original: str | None
    swapped: str | None
    final: str
    errors: list[str] = field(default_factory=list)
    principle_votes: dict[int, str] | None = None
    decisive: list[int] = field(default_factory=list)
    analysis_errors: list[str] = field(default_factory=list)

    @property
    def orders_disagree(self) -> bool:
        return self.final == Verdict.INCONSISTENT

    @property
    def order_flip(self) -> bool:
        """The two orders picked opposite responses: the signature of position bias."""
        return {self.original, self.swapped} == {"a", "b"}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.principle_votes is not None:
            # JSON object keys are strings.
            data["principle_votes"] = {str(k): v for k, v in self.principle_votes.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairJudgement:
        data = dict(data)
        votes = data.get("principle_votes")
        if votes is not None:
            data["principle_votes"] = {int(k): v for k, v in votes.items()}
        return cls(**data)


def _final(original: str | None, swapped: str | None) -> str:
    if original is None or swapped is None:
        return Verdict.ERROR.value
    if original != swapped:
        return Verdict.INCONSISTENT.value
    return original  # "a", "b" or "abstain"


def _combine_votes(first: dict[int, str], second: dict[int, str]) -> dict[int, str]:
    """A principle listed in one order keeps its side; listed in both with different
    sides it is inconsistent (it then counts as applying but never as correct)."""
    combined = dict(first)
    for number, side in second.items():
        if combined.get(number, side) != side:
            combined[number] = Verdict.INCONSISTENT.value
        else:
            combined[number] = side
    return dict(sorted(combined.items()))


def judge_pairs(
    model: ChatModel,
    constitution: ConstitutionLike,
    pairs: Sequence[Pair],
    config: EvalConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    usage: dict[str, float] | None = None,
) -> list[PairJudgement]:
    """Judge every pair in both orders (and analyse principles if configured).

    Never raises for model failures: a failed or unparseable answer is recorded in
    the judgement's ``errors`` and its verdict is ``"error"``. The one exception is
    cancellation: when the model reports :class:`LLMCancelled` (the run was
    cancelled), it is raised so the caller stops. ``progress(done, total)`` is called
    after each batch; ``usage``, when given, accumulates ``calls``, ``cached``,
    ``prompt_tokens`` and ``completion_tokens``.
    """
    config = config or EvalConfig()
    texts = principle_texts(constitution)
    analyse = config.principle_analysis and bool(texts)
    judgements: list[PairJudgement] = []
    total = len(pairs)
    step = max(1, config.batch_size)
    for start in range(0, total, step):
        batch = list(pairs[start : start + step])
        requests = build_judge_requests(texts, batch, config)
        if analyse:
            requests += build_analysis_requests(texts, batch, config)
        try:
            results = model.complete_many(requests)
        except LLMCancelled:
            raise
        except LLMError as exc:
            # complete_many should not raise, but if a client does, the batch is
            # recorded as failed rather than losing the judgements made so far.
            results = [ChatResult(text="", error=exc) for _ in requests]
        cancelled = next((r.error for r in results if isinstance(r.error, LLMCancelled)), None)
        if cancelled is not None:
            # The caller asked to stop: judging the remaining batches would only
            # produce more cancelled requests.
            raise cancelled
        if len(results) != len(requests):
            # A broken client must not shift answers onto the wrong pairs.
            raise RuntimeError(f"{len(requests)} requests but {len(results)} results")
        if usage is not None:
            _add_usage(usage, results)
        n_judge = 2 * len(batch)
        for i, pair in enumerate(batch):
            judgements.append(
                _judge_one(
                    pair,
                    results[2 * i : 2 * i + 2],
                    results[n_judge + 2 * i : n_judge + 2 * i + 2] if analyse else None,
                    len(texts or []),
                    config,
                )
            )
        if progress is not None:
            progress(len(judgements), total)
    return judgements


def _judge_one(
    pair: Pair,
    answers: Sequence[ChatResult],
    analyses: Sequence[ChatResult] | None,
    n_principles: int,
    config: EvalConfig,
) -> PairJudgement:
    errors: list[str] = []
    sides: list[str | None] = []
    for label, swapped, result in (("original", False, answers[0]), ("swapped", True, answers[1])):
        choice, error = _parse_choice(result, config.allow_abstain)
        if error is not None or choice is None:
            errors.append(f"{label}: {error}")
            sides.append(None)
        else:
            sides.append(_to_pair_terms(choice, swapped))
    judgement = PairJudgement(
        pair_id=pair.id,
        human=_label(pair.preferred),
        original=sides[0],
        swapped=sides[1],
        final=_final(sides[0], sides[1]),
        errors=errors,
    )
    if analyses is not None:
        per_order: list[dict[int, str]] = []
        decisive: set[int] = set()
        for label, swapped, result in (
            ("original", False, analyses[0]),
            ("swapped", True, analyses[1]),
        ):
            votes, d, error = _parse_analysis(result, n_principles, swapped)
            if error is not None:
                judgement.analysis_errors.append(f"{label}: {error}")
            per_order.append(votes)
            if d is not None:
                decisive.add(d)
        if not judgement.analysis_errors:
            judgement.principle_votes = _combine_votes(per_order[0], per_order[1])
            judgement.decisive = sorted(decisive)
    return judgement


def _add_usage(acc: dict[str, float], results: Sequence[ChatResult]) -> None:
    for r in results:
        acc["calls"] = acc.get("calls", 0) + r.usage.calls
        acc["cached"] = acc.get("cached", 0) + int(r.usage.cached)
        acc["prompt_tokens"] = acc.get("prompt_tokens", 0) + r.usage.prompt_tokens
        acc["completion_tokens"] = acc.get("completion_tokens", 0) + r.usage.completion_tokens


# --------------------------------------------------------------------------- metrics

_HUMAN_SIDES = ("a", "b")
_JUDGE_COLUMNS = ("a", "b", "abstain", "inconsistent")


@dataclass(slots=True)
class PrincipleStats:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "text": self.text,
            "n_analysed": self.n_analysed,
            "n_applied": self.n_applied,
            "n_correct": self.n_correct,
            "n_decisive": self.n_decisive,
            "relevance": self.relevance.to_dict(),
            "accuracy": self.accuracy.to_dict(),
            "decisive": self.decisive.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrincipleStats:
        d = dict(data)
        for key in ("relevance", "accuracy", "decisive"):
            d[key] = Estimate.from_dict(d[key])
        return cls(**d)


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
class EvalMetrics:
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
    principles: list[PrincipleStats]
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "n_pairs": self.n_pairs,
            "n_scored": self.n_scored,
            "n_ties": self.n_ties,
            "n_unlabelled": self.n_unlabelled,
            "n_errors": self.n_errors,
        }
        for name in _ESTIMATE_FIELDS:
            data[name] = getattr(self, name).to_dict()
        data["confusion"] = {h: dict(row) for h, row in self.confusion.items()}
        data["tie_outcomes"] = dict(self.tie_outcomes)
        data["principles"] = [p.to_dict() for p in self.principles]
        data["confidence"] = self.confidence
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalMetrics:
        d = dict(data)
        for name in _ESTIMATE_FIELDS:
            d[name] = Estimate.from_dict(d[name])
        d["principles"] = [PrincipleStats.from_dict(p) for p in d.get("principles", [])]
        return cls(**d)


def _label(value: Preference | str) -> str:
    try:
        return Preference(value).value
    except ValueError:
        return Preference.NONE.value


def _human(j: PairJudgement, labels: Mapping[str, Preference | str] | None) -> str:
    return _label(labels[j.pair_id]) if labels and j.pair_id in labels else _label(j.human)


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
class EvalResult:
    """Everything an evaluation produces, ready to store as JSON."""

    judgements: list[PairJudgement]
    metrics: EvalMetrics
    config: EvalConfig
    principles: list[str] | None  # None: the no-constitution baseline
    usage: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "principles": self.principles,
            "metrics": self.metrics.to_dict(),
            "judgements": [j.to_dict() for j in self.judgements],
            "usage": dict(self.usage),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        return cls(
            judgements=[PairJudgement.from_dict(j) for j in data["judgements"]],
            metrics=EvalMetrics.from_dict(data["metrics"]),
            config=EvalConfig.from_dict(data["config"]),
            principles=data["principles"],
            usage=dict(data.get("usage", {})),
        )


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
