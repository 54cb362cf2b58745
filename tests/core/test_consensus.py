"""Agreement and group-informed consensus, checked against hand-computed values."""

from __future__ import annotations

import pytest

from gcai.core.consensus import (
    Ballot,
    VoteCounts,
    agreement_order_key,
    consensus,
    consensus_order_key,
    group_informed_consensus,
    tally,
)


def ballots(prefix: str, agree: int, disagree: int, passed: int = 0) -> list[Ballot]:
    votes = ["agree"] * agree + ["disagree"] * disagree + ["pass"] * passed
    return [Ballot(voter=f"{prefix}{i}", vote=v) for i, v in enumerate(votes)]


def groups_of(*named: tuple[str, list[Ballot]]) -> dict[str, str]:
    return {b.voter: name for name, members in named for b in members}


def test_tally_counts_and_refuses_unknown_votes():
    assert tally(["agree", "pass", "agree", "disagree"]) == VoteCounts(2, 1, 1)
    with pytest.raises(ValueError, match="unknown vote 'maybe'"):
        tally(["agree", "maybe"])


def test_agreement_ignores_passes_and_has_a_wilson_interval():
    counts = VoteCounts(agree=8, disagree=2, passed=5)
    assert counts.agreement == pytest.approx(0.8)
    lo, hi = counts.interval()
    # Wilson 95% for 8/10, by hand: centre (0.8 + 1.92/10) / 1.384, half-width below.
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    assert VoteCounts(passed=3).agreement is None
    assert VoteCounts(passed=3).interval() is None


def test_group_informed_consensus_is_the_product_of_smoothed_shares():
    # (3+1)/(3+1+2) = 2/3 and (1+1)/(1+2+2) = 2/5: product 4/15.
    assert group_informed_consensus([VoteCounts(3, 1), VoteCounts(1, 2)]) == pytest.approx(4 / 15)
    # Passes change nothing: (0+1)/(0+0+2) = 1/2 for a group that only passed.
    assert group_informed_consensus([VoteCounts(0, 0, 7), VoteCounts(4, 0)]) == pytest.approx(
        0.5 * 5 / 6
    )
    assert group_informed_consensus([]) == 1.0


def test_consensus_over_groups_meeting_the_minimum():
    a = ballots("a", agree=4, disagree=1)  # (4+1)/(5+2) = 5/7
    b = ballots("b", agree=3, disagree=2, passed=1)  # (3+1)/(5+2) = 4/7
    result = consensus(a + b, group_of=groups_of(("A", a), ("B", b)), minimum=5)
    assert result.value == pytest.approx(20 / 49)
    assert result.overall == VoteCounts(7, 3, 1)
    assert result.agreement == pytest.approx(0.7)
    assert result.voters == 11
    assert [(g.name, g.counts, g.voters) for g in result.groups] == [
        ("A", VoteCounts(4, 1), 5),
        ("B", VoteCounts(3, 2, 1), 6),
    ]
    assert result.groups_left_out == 0


def test_small_groups_are_left_out_and_not_named():
    a = ballots("a", agree=5, disagree=0)  # 6/7
    b = ballots("b", agree=0, disagree=5)  # 1/7
    c = ballots("c", agree=0, disagree=2)  # two voters only: left out
    result = consensus(a + b + c, group_of=groups_of(("A", a), ("B", b), ("C", c)), minimum=5)
    assert result.value == pytest.approx(6 / 49)
    assert result.groups_left_out == 1
    # Left-out voters still count in the overall numbers (not by group).
    assert result.overall == VoteCounts(5, 7)
    # Two voters outside the shown groups: overall minus A and B would give their votes,
    # so the per-group tallies are withheld (the consensus value stays).
    assert result.groups == ()
    assert result.groups_withheld
    # With five voters outside the shown groups the difference hides each of them.
    d = ballots("d", agree=1, disagree=2)
    more = consensus(
        a + b + c + d, group_of=groups_of(("A", a), ("B", b), ("C", c), ("D", d)), minimum=5
    )
    assert [g.name for g in more.groups] == ["A", "B"]
    assert not more.groups_withheld
    assert more.groups_left_out == 2


def test_minimum_counts_distinct_voters_not_ballots():
    # One person rating five statements of the same principle is still one voter.
    same = [Ballot("x", "agree") for _ in range(5)]
    other = ballots("o", agree=5, disagree=0)
    result = consensus(same + other, group_of={"x": "X", **groups_of(("O", other))}, minimum=2)
    assert result.groups_left_out == 1
    assert result.value is None  # one group is not a consensus across groups
    # The one voter outside group O would be revealed by the difference: withheld.
    assert result.groups == ()
    assert result.groups_withheld


def test_voters_without_a_group_count_only_overall():
    a = ballots("a", agree=2, disagree=0)
    b = ballots("b", agree=0, disagree=2)
    stray = ballots("s", agree=3, disagree=0)
    result = consensus(a + b + stray, group_of=groups_of(("A", a), ("B", b)), minimum=2)
    assert result.value == pytest.approx((3 / 4) * (1 / 4))
    assert result.overall == VoteCounts(5, 2)


def test_no_votes_no_numbers():
    result = consensus([], group_of={}, minimum=5)
    assert result.value is None
    assert result.agreement is None
    assert result.groups == ()


def test_minimum_must_be_positive():
    with pytest.raises(ValueError, match="minimum"):
        consensus([], group_of={}, minimum=0)


def test_order_keys_put_consensus_first_and_unknowns_last():
    def make(a_agree, b_agree):
        a = ballots("a", agree=a_agree, disagree=2 - a_agree)
        b = ballots("b", agree=b_agree, disagree=2 - b_agree)
        return consensus(a + b, group_of=groups_of(("A", a), ("B", b)), minimum=2)

    bridging = make(2, 2)  # both groups agree
    divisive = make(2, 0)  # one group agrees, the other does not
    unknown = consensus(ballots("z", 2, 0), group_of={}, minimum=2)
    rows = [(divisive, 1), (unknown, 2), (bridging, 3)]
    ranked = sorted(rows, key=lambda r: consensus_order_key(*r))
    assert [pos for _, pos in ranked] == [3, 1, 2]
    # By plain agreement the ungrouped 2/2 ties the bridging 4/4; position breaks it.
    ranked = sorted(rows, key=lambda r: agreement_order_key(*r))
    assert [pos for _, pos in ranked] == [2, 3, 1]
