"""Constitution similarity judged by an LLM, as in the improved-ICAI paper (section 3.2).

For each principle of the reference constitution (usually the ground truth that
generated a synthetic dataset), the LLM is shown the other constitution's principles,
picks the closest one and rates the similarity from 1 to 10. The constitution's score is
the mean rating over the reference principles. Matching is not one-to-one: several
reference principles may pick the same principle, as in the paper.

The ceiling is the reference scored against itself (:func:`llm_reference_similarity`):
a judge rarely gives every identical pair a 10, so a recovered constitution's score is
read against that ceiling, not against 10.

The cheap alternative without an LLM, one-to-one matching by embedding cosine, stays in
:mod:`gcai.core.similarity`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gcai.core import prompts
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult
from gcai.core.serial import Stored
from gcai.core.types import Constitution

MIN_SCORE, MAX_SCORE = 1, 10
MATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "match": {"type": "integer", "minimum": 1},
        "score": {"type": "integer", "minimum": MIN_SCORE, "maximum": MAX_SCORE},
    },
    "required": ["match", "score"],
}


@dataclass(slots=True)
class LlmMatch(Stored):
    """Reference principle ``index`` matched by the judge to ``match_index`` of the other."""

    index: int
    text: str
    match_index: int | None = None
    match_text: str = ""
    score: int | None = None  # 1..10
    error: str | None = None


@dataclass(slots=True)
class LlmSimilarity(Stored):
    """Mean 1-10 rating of the reference principles' best matches (``None`` if none rated)."""

    n_reference: int
    n_other: int
    matches: list[LlmMatch]
    mean_score: float | None
    judge: str = ""
    prompt: str = "judge_match_v1"
    failed: int = 0
    unmatched_other: list[int] = field(default_factory=list)  # never picked as a match

    @property
    def normalised(self) -> float | None:
        """The mean score mapped to 0..1 (1 -> 0, 10 -> 1)."""
        if self.mean_score is None:
            return None
        return (self.mean_score - MIN_SCORE) / (MAX_SCORE - MIN_SCORE)

    def _json_extra(self) -> dict[str, Any]:
        return {"normalised": self.normalised}


def _texts(constitution: Constitution | Sequence[str]) -> list[str]:
    if isinstance(constitution, Constitution):
        return [p.text for p in constitution.principles]
    if isinstance(constitution, str):
        raise TypeError("pass a Constitution or a list of principle texts, not one string")
    return [str(t) for t in constitution]


def match_request(
    principle: str, candidates: Sequence[str], *, seed: int = 0, prompt: str = "judge_match_v1"
) -> ChatRequest:
    """The request that matches ``principle`` against the numbered ``candidates``."""
    listing = "\n".join(f"{i}. {text}" for i, text in enumerate(candidates, 1))
    return ChatRequest(
        messages=prompts.render(
            prompt, principle=principle, candidates=listing, n=str(len(candidates))
        ),
        schema=MATCH_SCHEMA,
        temperature=0.0,
        seed=seed,
        max_tokens=40,
        purpose="similarity.match",
    )


def parse_match(result: ChatResult, n: int) -> tuple[int | None, int | None, str | None]:
    """(0-based match, score 1..10, error) from an answer; never raises."""
    if result.error is not None:
        return None, None, f"{type(result.error).__name__}: {result.error}"
    payload = result.parsed
    if not isinstance(payload, dict):
        numbers = re.findall(r"\d+", result.text or "")
        payload = {"match": numbers[0], "score": numbers[1]} if len(numbers) >= 2 else {}
    try:
        match = int(payload.get("match"))  # type: ignore[arg-type]
        score = round(float(payload.get("score")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, None, f"unusable answer {str(result.text)[:200]!r}"
    if not 1 <= match <= n:
        return None, None, f"match {match} is not between 1 and {n}"
    if not MIN_SCORE <= score <= MAX_SCORE:
        return None, None, f"score {score} is not between {MIN_SCORE} and {MAX_SCORE}"
    return match - 1, score, None


def llm_constitution_similarity(
    reference: Constitution | Sequence[str],
    other: Constitution | Sequence[str],
    judge: ChatModel,
    *,
    seed: int = 0,
    prompt: str = "judge_match_v1",
) -> LlmSimilarity:
    """Match each principle of ``reference`` to its closest in ``other`` and rate it 1-10.

    One LLM call per reference principle (batched through ``complete_many``). A failed
    or unusable answer is recorded on its match and left out of the mean. An empty
    ``other`` scores every reference principle 1 without asking the judge.
    """
    ref, oth = _texts(reference), _texts(other)
    name = getattr(judge, "name", "")
    matches = [LlmMatch(i, t) for i, t in enumerate(ref)]
    if not oth:
        for m in matches:
            m.score = MIN_SCORE
    elif ref:
        requests = [match_request(t, oth, seed=seed, prompt=prompt) for t in ref]
        for m, result in zip(matches, judge.complete_many(requests), strict=True):
            index, score, error = parse_match(result, len(oth))
            m.match_index, m.score, m.error = index, score, error
            m.match_text = oth[index] if index is not None else ""
    rated = [m.score for m in matches if m.score is not None]
    picked = {m.match_index for m in matches if m.match_index is not None}
    return LlmSimilarity(
        n_reference=len(ref),
        n_other=len(oth),
        matches=matches,
        mean_score=(sum(rated) / len(rated)) if rated else None,
        judge=name,
        prompt=prompt,
        failed=sum(1 for m in matches if m.error),
        unmatched_other=[j for j in range(len(oth)) if j not in picked],
    )


def llm_reference_similarity(
    reference: Constitution | Sequence[str], judge: ChatModel, *, seed: int = 0
) -> LlmSimilarity:
    """The reference against itself: the ceiling a recovered constitution is read against."""
    return llm_constitution_similarity(reference, reference, judge, seed=seed)
