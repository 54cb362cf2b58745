"""Steering report: win rate, Wilson interval, ties, length control; critique rows."""

from __future__ import annotations

import pytest

from gcai.core.llm.base import ChatResult
from gcai.core.steering import (
    GenerationSettings,
    PromptOutcome,
    comparison_report,
    critique_revise,
    length_controlled_win_rate,
    sampled_principle,
)


def _outcomes(wins: int, ties: int, *, win_len: int, tie_len: int = 0):
    rows = [PromptOutcome(i, 100 + win_len, 100, ("x", "x")) for i in range(wins)]
    rows += [PromptOutcome(wins + i, 100 + tie_len, 100, ("tie", "tie")) for i in range(ties)]
    return rows


def test_win_rate_counts_ties_half_with_a_wilson_interval_over_prompts():
    report = comparison_report("a", "none", _outcomes(16, 4, win_len=0))
    assert report.win_rate["value"] == pytest.approx(0.9)
    assert report.win_rate["n"] == 20
    assert 0.6 < report.win_rate["lo"] < 0.9 < report.win_rate["hi"] <= 1.0
    assert (report.wins, report.ties, report.losses, report.n_judgements) == (32, 8, 0, 40)


def test_length_neutral_effect_is_not_adjusted():
    lc, _slope, note = length_controlled_win_rate(_outcomes(16, 4, win_len=0))
    assert lc == pytest.approx(0.9, abs=1e-4)
    assert "no length difference" in note


def test_wins_that_coincide_with_longer_answers_are_adjusted_towards_a_tie():
    outcomes = _outcomes(16, 4, win_len=400)
    raw = comparison_report("a", "none", outcomes)
    assert raw.win_rate["value"] == pytest.approx(0.9)
    assert raw.lc_win_rate < 0.6
    assert raw.lc_slope > 0
    assert raw.median_length_diff == 400


def test_judgements_all_one_way_are_reported_unadjusted():
    lc, _slope, note = length_controlled_win_rate(_outcomes(5, 0, win_len=50))
    assert lc == 1.0
    assert "one way" in note


def test_failed_verdicts_are_counted_not_scored():
    outcomes = [PromptOutcome(0, 10, 10, ("x", None)), PromptOutcome(1, 10, 10, (None, None))]
    report = comparison_report("a", "none", outcomes)
    assert report.n_prompts == 1
    assert report.failed == 3
    assert report.win_rate["value"] == 1.0


class _Echo:
    name = "echo"

    def complete_many(self, requests):
        return [ChatResult(text=f"turns={len(r.messages)}") for r in requests]


def test_critique_revision_is_one_conversation_driven_by_a_sampled_principle():
    principles = ["Be kind.", "Be brief.", "Cite sources."]
    out = critique_revise([0, 1], ["p0", "p1"], principles, _Echo(), GenerationSettings(seed=3))
    row = out["rows"][0]
    assert row["principle"] == sampled_principle(principles, 3, 0) in principles
    assert (row["response"], row["critique"], row["revision"]) == ("turns=1", "turns=3", "turns=5")
    assert row["error"] is None
