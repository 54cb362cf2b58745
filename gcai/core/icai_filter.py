"""ICAI's filter stage: keep, rank and cap the candidates by their votes.

As inverse-cai 0.4.8 (``src/inverse_cai/algorithm/filter.py`` and the final clustering
in ``algorithm/main.py``): for > against, "for" on at least ``min_support`` of the voted
pairs, fewer invalid votes than valid ones, ranked by for - against; more than N
survivors are re-clustered (the top 1.5 N into N) so near-duplicates do not crowd the
constitution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gcai.core.cluster import (
    RepresentativeOutput,
    embed_unique,
    kmeans_labels,
    make_principle,
)
from gcai.core.embed import Embedder
from gcai.core.serial import Stored
from gcai.core.types import Origin, Principle
from gcai.core.voting import VoteOutput, VoteRow, VoteTable, tally

if TYPE_CHECKING:
    from gcai.core.icai import IcaiConfig


@dataclass(slots=True)
class FilterOutput(Stored):
    """Output of the filter stage: the vote table, every decision and the final principles."""

    table: VoteTable
    ranked: list[str]  # candidate ids that passed, best first
    dropped: dict[str, str]  # candidate id -> why it was dropped
    shortlist: list[str]  # the top ceil(factor * N) that were re-clustered (if capping)
    recluster: dict[str, int]  # shortlist candidate id -> its cluster in the re-clustering
    selected: list[str]  # final candidate ids, best first
    principles: list[Principle]


def _net(row: VoteRow) -> int:
    return row.for_ - row.against


def filter_principles(
    candidates: RepresentativeOutput,
    votes: VoteOutput,
    embedder: Embedder,
    config: IcaiConfig,
) -> FilterOutput:
    """Stage 5: keep, rank and cap the candidates.

    Keeps a candidate when for > against, for >= ``min_support`` x voted pairs and (with
    ``require_majority_valid``) its invalid votes are fewer than its valid ones; ranks
    by for - against (then for, then cluster order). If more than ``max_principles``
    pass, the top ceil(``recluster_factor`` x N) are re-clustered into N clusters and
    each cluster keeps its best-ranked member, so near-duplicates do not crowd the
    constitution.
    """
    cands = {c.id: c for c in candidates.candidates}
    table = tally(votes, list(cands))
    need = config.min_support * table.n_pairs
    ranked: list[str] = []
    dropped: dict[str, str] = {}
    for row in table.rows:
        if row.for_ == row.against == 0:
            dropped[row.candidate_id] = "for 0 <= against 0: never took a side"
        elif row.for_ <= row.against:
            dropped[row.candidate_id] = f"for {row.for_} <= against {row.against}"
        elif row.for_ < need:
            dropped[row.candidate_id] = f"for {row.for_} < min support {need:g}"
        elif config.require_majority_valid and row.invalid >= row.n_pairs - row.invalid:
            valid = row.n_pairs - row.invalid
            dropped[row.candidate_id] = f"invalid {row.invalid} >= valid {valid}"
        else:
            ranked.append(row.candidate_id)
    rows = {r.candidate_id: r for r in table.rows}
    ranked.sort(key=lambda cid: (-_net(rows[cid]), -rows[cid].for_, cands[cid].cluster_id))
    below: set[str] = set()
    if len(ranked) < config.min_principles:
        spare = sorted(
            dropped, key=lambda cid: (-_net(rows[cid]), -rows[cid].for_, cands[cid].cluster_id)
        )
        for cid in spare[: config.min_principles - len(ranked)]:
            dropped.pop(cid)
            below.add(cid)
            ranked.append(cid)

    n = config.max_principles
    shortlist: list[str] = []
    recluster: dict[str, int] = {}
    if len(ranked) <= n:
        selected = list(ranked)
    else:
        shortlist = ranked[: math.ceil(config.recluster_factor * n)]
        vectors = embed_unique(embedder, [cands[cid].text for cid in shortlist])
        labels = kmeans_labels(vectors, n, config.seed).tolist()
        recluster = dict(zip(shortlist, labels, strict=True))
        best: dict[int, str] = {}
        for cid in shortlist:  # in rank order, so the first seen is each cluster's best
            best.setdefault(recluster[cid], cid)
        chosen = set(best.values())
        selected = [cid for cid in shortlist if cid in chosen]
        for cid in ranked:
            if cid not in chosen:
                dropped[cid] = (
                    "near-duplicate of a better-ranked principle"
                    if cid in recluster
                    else "beyond the cap"
                )

    principles = []
    for rank, cid in enumerate(selected, 1):
        cand = cands[cid]
        stats = {
            **rows[cid].stats(),
            "rank": rank,
            "candidate_id": cid,
            "cluster_size": cand.cluster_size,
            "representative": cand.method,
            "below_threshold": cid in below,
            **cand.evidence.counts(),
        }
        principles.append(make_principle(cand.text, Origin.ICAI, cand.evidence, stats))
    return FilterOutput(table, ranked, dropped, shortlist, recluster, selected, principles)
