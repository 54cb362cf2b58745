"""GCAI's ranking stages: which principles of each stream make the constitution, in order.

Contextual principles (from preferences with reasons) were voted on the training pairs:
they need support (``for`` on at least ``contextual_min_support`` of the voted pairs)
and for > against, and are ranked by predictive power (accuracy), then relevance.
General principles (from value statements) are ranked by consensus: the number of
distinct participants behind their cluster; one principle per cluster keeps them
diverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gcai.core.cluster import Candidate, RepresentativeOutput
from gcai.core.serial import Stored
from gcai.core.voting import VoteOutput, VoteTable, tally

if TYPE_CHECKING:
    from gcai.core.grounded import GcaiConfig


@dataclass(slots=True)
class Ranked(Stored):
    """A stream's candidate with the statistics it was ranked by."""

    candidate: Candidate
    stats: dict[str, Any]


@dataclass(slots=True)
class StreamRanking(Stored):
    """Output of a rank stage: kept candidates best first, and why the others went."""

    stream: str
    ranked: list[Ranked] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    table: VoteTable | None = None  # contextual stream only


def _evidence_stats(c: Candidate) -> dict[str, Any]:
    return {"candidate_id": c.id, "cluster_size": c.cluster_size, **c.evidence.counts()}


def rank_contextual(
    candidates: RepresentativeOutput, votes: VoteOutput, config: GcaiConfig
) -> StreamRanking:
    """Contextual stage 5: rank by accuracy, then relevance (then cluster order).

    A candidate needs ``for`` on at least ``contextual_min_support`` of the voted pairs
    (support), so a principle right once and never tested again cannot outrank one
    right 900 times out of 1000. With ``drop_contradicted`` (default) it also needs
    for > against: one that never took a side was never tested, one that lost predicts
    worse than chance.
    """
    table = tally(votes, [c.id for c in candidates.candidates])
    rows = {r.candidate_id: r for r in table.rows}
    need = config.contextual_min_support * table.n_pairs
    ranked: list[Ranked] = []
    dropped: dict[str, str] = {}
    for c in candidates.candidates:
        row = rows[c.id]
        if config.drop_contradicted and row.for_ <= row.against:
            dropped[c.id] = f"for {row.for_} <= against {row.against}"
            continue
        if row.for_ < need or (need > 0 and row.for_ == 0):
            dropped[c.id] = f"for {row.for_} < min support {need:g}"
            continue
        ranked.append(Ranked(c, {**row.stats(), **_evidence_stats(c)}))
    ranked.sort(
        key=lambda r: (
            -(r.stats["accuracy"] or 0.0),
            -r.stats["relevance"],
            r.candidate.cluster_id,
        )
    )
    return StreamRanking("contextual", ranked, dropped, table)


def rank_general(candidates: RepresentativeOutput, config: GcaiConfig) -> StreamRanking:
    """General stage 4: rank by support = distinct participants behind the cluster.

    Ties go to the cluster with more statements, then cluster order.
    """
    ranked: list[Ranked] = []
    dropped: dict[str, str] = {}
    for c in candidates.candidates:
        support = len(c.evidence.participants)
        if support < config.min_participants:
            dropped[c.id] = f"support {support} < {config.min_participants} participants"
            continue
        ranked.append(Ranked(c, {"support": support, **_evidence_stats(c)}))
    ranked.sort(
        key=lambda r: (-r.stats["support"], -r.stats["n_statements"], r.candidate.cluster_id)
    )
    return StreamRanking("general", ranked, dropped)
