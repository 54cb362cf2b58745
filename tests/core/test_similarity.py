"""Constitution similarity: optimal matching, the ground-truth reference, LLM ratings."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from gcai.core.evaluate import orthogonal_constitution
from gcai.core.llm.base import LLMTransportError
from gcai.core.similarity import SimilarityResult, constitution_similarity, reference_similarity
from gcai.core.types import Constitution, Principle
from tests.core.eval_fakes import (
    ALIGNED_GROUND_TRUTH,
    ALIGNED_RULES,
    MIXED_GROUND_TRUTH,
    ORTHOGONAL_GROUND_TRUTH,
    ORTHOGONAL_RULES,
    HashingEmbedder,
    ScriptedChatModel,
    load_icai_synthetic,
    rule_judge,
)

# What an ICAI run might plausibly recover on the aligned data, in a different order.
RECOVERED_ALIGNED = [
    "Select the response that is enthusiastic and happy to help the user.",
    "Select the response that gives the correct capital, Washington D.C., not a false claim.",
    "Select the response that names a specific place to visit in the UK.",
]

DATASETS = {
    "synthetic_data_aligned_vqvtb.csv": (ALIGNED_GROUND_TRUTH, ORTHOGONAL_GROUND_TRUTH),
    "synthetic_data_orthogonal_adcbg.csv": (ORTHOGONAL_GROUND_TRUTH, ALIGNED_GROUND_TRUTH),
    "synthetic_data_mixed_vqvtb_adcbg.csv": (MIXED_GROUND_TRUTH, None),
}


class FixedEmbedder:
    """Returns given vectors for given texts (unnormalised, to test the guard)."""

    name = "fixed"

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def embed(self, texts):
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)


def _explains(rules, pair) -> bool:
    """Does the first principle that separates the responses pick the human's choice?"""
    for rule in rules.values():
        a, b = rule(pair.response_a), rule(pair.response_b)
        if a != b:
            return ("a" if a else "b") == pair.preferred
    return False


@pytest.mark.parametrize("filename", list(DATASETS))
def test_ground_truth_against_itself_is_the_maximum_and_orthogonal_scores_lower(filename):
    truth, other = DATASETS[filename]
    # The written-down ground truth really generated this file's preferences.
    rules = {**ALIGNED_RULES, **ORTHOGONAL_RULES}
    rules = {p: rules[p] for p in truth}
    assert all(_explains(rules, pair) for pair in load_icai_synthetic(filename))

    embedder = HashingEmbedder()
    reference = reference_similarity(truth, embedder)
    orthogonal = constitution_similarity(truth, orthogonal_constitution(), embedder)

    assert reference.mean_similarity == pytest.approx(1.0)
    assert reference.padded_similarity == pytest.approx(1.0)
    assert [(m.index_a, m.index_b) for m in reference.matched] == [
        (i, i) for i in range(len(truth))
    ]
    assert orthogonal.mean_similarity < reference.mean_similarity - 0.3
    assert orthogonal.padded_similarity < reference.padded_similarity
    if other is not None:
        wrong_truth = constitution_similarity(truth, other, embedder)
        assert wrong_truth.mean_similarity < reference.mean_similarity - 0.3


def test_recovered_principles_are_matched_to_their_ground_truth_counterparts():
    embedder = HashingEmbedder()
    recovered = constitution_similarity(ALIGNED_GROUND_TRUTH, RECOVERED_ALIGNED, embedder)
    orthogonal = constitution_similarity(ALIGNED_GROUND_TRUTH, orthogonal_constitution(), embedder)

    assert sorted((m.index_a, m.index_b) for m in recovered.matched) == [(0, 1), (1, 2), (2, 0)]
    assert orthogonal.mean_similarity < recovered.mean_similarity < 1.0


def test_matching_is_optimal_not_greedy():
    rng = np.random.default_rng(4)
    a = [f"a{i}" for i in range(5)]
    b = [f"b{i}" for i in range(5)]
    vectors = {t: rng.normal(size=8) * rng.uniform(0.5, 3) for t in a + b}
    result = constitution_similarity(a, b, FixedEmbedder(vectors))

    unit = {t: v / np.linalg.norm(v) for t, v in vectors.items()}
    sim = np.array([[unit[x] @ unit[y] for y in b] for x in a])
    best = max(sum(sim[i, p[i]] for i in range(5)) for p in itertools.permutations(range(5)))
    assert result.mean_similarity * 5 == pytest.approx(best, abs=1e-5)
    for m in result.matched:
        assert m.similarity == pytest.approx(sim[m.index_a, m.index_b], abs=1e-5)


def test_unequal_sizes_list_the_unmatched_principles_and_pad_the_score():
    result = constitution_similarity(MIXED_GROUND_TRUTH, ALIGNED_GROUND_TRUTH, HashingEmbedder())

    assert (result.n_a, result.n_b, len(result.matched)) == (6, 3, 3)
    assert result.unmatched_a == ORTHOGONAL_GROUND_TRUTH
    assert result.unmatched_b == []
    assert result.mean_similarity == pytest.approx(1.0)
    assert result.padded_similarity == pytest.approx(0.5)


def test_empty_constitutions_do_not_crash():
    empty = constitution_similarity([], ALIGNED_GROUND_TRUTH, HashingEmbedder())
    assert empty.matched == []
    assert empty.mean_similarity is None
    assert empty.padded_similarity == 0.0
    assert empty.unmatched_b == ALIGNED_GROUND_TRUTH


def test_llm_judged_similarity_per_matched_pair():
    judge = ScriptedChatModel(rule_judge({}))
    reference = reference_similarity(
        Constitution([Principle(t) for t in ALIGNED_GROUND_TRUTH]), HashingEmbedder(), judge=judge
    )
    recovered = constitution_similarity(
        ALIGNED_GROUND_TRUTH, RECOVERED_ALIGNED, HashingEmbedder(), judge=judge
    )

    assert [m.llm_score for m in reference.matched] == [1.0, 1.0, 1.0]
    assert reference.mean_llm_score == 1.0
    assert 0.0 < recovered.mean_llm_score < 1.0
    assert reference.judge == "scripted-judge"
    assert all(r.purpose == "similarity.judge" for r in judge.requests)


@pytest.mark.parametrize(
    ("answer", "score"),
    [({"score": 0.25}, 0.25), ("8", 0.8), ('{"score": 75}', 0.75), ("no idea", None)],
)
def test_llm_scores_are_parsed_tolerantly(answer, score):
    judge = ScriptedChatModel(lambda view: answer, parse=False)
    result = constitution_similarity(["x y"], ["x z"], HashingEmbedder(), judge=judge)
    (match,) = result.matched
    assert match.llm_score == score
    assert (match.llm_error is None) == (score is not None)


def test_failed_llm_ratings_are_recorded_not_raised():
    judge = ScriptedChatModel(lambda view: LLMTransportError("server down"))
    result = reference_similarity(ALIGNED_GROUND_TRUTH, HashingEmbedder(), judge=judge)
    assert result.mean_llm_score is None
    assert all("server down" in (m.llm_error or "") for m in result.matched)
    assert result.mean_similarity == pytest.approx(1.0)


def test_result_round_trips_through_json():
    result = constitution_similarity(
        MIXED_GROUND_TRUTH,
        RECOVERED_ALIGNED,
        HashingEmbedder(),
        judge=ScriptedChatModel(rule_judge({})),
    )
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    again = SimilarityResult.from_dict(data)
    assert again.to_dict() == data
    assert again.matched[0].text_a == result.matched[0].text_a


@pytest.mark.slow
def test_real_embedder_scores_ground_truth_highest():
    embed = pytest.importorskip("gcai.core.embed")
    if not hasattr(embed, "SentenceTransformerEmbedder"):
        pytest.skip("no local sentence-transformers embedder")
    try:
        embedder = embed.SentenceTransformerEmbedder()
    except ImportError as exc:
        pytest.skip(str(exc))

    reference = reference_similarity(ALIGNED_GROUND_TRUTH, embedder)
    recovered = constitution_similarity(ALIGNED_GROUND_TRUTH, RECOVERED_ALIGNED, embedder)
    orthogonal = constitution_similarity(ALIGNED_GROUND_TRUTH, orthogonal_constitution(), embedder)

    assert reference.mean_similarity == pytest.approx(1.0, abs=1e-4)
    assert orthogonal.mean_similarity < recovered.mean_similarity < reference.mean_similarity
    assert sorted((m.index_a, m.index_b) for m in recovered.matched) == [(0, 1), (1, 2), (2, 0)]
