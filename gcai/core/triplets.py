"""Improved ICAI, variant 2: representative triplets from clusters of embedding differences.

Follows the improved-ICAI paper (Henneking & Beger, arXiv 2501.17112, the
"embedding difference" variant): instead of asking the LLM about one pair at a time,

1. every encoder (content, style, sentiment, ...; see :mod:`gcai.core.encoders`) embeds
   both responses of each decisive pair; the difference preferred minus rejected says
   how the winner differs from the loser in that encoder's aspect;
2. per encoder, seeded KMeans clusters the differences, and each cluster is scored by
   its separation: distance to the nearest other centroid over the mean distance of
   its members to their own centroid (inter / intra; higher is better);
3. clusters of ALL encoders are ranked by that score together and the top ``k`` are
   selected, skipping a cluster that repeats one already selected (more than
   ``max_overlap`` of its pairs are in selected clusters: another encoder found the same
   group) or that has too few pairs;
4. each selected cluster contributes the triplet of its pairs with the best score by
   the same inter / intra metric (the triplet's mean far from the other centroids, its
   members close together), never reusing a pair of an earlier triplet;
5. one joint generation prompt per triplet (:func:`gcai.core.icai.generate`).

Everything is deterministic for a given seed and input, whatever the order of the pairs.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gcai.core.cluster import embed_unique, kmeans_labels
from gcai.core.encoders import Encoder
from gcai.core.serial import Stored
from gcai.core.types import Pair, Preference

# Members considered when searching a cluster's best triplet: the best by point score.
TRIPLET_CANDIDATES = 10
# A spread below this share of the encoder's typical cluster spread counts as that share:
# many pairs can have identical differences (say, equal sentiment on both sides), and a
# zero spread would make a score infinite and win by accident.
MIN_SPREAD_SHARE = 0.05
# Difference clusters per encoder never exceed this by default: KMeans cost grows with
# it, and a constitution needs tens of generation units, not thousands.
MAX_DEFAULT_DIFF_CLUSTERS = 40


class TripletSettings(Protocol):
    """The part of :class:`gcai.core.icai.IcaiConfig` this stage reads."""

    seed: int
    encoders: list[str]
    diff_clusters: int | None
    top_clusters: int | None
    triplet_size: int
    max_overlap: float


@dataclass(slots=True)
class DiffCluster(Stored):
    """A cluster of embedding differences, and whether it yielded a triplet."""

    encoder: str
    cluster: int
    score: float  # inter/intra distance ratio; higher is better separated
    pair_ids: list[str]
    status: str  # selected | too_small | overlap | beyond_top
    triplet: list[str] = field(default_factory=list)  # the best-scoring disjoint triplet
    triplet_score: float | None = None

    @property
    def id(self) -> str:
        return f"{self.encoder}-{self.cluster}"

    def _json_extra(self) -> dict[str, Any]:
        return {"id": self.id}  # derived, but pages and exports read it from the JSON


@dataclass(slots=True)
class TripletSelection(Stored):
    """Output of :func:`select_triplets`: every difference cluster, best-separated first."""

    clusters: list[DiffCluster] = field(default_factory=list)
    n_pairs: int = 0
    top_k: int = 0
    encoders: dict[str, str] = field(default_factory=dict)  # config name -> model/features

    @property
    def triplets(self) -> list[DiffCluster]:
        return [c for c in self.clusters if c.status == "selected"]


def default_diff_clusters(n_pairs: int, triplet_size: int) -> int:
    """Clusters per encoder: about one per ten pairs (10 to 40), room for a triplet in each."""
    return max(
        1,
        min(
            n_pairs // max(1, triplet_size), max(10, min(n_pairs // 10, MAX_DEFAULT_DIFF_CLUSTERS))
        ),
    )


def default_top_clusters(diff_clusters: int) -> int:
    """Top k across all encoders: as many as one encoder's clusters."""
    return max(1, diff_clusters)


def _preferred_rejected(pair: Pair) -> tuple[str, str]:
    if Preference(pair.preferred) is Preference.A:
        return pair.response_a, pair.response_b
    return pair.response_b, pair.response_a


def _standardises(encoder: Encoder) -> bool:
    # A cache wrapper (CachedEmbedder) keeps the wrapped encoder as ``inner``.
    inner = getattr(encoder, "inner", encoder)
    return bool(getattr(encoder, "standardise", getattr(inner, "standardise", False)))


def difference_vectors(
    encoder: Encoder, chosen: Sequence[str], rejected: Sequence[str]
) -> np.ndarray:
    """Preferred minus rejected embeddings, z-scored per feature for feature encoders."""
    n = len(chosen)
    vecs = embed_unique(encoder, [*chosen, *rejected]).astype(np.float64)
    diffs = vecs[:n] - vecs[n:]
    if _standardises(encoder) and n > 1:
        std = diffs.std(axis=0)
        diffs = np.where(std > 1e-9, (diffs - diffs.mean(axis=0)) / np.maximum(std, 1e-9), 0.0)
    return diffs


def separation(diffs: np.ndarray, labels: np.ndarray) -> tuple[dict[int, float], float]:
    """Per cluster: distance to the nearest other centroid / mean distance to own centroid.

    Also returns the spread floor (:data:`MIN_SPREAD_SHARE` of the mean distance of all
    points to their centroids) that the scores used, for scoring triplets alike. With a
    single cluster there is nothing to separate from and the score is 0.
    """
    ids = sorted(set(labels.tolist()))
    centroids = {c: diffs[labels == c].mean(axis=0) for c in ids}
    spreads = {c: np.linalg.norm(diffs[labels == c] - centroids[c], axis=1) for c in ids}
    typical = float(np.concatenate(list(spreads.values())).mean()) if ids else 0.0
    floor = max(MIN_SPREAD_SHARE * typical, 1e-9)
    out: dict[int, float] = {}
    for c in ids:
        others = [float(np.linalg.norm(centroids[c] - centroids[o])) for o in ids if o != c]
        inter = min(others) if others else 0.0
        out[c] = round(inter / max(float(spreads[c].mean()), floor), 6)
    return out, floor


@dataclass(slots=True)
class _Found:
    order: int  # encoder position in the config
    cluster: DiffCluster
    members: list[int]  # row indices into the encoder's difference matrix
    diffs: np.ndarray
    own: np.ndarray  # this cluster's centroid
    others: np.ndarray  # the other clusters' centroids (rows)
    floor: float  # the spread floor of this encoder's scores


def _inter(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Distance of each point (row) to its nearest other centroid (0 if there is none)."""
    if others.shape[0] == 0:
        return np.zeros(points.shape[0])
    return np.min(np.linalg.norm(points[:, None, :] - others[None, :, :], axis=2), axis=1)


def best_triplet(
    found: _Found, ids: Sequence[str], size: int, exclude: set[str]
) -> tuple[list[str], float | None]:
    """The ``size`` members of a cluster with the best inter / intra score, avoiding ``exclude``.

    Members are first ranked by their own score (distance to the nearest other centroid
    over distance to their centroid) and the best :data:`TRIPLET_CANDIDATES` are
    searched exhaustively: a triplet scores the distance of its mean to the nearest other
    centroid over the mean distance of its members to that mean. Ties go to the triplet
    closer to the centroid, then to the smaller pair ids.
    """
    free = [i for i in found.members if ids[i] not in exclude]
    if not free:
        return [], None
    pts = found.diffs[free]
    to_own = np.linalg.norm(pts - found.own, axis=1)
    point_score = _inter(pts, found.others) / np.maximum(to_own, found.floor)
    ranked = sorted(
        range(len(free)),
        key=lambda j: (-round(float(point_score[j]), 9), round(float(to_own[j]), 9), ids[free[j]]),
    )[:TRIPLET_CANDIDATES]
    size = min(size, len(ranked))
    best: tuple[tuple[float, float, tuple[str, ...]], list[int], float] | None = None
    for combo in itertools.combinations(ranked, size):
        sub = pts[list(combo)]
        mean = sub.mean(axis=0)
        intra = float(np.linalg.norm(sub - mean, axis=1).mean())
        inter = float(_inter(mean[None, :], found.others)[0])
        score = round(inter / max(intra, found.floor), 6)
        spread = round(float(np.linalg.norm(mean - found.own)), 9)
        key = (-score, spread, tuple(sorted(ids[free[j]] for j in combo)))
        if best is None or key < best[0]:
            best = (key, list(combo), score)
    assert best is not None
    chosen = sorted(best[1], key=lambda j: ids[free[j]])
    return [ids[free[j]] for j in chosen], best[2]


def select_triplets(
    pairs: Sequence[Pair],
    encoders: Encoder | Mapping[str, Encoder],
    config: TripletSettings,
) -> TripletSelection:
    """Cluster embedding differences per encoder and pick the top-k clusters' triplets.

    ``encoders`` maps the names in ``config.encoders`` to encoders (a single encoder
    counts as ``"content"``); build them with :func:`gcai.core.encoders.build_encoders`.
    Only decisive pairs (a or b) take part. Walking the clusters of all encoders best
    score first, a cluster is ``too_small`` with fewer than ``triplet_size`` pairs,
    ``overlap`` when more than ``max_overlap`` of its pairs belong to clusters already
    selected or when no pair is left that an earlier triplet did not use, ``beyond_top``
    once ``top_clusters`` are selected, and otherwise ``selected`` with its best
    disjoint triplet (:func:`best_triplet`). If no cluster is big enough (tiny data),
    smaller groups are allowed so a run still produces candidates.
    """
    named: Mapping[str, Encoder] = (
        encoders if isinstance(encoders, Mapping) else {"content": encoders}
    )
    missing = [name for name in config.encoders if name not in named]
    if missing:
        raise ValueError(f"encoders: no encoder named {missing[0]!r} was provided")
    decisive = sorted((p for p in pairs if Preference(p.preferred).is_decisive), key=lambda p: p.id)
    n = len(decisive)
    described = {name: str(getattr(named[name], "name", name)) for name in config.encoders}
    if n == 0:
        return TripletSelection([], 0, 0, described)
    k = config.diff_clusters or default_diff_clusters(n, config.triplet_size)
    top = config.top_clusters or default_top_clusters(k)
    ids = [p.id for p in decisive]
    chosen = [_preferred_rejected(p)[0] for p in decisive]
    rejected = [_preferred_rejected(p)[1] for p in decisive]

    found: list[_Found] = []
    for order, name in enumerate(config.encoders):
        diffs = difference_vectors(named[name], chosen, rejected)
        labels = kmeans_labels(diffs, k, config.seed)
        scores, floor = separation(diffs, labels)
        centroids = {c: diffs[labels == c].mean(axis=0) for c in scores}
        for c in sorted(scores):
            members = [i for i in range(n) if labels[i] == c]
            others = [centroids[o] for o in sorted(scores) if o != c]
            found.append(
                _Found(
                    order,
                    DiffCluster(name, c, scores[c], sorted(ids[i] for i in members), ""),
                    members,
                    diffs,
                    centroids[c],
                    np.asarray(others) if others else np.zeros((0, diffs.shape[1])),
                    floor,
                )
            )

    found.sort(key=lambda f: (-f.cluster.score, f.order, f.cluster.cluster))
    min_size = config.triplet_size
    if all(len(f.members) < min_size for f in found):
        min_size = 1
    covered: set[str] = set()
    used: set[str] = set()
    selected = 0
    for f in found:
        dc = f.cluster
        overlap = len(covered.intersection(dc.pair_ids)) / len(dc.pair_ids)
        if len(dc.pair_ids) < min_size:
            dc.status = "too_small"
        elif selected >= top:
            dc.status = "beyond_top"
        elif overlap > config.max_overlap + 1e-12:
            dc.status = "overlap"
        else:
            triplet, score = best_triplet(f, ids, config.triplet_size, used)
            if len(triplet) < min(min_size, config.triplet_size):
                dc.status = "overlap"
                continue
            dc.status = "selected"
            dc.triplet, dc.triplet_score = triplet, score
            covered.update(dc.pair_ids)
            used.update(triplet)
            selected += 1
    return TripletSelection([f.cluster for f in found], n, top, described)


def triplet_coverage(selection: TripletSelection) -> dict[str, Any]:
    """Summary for a run page: selected clusters per encoder and pairs shown to the LLM."""
    per_encoder: dict[str, int] = {}
    for dc in selection.triplets:
        per_encoder[dc.encoder] = per_encoder.get(dc.encoder, 0) + 1
    shown = {pid for dc in selection.triplets for pid in dc.triplet}
    return {
        "selected": len(selection.triplets),
        "per_encoder": per_encoder,
        "pairs_shown": len(shown),
        "share_shown": (len(shown) / selection.n_pairs) if selection.n_pairs else 0.0,
    }
