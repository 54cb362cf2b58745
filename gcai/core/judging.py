"""Judging pairs for preference reconstruction: the judge's requests, and reading its
answers (:mod:`gcai.core.evaluate` scores them).

A held-out pair is shown to an LLM judge with the constitution (or without one: the
no-constitution baseline) in BOTH orders, as shown and swapped, because LLM judges are
position-biased. By default the judge must choose A or B (a forced choice, as
published); with ``allow_abstain`` it may answer "none" (no principle applies). An
optional second request kind per pair and order asks which principles apply and which
decided; it is separate so the headline judgement keeps exactly the baseline's output
format. Requests depend only on (constitution, pair, order, config), never on a pair's
position in a batch, so any batching hits the same cache entries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any

from gcai.core import prompts
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult, LLMCancelled, LLMError
from gcai.core.llm.parsing import answer_payload
from gcai.core.serial import Stored
from gcai.core.types import Constitution, Pair, Preference, Principle

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
class EvalConfig(Stored):
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
    return answer_payload(result.parsed, result.text)


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


def label_of(value: Preference | str) -> str:
    try:
        return Preference(value).value
    except ValueError:
        return Preference.NONE.value


# --------------------------------------------------------------------------- judgements


@dataclass(slots=True)
class PairJudgement(Stored):
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
        human=label_of(pair.preferred),
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
