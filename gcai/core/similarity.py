"""Similarity of two constitutions, for the synthetic setting where the principles that
generated the preferences (the ground truth) are known.

Principles are matched one-to-one so that the total cosine similarity of the matched
pairs is as large as possible (Hungarian algorithm, ``linear_sum_assignment``):
a greedy "closest principle" match would let one ground-truth principle absorb several
near-duplicates and hide principles that were never recovered. With unequal sizes the
surplus principles stay unmatched and are listed.

Two summary numbers:

- ``mean_similarity``: mean cosine similarity over the matched pairs;
- ``padded_similarity``: the matched similarities summed and divided by the larger
  constitution's size, i.e. unmatched principles count as 0, so a constitution that
  recovers only one principle perfectly does not score 1.

Optionally an LLM judge rates each matched pair's similarity in meaning (0..1), which
catches what embeddings miss (negations, "cats over dogs" vs "dogs over cats").
:func:`reference_similarity` scores the ground truth against itself: the maximum a
recovered constitution can reach with the same embedder (1.0 for cosine).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from gcai.core import prompts
from gcai.core.embed import Embedder
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult
from gcai.core.llm.parsing import answer_payload
from gcai.core.serial import Stored
from gcai.core.types import Constitution

__all__ = [
    "MatchedPrinciples",
    "SimilarityResult",
    "constitution_similarity",
    "reference_similarity",
]

_SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "number"}},
    "required": ["score"],
    "additionalProperties": False,
}


@dataclass(slots=True)
class MatchedPrinciples(Stored):
    """One matched pair: principle ``index_a`` of A with ``index_b`` of B (0-based)."""

    index_a: int
    index_b: int
    text_a: str
    text_b: str
    similarity: float  # cosine similarity of the embeddings
    llm_score: float | None = None  # the judge's 0..1 rating, when asked
    llm_error: str | None = None


@dataclass(slots=True)
class SimilarityResult(Stored):
    """Optimal one-to-one matching of two constitutions and its summary scores.

    ``mean_llm_score`` averages the judge's ratings over matched pairs it rated
    (``None`` when no judge was used or every rating failed).
    """

    n_a: int
    n_b: int
    matched: list[MatchedPrinciples]
    unmatched_a: list[str]
    unmatched_b: list[str]
    mean_similarity: float | None
    padded_similarity: float | None
    mean_llm_score: float | None = None
    embedder: str = ""
    judge: str = ""
    similarity_matrix: list[list[float]] = field(default_factory=list)


def _texts(constitution: Constitution | Sequence[str]) -> list[str]:
    if isinstance(constitution, Constitution):
        return [p.text for p in constitution.principles]
    if isinstance(constitution, str):
        raise TypeError("pass a Constitution or a list of principle texts, not one string")
    return [str(t) for t in constitution]


def constitution_similarity(
    a: Constitution | Sequence[str],
    b: Constitution | Sequence[str],
    embedder: Embedder,
    *,
    judge: ChatModel | None = None,
    seed: int = 0,
    prompt_version: str = "v1",
) -> SimilarityResult:
    """Match the principles of ``a`` and ``b`` one-to-one, maximising cosine similarity.

    ``a`` is typically the ground truth and ``b`` a recovered constitution. With a
    ``judge``, each matched pair is also rated by the LLM (one batched call); a failed
    rating is recorded on the pair, never raised.
    """
    texts_a, texts_b = _texts(a), _texts(b)
    if not texts_a or not texts_b:
        return SimilarityResult(
            n_a=len(texts_a),
            n_b=len(texts_b),
            matched=[],
            unmatched_a=texts_a,
            unmatched_b=texts_b,
            mean_similarity=None,
            padded_similarity=0.0 if texts_a or texts_b else None,
            embedder=embedder.name,
            judge=judge.name if judge else "",
        )
    vectors = embedder.embed([*texts_a, *texts_b]).astype(np.float64)
    # Normalise again: the protocol promises unit rows, but a cheap guard keeps the
    # scores cosine similarities if an embedder forgets.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1.0, norms)
    va, vb = vectors[: len(texts_a)], vectors[len(texts_a) :]
    sim = np.clip(va @ vb.T, -1.0, 1.0)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    matched = [
        MatchedPrinciples(
            index_a=int(i),
            index_b=int(j),
            text_a=texts_a[i],
            text_b=texts_b[j],
            similarity=float(sim[i, j]),
        )
        for i, j in zip(rows, cols, strict=True)
    ]
    if judge is not None:
        _rate_with_judge(judge, matched, seed, prompt_version)
    total = float(sum(m.similarity for m in matched))
    rated = [m.llm_score for m in matched if m.llm_score is not None]
    matched_a = {m.index_a for m in matched}
    matched_b = {m.index_b for m in matched}
    return SimilarityResult(
        n_a=len(texts_a),
        n_b=len(texts_b),
        matched=matched,
        unmatched_a=[t for i, t in enumerate(texts_a) if i not in matched_a],
        unmatched_b=[t for j, t in enumerate(texts_b) if j not in matched_b],
        mean_similarity=total / len(matched),
        padded_similarity=total / max(len(texts_a), len(texts_b)),
        mean_llm_score=float(np.mean(rated)) if rated else None,
        embedder=embedder.name,
        judge=judge.name if judge else "",
        similarity_matrix=[[round(float(x), 6) for x in row] for row in sim],
    )


def reference_similarity(
    ground_truth: Constitution | Sequence[str],
    embedder: Embedder,
    *,
    judge: ChatModel | None = None,
    seed: int = 0,
) -> SimilarityResult:
    """The ground truth scored against itself: the ceiling for recovered constitutions."""
    return constitution_similarity(ground_truth, ground_truth, embedder, judge=judge, seed=seed)


def _rate_with_judge(
    judge: ChatModel, matched: list[MatchedPrinciples], seed: int, prompt_version: str
) -> None:
    requests = [
        ChatRequest(
            messages=prompts.render(
                f"judge_similarity_{prompt_version}", principle_a=m.text_a, principle_b=m.text_b
            ),
            schema=_SCORE_SCHEMA,
            temperature=0.0,
            seed=seed,
            max_tokens=24,
            purpose="similarity.judge",
        )
        for m in matched
    ]
    results = judge.complete_many(requests)
    for m, result in zip(matched, results, strict=True):
        m.llm_score, m.llm_error = _parse_score(result)


def _parse_score(result: ChatResult) -> tuple[float | None, str | None]:
    if result.error is not None:
        return None, f"{type(result.error).__name__}: {result.error}"
    payload: Any = answer_payload(result.parsed, result.text)
    if isinstance(payload, str):
        # A bare answer such as "Score: 7/10": its first number.
        match = re.search(r"-?\d+(?:\.\d+)?", payload)
        payload = float(match.group(0)) if match else None
    raw = payload.get("score") if isinstance(payload, dict) else payload
    try:
        score = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, f"unusable score in {str(result.text)[:200]!r}"
    if not np.isfinite(score):
        return None, f"unusable score {score!r}"
    # Models sometimes answer on a 0..10 or 0..100 scale despite the instruction.
    if 1.0 < score <= 10.0:
        score /= 10.0
    elif 10.0 < score <= 100.0:
        score /= 100.0
    if not 0.0 <= score <= 1.0:
        return None, f"score out of range: {raw!r}"
    return score, None
