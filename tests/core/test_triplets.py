"""Improved ICAI variant 2: encoders, top-k clusters across encoders, overlap, triplets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gcai.core.embed import CachedEmbedder, MemoryEmbeddingCache, SentenceTransformerEmbedder
from gcai.core.encoders import (
    SENTIMENT_FEATURES,
    STYLE_FEATURES,
    SentimentEncoder,
    StyleEncoder,
    build_encoders,
    validate_encoder_names,
)
from gcai.core.icai import IcaiConfig, run_icai
from gcai.core.triplets import TripletSelection, select_triplets
from gcai.core.types import Pair, Preference
from tests.core.scripted import HashEmbedder, Judge, judge_model
from tests.core.stylistic import STYLE_NOISE, STYLE_RULES, style_pairs

# --------------------------------------------------------------------------- fixtures


class PointEncoder:
    """Encodes a response as the point its text names ("x,y"): differences are known."""

    standardise = False

    def __init__(self, name: str = "points") -> None:
        self.name = name
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        return np.asarray([[float(v) for v in t.split(",")] for t in texts], dtype=np.float32)


def point_pairs(points: list[tuple[float, float]], prefix: str = "p") -> list[Pair]:
    """Pairs whose difference (preferred minus rejected) is exactly each point."""
    out = []
    for i, (x, y) in enumerate(points):
        a_wins = i % 2 == 0
        win, lose = f"{x},{y}", "0,0"
        out.append(
            Pair(
                id=f"{prefix}{i:02d}",
                prompt="",
                response_a=win if a_wins else lose,
                response_b=lose if a_wins else win,
                preferred=Preference.A if a_wins else Preference.B,
            )
        )
    return out


def _blob(cx: float, cy: float, spread: float, n: int) -> list[tuple[float, float]]:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(cx + spread * np.cos(a), cy + spread * np.sin(a)) for a in angles]


def _config(**kwargs) -> IcaiConfig:
    return IcaiConfig(method="icai_improved_2", **kwargs)


# --------------------------------------------------------------------------- top-k


def test_top_k_selects_the_best_separated_clusters_and_marks_the_rest_beyond_top():
    # Four clusters, tightest first: spread 0.1, 0.3, 0.6, 1.0 around far-apart centres.
    points = (
        _blob(0, 0, 0.1, 6) + _blob(20, 0, 0.3, 6) + _blob(0, 20, 0.6, 6) + _blob(20, 20, 1.0, 6)
    )
    pairs = point_pairs(points)
    config = _config(encoders=["content"], diff_clusters=4, top_clusters=2)
    selection = select_triplets(pairs, {"content": PointEncoder()}, config)

    scores = [c.score for c in selection.clusters]
    assert scores == sorted(scores, reverse=True)
    assert [c.status for c in selection.clusters] == [
        "selected",
        "selected",
        "beyond_top",
        "beyond_top",
    ]
    # The two selected clusters are the two tightest blobs (pairs 0-5 and 6-11).
    assert [c.pair_ids for c in selection.triplets] == [
        [f"p{i:02d}" for i in range(0, 6)],
        [f"p{i:02d}" for i in range(6, 12)],
    ]
    assert selection.top_k == 2
    for c in selection.triplets:
        assert len(c.triplet) == 3
        assert set(c.triplet) <= set(c.pair_ids)


def test_top_k_ranks_clusters_of_all_encoders_together():
    # The "tight" encoder sees two tight blobs, the "loose" one two loose blobs of
    # other pairs' differences; the top 2 must both come from the tight encoder.
    tight = point_pairs(_blob(0, 0, 0.1, 5) + _blob(30, 0, 0.1, 5), prefix="t")
    loose = point_pairs(_blob(0, 0, 3.0, 5) + _blob(30, 0, 3.0, 5), prefix="l")
    half = {p.response_a for p in tight} | {p.response_b for p in tight}

    class Masked(PointEncoder):
        """Sees only one half of the texts; the other half maps to the origin."""

        def __init__(self, name, keep):
            super().__init__(name)
            self.keep = keep

        def embed(self, texts):
            return super().embed([t if (t in half) == self.keep else "0,0" for t in texts])

    encoders = {"content": Masked("tight", True), "style": Masked("loose", False)}
    config = _config(encoders=["style", "content"], diff_clusters=3, top_clusters=2)
    selection = select_triplets(tight + loose, encoders, config)
    assert [c.encoder for c in selection.triplets] == ["content", "content"]
    assert {c.encoder for c in selection.clusters} == {"content", "style"}


# --------------------------------------------------------------------------- overlap


def test_overlap_rule_skips_a_cluster_another_encoder_already_found():
    points = _blob(0, 0, 0.2, 6) + _blob(15, 0, 0.4, 6) + _blob(0, 15, 0.8, 6)
    pairs = point_pairs(points)
    same = {"content": PointEncoder("a"), "style": PointEncoder("b")}
    config = _config(
        encoders=["content", "style"], diff_clusters=3, top_clusters=6, max_overlap=0.5
    )
    selection = select_triplets(pairs, same, config)

    by_status = {
        s: [c for c in selection.clusters if c.status == s] for s in ("selected", "overlap")
    }
    # Identical encoders find identical clusters: the first encoder's copies are kept,
    # the second encoder's are skipped as overlapping.
    assert {c.encoder for c in by_status["selected"]} == {"content"}
    assert len(by_status["selected"]) == 3
    assert {c.encoder for c in by_status["overlap"]} == {"style"}
    assert len(by_status["overlap"]) == 3


def test_triplets_never_share_a_pair_even_when_clusters_may_overlap():
    points = _blob(0, 0, 0.2, 6) + _blob(15, 0, 0.4, 6)
    pairs = point_pairs(points)
    same = {"content": PointEncoder("a"), "style": PointEncoder("b")}
    config = _config(
        encoders=["content", "style"], diff_clusters=2, top_clusters=4, max_overlap=1.0
    )
    selection = select_triplets(pairs, same, config)

    assert len(selection.triplets) == 4  # each blob twice, once per encoder
    shown = [pid for c in selection.triplets for pid in c.triplet]
    assert len(shown) == len(set(shown)) == 12


def test_a_cluster_with_no_unused_pair_left_is_not_selected():
    points = _blob(0, 0, 0.2, 3) + _blob(15, 0, 0.4, 3)
    pairs = point_pairs(points)
    same = {"content": PointEncoder("a"), "style": PointEncoder("b")}
    config = _config(
        encoders=["content", "style"], diff_clusters=2, top_clusters=4, max_overlap=1.0
    )
    selection = select_triplets(pairs, same, config)
    assert [c.encoder for c in selection.triplets] == ["content", "content"]
    assert {c.status for c in selection.clusters if c.encoder == "style"} == {"overlap"}


# --------------------------------------------------------------------------- triplets


def _triplet_score(pts: np.ndarray, others: np.ndarray) -> float:
    mean = pts.mean(axis=0)
    intra = float(np.linalg.norm(pts - mean, axis=1).mean())
    inter = float(np.min(np.linalg.norm(others - mean, axis=1)))
    return inter / intra


def test_triplet_is_the_best_by_the_cluster_metric_not_the_nearest_to_the_centroid():
    # Cluster A: a tight trio on the side away from cluster B, and a loose ring around
    # A's centroid. The centroid-nearest three are ring points; the metric prefers the
    # tight trio far from B.
    trio = [(-3.0, 0.0), (-3.3, 0.3), (-3.3, -0.3)]
    ring = [(0.0, 1.0), (0.0, -1.0), (0.8, 0.0), (1.0, 0.6), (1.0, -0.6)]
    far = _blob(40, 0, 4.0, 6)  # looser than A, so A ranks first
    pairs = point_pairs(trio + ring + far)
    config = _config(encoders=["content"], diff_clusters=2, top_clusters=1)
    selection = select_triplets(pairs, {"content": PointEncoder()}, config)

    (chosen,) = selection.triplets
    assert chosen.pair_ids == [f"p{i:02d}" for i in range(8)]
    assert chosen.triplet == ["p00", "p01", "p02"]

    # Brute force over every triplet of the cluster agrees, and it is not the nearest 3.
    pts = np.asarray(trio + ring)
    other_centroid = np.asarray(far).mean(axis=0, keepdims=True)
    best = max(
        itertools.combinations(range(8), 3),
        key=lambda c: _triplet_score(pts[list(c)], other_centroid),
    )
    assert best == (0, 1, 2)
    assert chosen.triplet_score == pytest.approx(
        _triplet_score(pts[[0, 1, 2]], other_centroid), rel=1e-4
    )
    nearest = np.argsort(np.linalg.norm(pts - pts.mean(axis=0), axis=1))[:3]
    assert set(nearest.tolist()).isdisjoint({0, 1, 2})


def test_selection_does_not_depend_on_pair_order_and_round_trips():
    pairs = point_pairs(_blob(0, 0, 0.2, 6) + _blob(15, 0, 0.4, 6) + _blob(0, 15, 0.8, 6))
    config = _config(encoders=["content"], diff_clusters=3, top_clusters=2)
    one = select_triplets(pairs, {"content": PointEncoder()}, config)
    two = select_triplets(list(reversed(pairs)), {"content": PointEncoder()}, config)
    assert one.to_dict() == two.to_dict()
    assert TripletSelection.from_dict(one.to_dict()).to_dict() == one.to_dict()
    assert one.encoders == {"content": "points"}


# --------------------------------------------------------------------------- encoders


def test_encoder_names_validate_exactly_what_can_be_built():
    validate_encoder_names(["content", "style", "sentiment", "st:all-mpnet-base-v2"])
    validate_encoder_names(["st:AnnaWegmann/Style-Embedding", "st:/models/my-encoder"])
    for bad in (["lexical"], ["st:"], ["content", "content"], [], "style", ["st:a b"]):
        with pytest.raises(ValueError, match="encoders"):
            validate_encoder_names(bad)
    with pytest.raises(ValueError, match="unknown encoder 'tone'"):
        IcaiConfig(method="icai_improved_2", encoders=["content", "tone"])
    built = build_encoders(["content", "style", "sentiment"], content=HashEmbedder())
    assert isinstance(built["style"], StyleEncoder)
    assert isinstance(built["sentiment"], SentimentEncoder)


def test_a_sentence_transformers_encoder_missing_offline_fails_with_a_clear_error():
    (encoder,) = build_encoders(["st:nobody/no-such-model-xyz"], content=HashEmbedder()).values()
    with pytest.raises(ValueError, match="not available on this machine"):
        encoder.embed(["hello"])


def test_style_features_see_layout_length_and_punctuation():
    enc = StyleEncoder()
    prose = "Water the plants. Feed them weekly. Pick the fruit when ripe."
    bullets = "- Water the plants.\n- Feed them weekly.\n- Pick the fruit when ripe."
    long = " ".join([prose] * 6)
    excited = "Water the plants! Feed them weekly! Pick the fruit when ripe!"
    v = dict(zip(STYLE_FEATURES, enc.embed([prose]).ravel(), strict=True))
    b = dict(zip(STYLE_FEATURES, enc.embed([bullets]).ravel(), strict=True))
    long_v = dict(zip(STYLE_FEATURES, enc.embed([long]).ravel(), strict=True))
    e = dict(zip(STYLE_FEATURES, enc.embed([excited]).ravel(), strict=True))
    assert b["bullet_lines"] == 1.0
    assert v["bullet_lines"] == 0.0
    assert long_v["log_words"] > v["log_words"] + 1.5
    assert e["exclamations"] > 0 == v["exclamations"]
    assert enc.embed([]).shape == (0, len(STYLE_FEATURES))


def test_sentiment_features_order_cheerful_above_neutral_above_gloomy():
    enc = SentimentEncoder()
    rows = enc.embed(
        [
            "What a wonderful day, I love this and I am delighted!",
            "The meeting is at ten in room four.",
            "This is awful, I hate it and it is a painful failure.",
        ]
    )
    assert rows.shape == (3, len(SENTIMENT_FEATURES))
    compound = rows[:, SENTIMENT_FEATURES.index("compound_mean")]
    assert compound[0] > compound[1] > compound[2]


def test_feature_encoders_keep_their_magnitudes_behind_the_cache():
    cached = CachedEmbedder(StyleEncoder(), MemoryEmbeddingCache())
    text = "A short answer, with a comma."
    direct = StyleEncoder().embed([text])
    assert np.allclose(cached.embed([text]), direct)
    assert np.allclose(cached.embed([text]), direct)  # served from the cache
    assert cached.hits == 1
    assert abs(float(np.linalg.norm(direct)) - 1.0) > 0.1  # not a unit row


# --------------------------------------------------------------------------- must show


def _recovered(result, judge: Judge) -> set[str]:
    return {r.key for p in result.constitution.principles if (r := judge.rule_for(p.text))}


@pytest.mark.slow
def test_improved_2_with_the_offline_encoders_recovers_every_rule_the_baseline_recovers():
    """Rules that differ in style (bullets), length and sentiment, and not in content."""
    pairs = style_pairs(90, seed=0)
    judge = Judge(STYLE_RULES, noise=STYLE_NOISE)

    base_model = judge_model(STYLE_RULES, noise=STYLE_NOISE)
    baseline = run_icai(pairs, base_model, HashEmbedder(), IcaiConfig(method="icai", seed=1))
    assert _recovered(baseline, judge) == {"bulleted", "concise", "cheerful"}

    names = ["content", "style", "sentiment"]
    encoders = build_encoders(names, content=SentenceTransformerEmbedder())
    model = judge_model(STYLE_RULES, noise=STYLE_NOISE)
    config = IcaiConfig(method="icai_improved_2", seed=1, encoders=names)
    improved = run_icai(pairs, model, HashEmbedder(), config, encoders=encoders)

    assert _recovered(improved, judge) >= _recovered(baseline, judge)
    assert not {p.text for p in improved.constitution.principles} & set(STYLE_NOISE)
    # From a tenth of the generation calls: one joint prompt per selected triplet.
    assert improved.triplets is not None
    n_triplets = len(improved.triplets.triplets)
    assert model.count("icai.generate") == n_triplets <= 10 < base_model.count("icai.generate")
    shown = [pid for c in improved.triplets.triplets for pid in c.triplet]
    assert len(shown) == len(set(shown)) == 3 * n_triplets
    assert improved.triplets.encoders == {
        "content": "all-MiniLM-L6-v2",
        "style": "gcai-style-v1",
        "sentiment": "gcai-sentiment-vader-v1",
    }


# --------------------------------------------------------------------------- ablation


def test_encoder_ablation_runs_each_encoder_alone_and_all_together():
    from gcai.core.ablation import ablation_csv, ablation_markdown, encoder_ablation

    pairs = style_pairs(60, seed=2)
    judge = Judge(STYLE_RULES, noise=STYLE_NOISE)
    model = judge_model(STYLE_RULES, noise=STYLE_NOISE)
    encoders = build_encoders(["content", "style", "sentiment"], content=HashEmbedder())

    def share_recovered(constitution) -> float:
        keys = {r.key for p in constitution.principles if (r := judge.rule_for(p.text))}
        return len(keys) / len(STYLE_RULES)

    rows = encoder_ablation(
        pairs, model, HashEmbedder(), IcaiConfig(seed=1), encoders, score=share_recovered
    )
    assert [r.encoders for r in rows] == [
        ["content"],
        ["style"],
        ["sentiment"],
        ["content", "style", "sentiment"],
    ]
    assert sum(r.generation_calls for r in rows) == model.count("icai.generate")
    assert all(0 < r.triplets == r.generation_calls for r in rows)
    assert rows[-1].score == 1.0  # all three encoders together recover every rule
    table = ablation_markdown(rows, "rules recovered")
    assert table.splitlines()[0].endswith("| rules recovered |")
    assert "| content + style + sentiment |" in table
    assert ablation_csv(rows).splitlines()[0] == (
        "encoders,triplets,generation_calls,n_principles,score"
    )
