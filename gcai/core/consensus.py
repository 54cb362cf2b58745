"""Agreement and group-informed consensus from agree / disagree / pass votes.

Polis ranks comments by group-informed consensus (compdemocracy.org/group-informed-
consensus; ``math/src/polismath/math/conversation.clj`` in compdemocracy/polis): the
product over opinion groups g of a Laplace-smoothed share of agreement inside g. A
statement many groups agree with scores high; one that a single group loves and another
rejects scores low, however large the first group. Two deviations, both deliberate:
the groups are the values of a researcher-chosen attribute of the voters (not Polis's
opinion clusters), and the factor is ``(agree_g + 1) / (agree_g + disagree_g + 2)``,
so a pass counts towards neither side (Polis divides by every vote the group cast on
the comment, passes included, so passes pull its score down).

Small groups are personal data: a group with fewer distinct voters than ``minimum`` is
left out of the product entirely (not pooled) and its name and numbers are not returned,
only how many groups were left out. Consensus needs at least ``min_groups`` groups
(default two); with fewer it is None, because a product over one group is just that
group's smoothed agreement.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gcai.core.stats import wilson_interval

AGREE = "agree"
DISAGREE = "disagree"
PASS = "pass"
VOTES = (AGREE, DISAGREE, PASS)


@dataclass(frozen=True)
class Ballot:
    """One vote: who voted (any stable id) and agree / disagree / pass."""

    voter: str
    vote: str


@dataclass(frozen=True)
class VoteCounts:
    agree: int = 0
    disagree: int = 0
    passed: int = 0

    @property
    def decided(self) -> int:
        """Votes that took a side (agree + disagree)."""
        return self.agree + self.disagree

    @property
    def total(self) -> int:
        return self.agree + self.disagree + self.passed

    @property
    def agreement(self) -> float | None:
        """agree / (agree + disagree); None without a decided vote."""
        return self.agree / self.decided if self.decided else None

    def interval(self, confidence: float = 0.95) -> tuple[float, float] | None:
        """Wilson interval of :attr:`agreement`; None without a decided vote."""
        return wilson_interval(self.agree, self.decided, confidence) if self.decided else None

    @property
    def smoothed(self) -> float:
        """(agree + 1) / (agree + disagree + 2): one group's factor in the consensus."""
        return (self.agree + 1) / (self.decided + 2)


def tally(votes: Iterable[str]) -> VoteCounts:
    """Count vote values; anything but agree / disagree / pass is a ValueError."""
    counts = dict.fromkeys(VOTES, 0)
    for vote in votes:
        if vote not in counts:
            raise ValueError(f"unknown vote {vote!r}; expected one of {', '.join(VOTES)}")
        counts[vote] += 1
    return VoteCounts(agree=counts[AGREE], disagree=counts[DISAGREE], passed=counts[PASS])


def group_informed_consensus(groups: Iterable[VoteCounts]) -> float:
    """Product over groups of (agree_g + 1) / (agree_g + disagree_g + 2).

    An empty product is 1.0; callers decide how many groups make a consensus.
    """
    return math.prod(g.smoothed for g in groups)


@dataclass(frozen=True)
class GroupTally:
    """Votes of one group that met the minimum."""

    name: str
    counts: VoteCounts
    voters: int


@dataclass(frozen=True)
class Consensus:
    overall: VoteCounts
    voters: int
    groups: tuple[GroupTally, ...]  # only groups meeting the minimum, by name
    groups_left_out: int  # groups with votes but fewer voters than the minimum
    value: float | None  # group-informed consensus; None with too few groups
    # Per-group tallies withheld: the voters outside the shown groups are more than none
    # but fewer than the minimum, so overall minus the shown groups would reveal them.
    groups_withheld: bool = False

    @property
    def agreement(self) -> float | None:
        return self.overall.agreement


def consensus(
    ballots: Iterable[Ballot],
    *,
    group_of: Mapping[str, str],
    minimum: int,
    min_groups: int = 2,
) -> Consensus:
    """Overall agreement of ``ballots`` and their group-informed consensus.

    ``group_of`` maps a voter to their group; voters without one count in the overall
    numbers only. A voter's ballots all count (one person may have rated several
    statements behind the same principle), but the minimum is on distinct voters.
    """
    if minimum < 1:
        raise ValueError("minimum must be at least 1")
    ballots = list(ballots)
    overall = tally(b.vote for b in ballots)
    by_group: dict[str, list[Ballot]] = defaultdict(list)
    for b in ballots:
        group = group_of.get(b.voter)
        if group is not None:
            by_group[group].append(b)
    kept: list[GroupTally] = []
    left_out = 0
    for name in sorted(by_group):
        members = by_group[name]
        voters = len({b.voter for b in members})
        if voters < minimum:
            left_out += 1
            continue
        kept.append(GroupTally(name=name, counts=tally(b.vote for b in members), voters=voters))
    value = (
        group_informed_consensus(g.counts for g in kept)
        if len(kept) >= max(1, min_groups)
        else None
    )
    voters = len({b.voter for b in ballots})
    rest = voters - sum(g.voters for g in kept)
    withheld = bool(kept) and 0 < rest < minimum
    return Consensus(
        overall=overall,
        voters=voters,
        groups=() if withheld else tuple(kept),
        groups_left_out=left_out,
        value=value,
        groups_withheld=withheld,
    )


def consensus_order_key(result: Consensus, position: int) -> tuple[int, float, float, int]:
    """Sort key, best first: consensus (None last), then agreement, then position."""
    value = result.value
    agreement = result.agreement
    return (
        0 if value is not None else 1,
        -(value if value is not None else 0.0),
        -(agreement if agreement is not None else -1.0),
        position,
    )


def agreement_order_key(result: Consensus, position: int) -> tuple[int, float, int]:
    """Sort key, best first: overall agreement (None last), then position."""
    agreement = result.agreement
    return (0 if agreement is not None else 1, -(agreement or 0.0), position)
