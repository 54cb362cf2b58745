"""Clustering, evidence and cluster representatives (gcai.core.cluster)."""

from __future__ import annotations

import numpy as np
import pytest

from gcai.core.cluster import (
    ClusterOutput,
    Evidence,
    Proposal,
    Proposals,
    RepresentativeOutput,
    choose_representatives,
    clean_principles,
    cluster_proposals,
    kmeans_labels,
    separation_scores,
    stable_seed,
)
from tests.core.scripted import HashEmbedder, ScriptedModel, output_error

CAT = ["Select the response that features a cat.", "Select the response about a cat."]
BLUE = ["Select the response that recommends blue.", "Select the response choosing blue."]


def _proposals() -> Proposals:
    return Proposals(
        [
            Proposal("p1", Evidence(pair_ids=["p1"]), [CAT[0], BLUE[0]]),
            Proposal("p2", Evidence(pair_ids=["p2"]), [CAT[1], BLUE[1]]),
            Proposal("p3", Evidence(pair_ids=["p3"]), [CAT[0]]),
            Proposal("p4", Evidence(pair_ids=["p4"]), [], status="skipped", note="tie"),
        ]
    )


def test_stable_seed_is_reproducible_and_sensitive_to_every_part():
    assert stable_seed(1, "pair-7", 0) == stable_seed(1, "pair-7", 0)
    assert stable_seed(1, "pair-7", 0) != stable_seed(1, "pair-7", 1)
    assert stable_seed(1, "pair-7", 0) != stable_seed(2, "pair-7", 0)


def test_kmeans_gives_each_item_its_own_cluster_when_there_are_fewer_items_than_clusters():
    vectors = np.eye(3, dtype=np.float32)
    assert kmeans_labels(vectors, 10, seed=0).tolist() == [0, 1, 2]
    assert kmeans_labels(np.zeros((0, 4)), 10, seed=0).tolist() == []


def test_kmeans_puts_identical_vectors_in_one_cluster_without_complaint():
    vectors = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (5, 1))
    assert kmeans_labels(vectors, 3, seed=0).tolist() == [0] * 5


def test_kmeans_numbers_clusters_by_first_appearance():
    vectors = np.array([[0, 1], [1, 0], [0, 1], [1, 0]], dtype=np.float32)
    assert kmeans_labels(vectors, 2, seed=123).tolist() == [0, 1, 0, 1]


def test_cluster_proposals_groups_similar_principles_and_keeps_their_evidence():
    out = cluster_proposals(_proposals(), HashEmbedder(), n_clusters=2, seed=0)
    assert out.n_texts == 5
    texts = [set(c.distinct_texts()) for c in out.clusters]
    assert sorted(texts, key=len) == sorted([set(CAT), set(BLUE)], key=len)
    cat = next(c for c in out.clusters if CAT[0] in c.distinct_texts())
    assert cat.evidence.pair_ids == ["p1", "p2", "p3"]
    # Members are ordered closest to the centroid first: the repeated wording wins.
    assert cat.members[0].text == CAT[0]
    assert [m.similarity for m in cat.members] == sorted(
        (m.similarity for m in cat.members), reverse=True
    )


def test_cluster_proposals_does_not_depend_on_the_order_of_batches():
    items = _proposals().items
    a = cluster_proposals(Proposals(items), HashEmbedder(), n_clusters=2, seed=3)
    merged = Proposals.merge([Proposals(items[2:]), Proposals(items[:2])])
    b = cluster_proposals(merged, HashEmbedder(), n_clusters=2, seed=3)
    assert a.to_dict() == b.to_dict()


def test_cluster_proposals_with_fewer_principles_than_clusters():
    proposals = Proposals([Proposal("p1", Evidence(pair_ids=["p1"]), [CAT[0]])])
    out = cluster_proposals(proposals, HashEmbedder(), n_clusters=10, seed=0)
    assert len(out.clusters) == 1
    empty = cluster_proposals(Proposals(), HashEmbedder(), n_clusters=10, seed=0)
    assert empty.clusters == []


def test_cluster_output_round_trips_through_json():
    out = cluster_proposals(_proposals(), HashEmbedder(), n_clusters=2, seed=0)
    assert ClusterOutput.from_dict(out.to_dict()).to_dict() == out.to_dict()
    assert Proposals.from_dict(_proposals().to_dict()) == _proposals()


def test_random_representative_is_a_seeded_member():
    clusters = cluster_proposals(_proposals(), HashEmbedder(), n_clusters=2, seed=0).clusters
    first = choose_representatives(clusters, "random", seed=5)
    again = choose_representatives(clusters, "random", seed=5)
    assert first == again
    for cand, cluster in zip(first.candidates, clusters, strict=True):
        assert cand.text in cluster.distinct_texts()
        assert cand.method == "random"


def test_centroid_representative_is_the_member_closest_to_the_centroid():
    clusters = cluster_proposals(_proposals(), HashEmbedder(), n_clusters=2, seed=0).clusters
    out = choose_representatives(clusters, "centroid", seed=0, id_prefix="x")
    assert [c.text for c in out.candidates] == [c.members[0].text for c in clusters]
    assert [c.id for c in out.candidates] == [f"x{c.id}" for c in clusters]
    assert all(not c.evidence.is_empty for c in out.candidates)


def test_summary_representative_asks_once_per_cluster_with_several_wordings():
    proposals = Proposals(
        [
            Proposal("p1", Evidence(pair_ids=["p1"]), [CAT[0], CAT[1]]),
            Proposal("p2", Evidence(pair_ids=["p2"]), ["Select the response in French."]),
        ]
    )
    clusters = cluster_proposals(proposals, HashEmbedder(), n_clusters=2, seed=0).clusters
    model = ScriptedModel(lambda req: {"principle": "Select the response that features a cat."})
    out = choose_representatives(clusters, "summary", seed=0, model=model)
    assert model.count("cluster.summary") == 1  # the single-wording cluster needs no call
    by_method = {c.method: c.text for c in out.candidates}
    assert by_method == {
        "summary": "Select the response that features a cat.",
        "single": "Select the response in French.",
    }


def test_failed_summary_falls_back_to_the_centroid_member_and_says_why():
    proposals = Proposals([Proposal("p1", Evidence(pair_ids=["p1"]), CAT)])
    clusters = cluster_proposals(proposals, HashEmbedder(), n_clusters=1, seed=0).clusters
    model = ScriptedModel(lambda req: None, tamper=lambda req: output_error("garbage"))
    out = choose_representatives(clusters, "summary", seed=0, model=model)
    (cand,) = out.candidates
    assert cand.text == clusters[0].members[0].text
    assert cand.method == "centroid"
    assert "summary failed" in cand.note
    assert out.errors == [cand]
    assert RepresentativeOutput.from_dict(out.to_dict()) == out


def test_unknown_representative_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="representative"):
        choose_representatives([], "best", seed=0)  # type: ignore[arg-type]


def test_separation_prefers_tight_clusters_far_from_the_rest():
    vectors = np.array([[0, 0], [0, 0.01], [5, 5], [5, 7], [6, 5]], dtype=np.float64)
    labels = np.array([0, 0, 1, 1, 1])
    scores = separation_scores(vectors, labels)
    assert scores[0] > scores[1] > 0


def test_clean_principles_trims_repeats_and_limits():
    raw = [
        "  - Select the response that is kind. ",
        "Select the response that is kind.",
        "",
        "Select the response that is brief.",
    ]
    assert clean_principles(raw, 5) == [
        "Select the response that is kind.",
        "Select the response that is brief.",
    ]
    assert clean_principles(raw, 1) == ["Select the response that is kind."]
    assert clean_principles("not a list", 3) is None
    assert clean_principles([1, 2], 3) is None


def test_clean_principles_drops_placeholders_and_punctuation():
    raw = ["Select the response that ...", "][", "...", "ok", "Select the response that is honest."]
    assert clean_principles(raw, 5) == ["Select the response that is honest."]


def test_evidence_is_sorted_unique_and_unions():
    e = Evidence.union(
        [Evidence(pair_ids=["b", "a"]), Evidence(pair_ids=["a"], statement_ids=["s"])]
    )
    assert e.pair_ids == ["a", "b"]
    assert e.statement_ids == ["s"]
    assert not e.is_empty
    assert Evidence(participants=["x"]).is_empty  # people alone are not evidence
