"""Testing candidate principles against labelled pairs (ICAI's voting step, reused by GCAI).

For every pair the LLM sees the two responses and a numbered list of candidates and
answers, per candidate, ``A``, ``B``, ``both`` or ``neither``. Each of ``seeds`` rounds
shows the candidates in a different order (chunks of at most ``max_candidates_per_call``)
and randomises which response is shown as A; the swap is recorded and undone, so every
stored answer is in the pair's own a/b terms. Rounds are aggregated per (pair, candidate)
and the aggregate is compared with the human label:

=============  ==========  ==========  ========  ===========  ========
label          a           b           both      neither      split
=============  ==========  ==========  ========  ===========  ========
a              for         against     abstain   abstain      abstain
b              against     for         abstain   abstain      abstain
tie            against     against     for       abstain      abstain
both_bad       against     against     abstain   abstain      abstain
=============  ==========  ==========  ========  ===========  ========

``invalid`` (missing, unknown or failed answers) stays ``invalid``; ``split`` means the
rounds did not agree (no majority, or not unanimous). Why this table for non-decisive
labels: a person who calls two responses equally good agrees with a principle that both
satisfy, and disagrees with one that separates them; "neither" means the principle does
not apply, which says nothing. When both responses are bad, a principle that separates
them is contradicted, but one that both (or neither) satisfy does not explain the
verdict either, so it abstains. Unlabelled pairs (``none``) are not voted on.

All per-item randomness comes from :func:`gcai.core.cluster.stable_seed` over (run seed,
pair id, round, chunk), so any batching of pairs gives the same requests and results.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self, TypeVar

from gcai.core import prompts
from gcai.core.cluster import Candidate, stable_rng, stable_seed
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult, LLMOutputError
from gcai.core.serial import Stored
from gcai.core.types import Pair, Preference

_S = TypeVar("_S")
Answer = Literal["a", "b", "both", "neither", "split", "invalid"]
Outcome = Literal["for", "against", "abstain", "invalid"]
AGGREGATIONS: tuple[str, ...] = ("majority", "unanimous")
OUTCOMES: tuple[str, ...] = ("for", "against", "abstain", "invalid")
SHOWN_ANSWERS: tuple[str, ...] = ("A", "B", "both", "neither")

_OUTCOME_TABLE: dict[Preference, dict[str, Outcome]] = {
    Preference.A: {"a": "for", "b": "against"},
    Preference.B: {"a": "against", "b": "for"},
    Preference.TIE: {"a": "against", "b": "against", "both": "for"},
    Preference.BOTH_BAD: {"a": "against", "b": "against"},
    Preference.NONE: {},
}


def outcome(label: Preference, answer: str) -> Outcome:
    """Map an aggregated answer (pair terms) to for/against/abstain/invalid for ``label``."""
    if answer == "invalid":
        return "invalid"
    return _OUTCOME_TABLE[Preference(label)].get(answer, "abstain")


def aggregate(answers: Sequence[str], method: str) -> Answer:
    """Combine one (pair, candidate)'s answers across rounds.

    ``majority``: the answer given by more than half of the rounds (``invalid`` can win:
    a call that kept failing is reported, not hidden); ``unanimous``: the answer all
    rounds gave. Otherwise ``split``.
    """
    if not answers:
        return "invalid"
    (top, count), *_ = Counter(answers).most_common(1)
    if method == "unanimous":
        ok = count == len(answers)
    elif method == "majority":
        ok = count > len(answers) / 2
    else:
        raise ValueError(f"aggregation: must be one of {AGGREGATIONS}, got {method!r}")
    return top if ok else "split"  # type: ignore[return-value]


# --------------------------------------------------------------------------- config


def settings_from_dict(cls: type[_S], data: Mapping[str, Any], label: str) -> _S:
    """Build a settings dataclass from JSON; unknown keys are an error naming the key,
    because a typo must not silently do nothing. Lists are copied."""
    unknown = sorted(set(data) - set(cls.__dataclass_fields__))  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown {label} setting")
    return cls(**{k: list(v) if isinstance(v, list) else v for k, v in data.items()})


def require_int(name: str, value: object, minimum: int, *, optional: bool = False) -> None:
    """Config check: ``value`` is an int >= ``minimum`` (or None if ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        extra = " or null" if optional else ""
        raise ValueError(f"{name}: must be an integer >= {minimum}{extra}, got {value!r}")


def require_float(name: str, value: object, low: float, high: float | None = None) -> None:
    """Config check: ``value`` is a number in [``low``, ``high``]."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high  # type: ignore[operator]
    if not ok:
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name}: must be a number {bound}, got {value!r}")


def require_prompt(name: str, value: object) -> None:
    """Config check: ``value`` names a shipped prompt template."""
    if not isinstance(value, str) or not prompts.exists(value):
        raise ValueError(f"{name}: no prompt template named {value!r}")


@dataclass(slots=True)
class VoteConfig(Stored):
    """How candidates are tested against pairs."""

    seed: int = 0
    seeds: int = 3  # rounds per pair, each with its own candidate order and A/B swap
    max_candidates_per_call: int = 40
    aggregation: str = "majority"  # majority | unanimous
    prompt: str = "icai_vote_v1"
    temperature: float = 0.0
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        require_int("seed", self.seed, 0)
        require_int("seeds", self.seeds, 1)
        require_int("max_candidates_per_call", self.max_candidates_per_call, 1)
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: must be one of {AGGREGATIONS}")
        require_prompt("prompt", self.prompt)
        require_float("temperature", self.temperature, 0.0)
        require_int("max_tokens", self.max_tokens, 1, optional=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        # Settings typed by people: an unknown key is an error and values are checked
        # by validate(), not coerced (the library would drop typos and turn "3" into 3).
        return settings_from_dict(cls, data, "vote")

    @classmethod
    def of(cls, config: Any) -> VoteConfig:
        """The vote settings of a method config (ICAI or GCAI): both name them the same."""
        return cls(
            seed=config.seed,
            seeds=config.vote_seeds,
            max_candidates_per_call=config.max_candidates_per_call,
            aggregation=config.aggregation,
            prompt=config.vote_prompt,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
        )


# --------------------------------------------------------------------------- outputs


@dataclass(slots=True)
class VoteCall(Stored):
    """One LLM call: which candidates it showed in which order, and what came back.

    ``answers`` are in the pair's own terms (``a``/``b``/``both``/``neither``/``invalid``),
    parallel to ``candidate_ids``; ``swapped`` says response_b was shown as "A".
    """

    pair_id: str
    round: int
    chunk: int
    swapped: bool
    candidate_ids: list[str]
    answers: list[str]
    error: str = ""


@dataclass(slots=True)
class PairVotes(Stored):
    """Aggregated answers (pair terms) for one pair, per candidate id."""

    pair_id: str
    label: Preference
    answers: dict[str, str]

    def outcomes(self) -> dict[str, Outcome]:
        return {cid: outcome(self.label, a) for cid, a in self.answers.items()}


@dataclass(slots=True)
class VoteOutput(Stored):
    """Output of a vote stage (or one batch of it): every call and every pair's aggregate."""

    calls: list[VoteCall] = field(default_factory=list)
    pairs: list[PairVotes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.calls = sorted(self.calls, key=lambda c: (c.pair_id, c.round, c.chunk))
        self.pairs = sorted(self.pairs, key=lambda p: p.pair_id)

    @classmethod
    def merge(cls, parts: Iterable[VoteOutput]) -> VoteOutput:
        """Combine batches of pairs (a pair voted twice keeps its last batch's result)."""
        calls: dict[str, list[VoteCall]] = {}
        pairs: dict[str, PairVotes] = {}
        for part in parts:
            part_calls: dict[str, list[VoteCall]] = {}
            for c in part.calls:
                part_calls.setdefault(c.pair_id, []).append(c)
            for pv in part.pairs:
                pairs[pv.pair_id] = pv
                calls[pv.pair_id] = part_calls.get(pv.pair_id, [])
        return cls([c for cs in calls.values() for c in cs], list(pairs.values()))

    @property
    def errors(self) -> list[VoteCall]:
        return [c for c in self.calls if c.error]

    def _json_extra(self) -> dict[str, Any]:
        # Read by the stage page without loading every call.
        return {"n_calls": len(self.calls), "n_failed_calls": len(self.errors)}


@dataclass(slots=True)
class VoteRow(Stored):
    """Vote counts for one candidate over all voted pairs."""

    # "for" is a keyword in Python, not in the stored form.
    _json_renames: ClassVar[dict[str, str]] = {"for_": "for"}

    candidate_id: str
    for_: int = 0
    against: int = 0
    abstain: int = 0
    invalid: int = 0

    @property
    def n_pairs(self) -> int:
        return self.for_ + self.against + self.abstain + self.invalid

    @property
    def relevance(self) -> float:
        """Share of pairs on which the candidate took a side: (for + against) / pairs."""
        return (self.for_ + self.against) / self.n_pairs if self.n_pairs else 0.0

    @property
    def accuracy(self) -> float | None:
        """for / (for + against); ``None`` when the candidate never took a side."""
        decided = self.for_ + self.against
        return self.for_ / decided if decided else None

    def stats(self) -> dict[str, Any]:
        """The counts and rates stored with a principle."""
        acc = self.accuracy
        return {
            "for": self.for_,
            "against": self.against,
            "abstain": self.abstain,
            "invalid": self.invalid,
            "voted_pairs": self.n_pairs,
            "relevance": round(self.relevance, 6),
            "accuracy": None if acc is None else round(acc, 6),
        }

    def _json_extra(self) -> dict[str, Any]:
        return self.stats()  # rates for the pages and the ranking


@dataclass(slots=True)
class VoteTable(Stored):
    """Per candidate: counts, and the aggregated outcome on every pair."""

    rows: list[VoteRow] = field(default_factory=list)
    votes: dict[str, dict[str, str]] = field(default_factory=dict)  # candidate -> pair -> outcome
    n_pairs: int = 0

    def row(self, candidate_id: str) -> VoteRow:
        for r in self.rows:
            if r.candidate_id == candidate_id:
                return r
        raise KeyError(candidate_id)


# --------------------------------------------------------------------------- requests


@functools.lru_cache(maxsize=64)
def vote_schema(n: int) -> dict[str, Any]:
    """JSON schema of an answer for ``n`` numbered candidates (one shared object per
    ``n``: read-only, so the client derives its validator once)."""
    return {
        "type": "object",
        "properties": {str(i): {"type": "string", "enum": list(SHOWN_ANSWERS)} for i in range(n)},
        "required": [str(i) for i in range(n)],
        "additionalProperties": False,
    }


def _chunks(items: list[str], size: int) -> list[list[str]]:
    """Split into the fewest chunks of at most ``size``, as even as possible."""
    if not items:
        return []
    n = math.ceil(len(items) / size)
    base, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + base + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


@dataclass(slots=True)
class PlannedCall:
    """A vote call before it is made: what to show and the request to send."""

    call: VoteCall
    request: ChatRequest


def plan_pair(pair: Pair, candidates: Sequence[Candidate], config: VoteConfig) -> list[PlannedCall]:
    """All vote calls for one pair (rounds x chunks), derived only from (seed, pair id)."""
    texts = {c.id: c.text for c in candidates}
    ids = sorted(texts)
    planned = []
    for rnd in range(config.seeds):
        order = list(ids)
        stable_rng(config.seed, "vote-order", pair.id, rnd).shuffle(order)
        for chunk_no, chunk in enumerate(_chunks(order, config.max_candidates_per_call)):
            swapped = stable_seed(config.seed, "vote-swap", pair.id, rnd, chunk_no) % 2 == 1
            shown_a, shown_b = (
                (pair.response_b, pair.response_a)
                if swapped
                else (pair.response_a, pair.response_b)
            )
            messages = prompts.render(
                config.prompt,
                prompt_block=prompts.block("prompt", pair.prompt),
                response_a=shown_a,
                response_b=shown_b,
                rules="\n".join(f"{i}. {texts[cid]}" for i, cid in enumerate(chunk)),
            )
            request = ChatRequest(
                messages=messages,
                schema=vote_schema(len(chunk)),
                temperature=config.temperature,
                seed=config.seed,
                max_tokens=config.max_tokens,
                purpose="vote",
            )
            call = VoteCall(pair.id, rnd, chunk_no, swapped, list(chunk), [])
            planned.append(PlannedCall(call, request))
    return planned


_NORMALISE = {
    "a": "A",
    "b": "B",
    "both": "both",
    "neither": "neither",
    # Tolerated synonyms (ICAI's own prompt allowed "None" for "not applicable").
    "none": "neither",
    "n/a": "neither",
}


def _answer_object(result: ChatResult) -> tuple[Any, str]:
    """The answer object and an error note; salvages what it can from invalid output."""
    if result.error is None:
        return result.parsed, ""
    note = f"{type(result.error).__name__}: {result.error}"
    raw = result.error.raw if isinstance(result.error, LLMOutputError) else ""
    if raw:
        # A schema-invalid answer may still hold valid answers for most candidates.
        try:
            from gcai.core.llm.parsing import extract_json

            return extract_json(raw), note
        except Exception:
            pass
    return None, note


def read_answers(result: ChatResult, call: VoteCall) -> VoteCall:
    """Fill ``call.answers`` (pair terms) from the LLM result; never raises."""
    obj, note = _answer_object(result)
    if isinstance(obj, list) and len(obj) == len(call.candidate_ids):
        # Some models answer with a bare list in rule order; positions are unambiguous.
        obj = {str(i): v for i, v in enumerate(obj)}
    answers: list[str] = []
    for i in range(len(call.candidate_ids)):
        raw = obj.get(str(i)) if isinstance(obj, dict) else None
        shown = _NORMALISE.get(raw.strip().lower()) if isinstance(raw, str) else None
        if shown is None:
            answers.append("invalid")
        elif shown in ("A", "B"):
            # Undo the swap so the stored answer names the pair's own response.
            is_a = (shown == "A") != call.swapped
            answers.append("a" if is_a else "b")
        else:
            answers.append(shown)
    if not note and obj is not None and not isinstance(obj, dict):
        note = "answer is not a JSON object"
    if not note and "invalid" in answers:
        note = f"{answers.count('invalid')} of {len(answers)} answers missing or unknown"
    call.answers = answers
    call.error = note
    return call


def vote(
    pairs: Sequence[Pair], candidates: Sequence[Candidate], model: ChatModel, config: VoteConfig
) -> VoteOutput:
    """Test every candidate on every labelled pair; one batch of the vote stage.

    Unlabelled pairs are skipped. All calls of the batch go to ``model.complete_many``
    at once. Failures become ``invalid`` answers with the reason in ``VoteCall.error``.
    """
    labelled = [p for p in pairs if Preference(p.preferred) is not Preference.NONE]
    if not candidates or not labelled:
        return VoteOutput()
    planned = [pc for pair in labelled for pc in plan_pair(pair, candidates, config)]
    results = model.complete_many([pc.request for pc in planned])
    calls = [read_answers(res, pc.call) for pc, res in zip(planned, results, strict=True)]

    by_pair: dict[str, dict[str, list[str]]] = {}
    for call in calls:
        per_cand = by_pair.setdefault(call.pair_id, {})
        for cid, ans in zip(call.candidate_ids, call.answers, strict=True):
            per_cand.setdefault(cid, []).append(ans)
    pair_votes = [
        PairVotes(
            pair_id=p.id,
            label=Preference(p.preferred),
            answers={
                cid: aggregate(answers, config.aggregation)
                for cid, answers in sorted(by_pair.get(p.id, {}).items())
            },
        )
        for p in labelled
    ]
    return VoteOutput(calls, pair_votes)


def tally(output: VoteOutput, candidate_ids: Sequence[str] | None = None) -> VoteTable:
    """Count for/against/abstain/invalid per candidate over all voted pairs.

    ``candidate_ids`` fixes the rows (a candidate missing from a pair counts invalid);
    by default every candidate seen in ``output``.
    """
    ids = (
        list(candidate_ids)
        if candidate_ids is not None
        else sorted({cid for p in output.pairs for cid in p.answers})
    )
    rows = {cid: VoteRow(cid) for cid in ids}
    votes: dict[str, dict[str, str]] = {cid: {} for cid in ids}
    for pv in output.pairs:
        outs = pv.outcomes()
        for cid in ids:
            o = outs.get(cid, "invalid")
            votes[cid][pv.pair_id] = o
            row = rows[cid]
            if o == "for":
                row.for_ += 1
            elif o == "against":
                row.against += 1
            elif o == "abstain":
                row.abstain += 1
            else:
                row.invalid += 1
    return VoteTable([rows[cid] for cid in ids], votes, len(output.pairs))
