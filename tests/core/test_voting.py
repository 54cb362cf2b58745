"""Testing candidate principles against labelled pairs (gcai.core.voting)."""

from __future__ import annotations

import json

import pytest

from gcai.core.cluster import Candidate, Evidence
from gcai.core.types import Pair, Preference
from gcai.core.voting import (
    VoteConfig,
    VoteOutput,
    aggregate,
    outcome,
    tally,
    vote,
)
from tests.core.scripted import (
    CAT,
    ORTHOGONAL_RULES,
    ScriptedModel,
    judge_model,
    numbered_rules,
    transport_error,
)

CAT_PAIRS = [
    Pair("p1", "A story please", "A cat named Tom napped.", "A dog named Rex ran.", Preference.A),
    Pair("p2", "A story please", "A dog named Rex ran.", "A cat named Tom napped.", Preference.B),
    Pair("p3", "A story please", "A dog ran.", "A dog sat.", Preference.A),
]


def _cand(cid: str, text: str) -> Candidate:
    return Candidate(cid, text, 0, Evidence(pair_ids=["x"]), 1, "centroid")


CANDS = [_cand("c0", CAT.principle), _cand("c1", "Select the response that is in English.")]


@pytest.mark.parametrize(
    ("label", "answer", "expected"),
    [
        (Preference.A, "a", "for"),
        (Preference.A, "b", "against"),
        (Preference.A, "both", "abstain"),
        (Preference.B, "b", "for"),
        (Preference.B, "neither", "abstain"),
        (Preference.TIE, "both", "for"),
        (Preference.TIE, "neither", "abstain"),
        (Preference.TIE, "a", "against"),
        (Preference.BOTH_BAD, "b", "against"),
        (Preference.BOTH_BAD, "neither", "abstain"),
        (Preference.A, "split", "abstain"),
        (Preference.TIE, "invalid", "invalid"),
    ],
)
def test_answers_map_to_outcomes_relative_to_the_label(label, answer, expected):
    assert outcome(label, answer) == expected


def test_aggregation_across_rounds():
    assert aggregate(["a", "a", "b"], "majority") == "a"
    assert aggregate(["a", "b", "both"], "majority") == "split"
    assert aggregate(["a", "a", "b"], "unanimous") == "split"
    assert aggregate(["a", "a", "a"], "unanimous") == "a"
    assert aggregate(["invalid", "invalid", "a"], "majority") == "invalid"
    assert aggregate([], "majority") == "invalid"


def test_a_consistent_judge_gets_votes_in_the_pairs_own_terms_whatever_was_shown():
    model = judge_model(ORTHOGONAL_RULES)
    out = vote(CAT_PAIRS, CANDS, model, VoteConfig(seed=1, seeds=5))
    assert {c.swapped for c in out.calls} == {True, False}  # both orders were shown
    answers = {p.pair_id: p.answers["c0"] for p in out.pairs}
    assert answers == {"p1": "a", "p2": "b", "p3": "neither"}
    table = tally(out, ["c0", "c1"])
    assert table.row("c0").stats() == {
        "for": 2,
        "against": 0,
        "abstain": 1,
        "invalid": 0,
        "voted_pairs": 3,
        "relevance": round(2 / 3, 6),
        "accuracy": 1.0,
    }
    assert table.votes["c0"] == {"p1": "for", "p2": "for", "p3": "abstain"}
    assert table.row("c1").accuracy is None  # never took a side


def test_rounds_show_candidates_in_different_orders_and_swaps_are_recorded():
    model = judge_model(ORTHOGONAL_RULES)
    cands = [_cand(f"c{i}", f"Select the response number {i}.") for i in range(8)]
    out = vote(CAT_PAIRS[:1], cands, model, VoteConfig(seed=0, seeds=3))
    orders = [tuple(c.candidate_ids) for c in out.calls]
    assert len(set(orders)) == 3
    for call, request in zip(out.calls, model.requests, strict=True):
        a_shown = "A cat named Tom" in request.messages[-1].content.split("<response_b>")[0]
        assert call.swapped == (not a_shown)


def test_candidates_are_split_into_even_chunks_of_at_most_the_limit():
    model = judge_model(ORTHOGONAL_RULES)
    cands = [_cand(f"c{i:02d}", f"Select the response number {i}.") for i in range(45)]
    out = vote(CAT_PAIRS[:1], cands, model, VoteConfig(seeds=2, max_candidates_per_call=40))
    assert sorted(len(c.candidate_ids) for c in out.calls) == [22, 22, 23, 23]
    assert all(len(numbered_rules(r)) <= 40 for r in model.requests)
    assert len(out.pairs[0].answers) == 45


def test_ties_and_both_bad_are_counted_not_crashed_on():
    pairs = [
        Pair("t1", "", "A cat sat.", "A cat ran.", Preference.TIE),
        Pair("t2", "", "A cat sat.", "A dog ran.", Preference.TIE),
        Pair("t3", "", "A cat sat.", "A dog ran.", Preference.BOTH_BAD),
        Pair("u1", "", "A cat sat.", "A dog ran.", Preference.NONE),
    ]
    model = judge_model(ORTHOGONAL_RULES)
    out = vote(pairs, CANDS, model, VoteConfig(seeds=1))
    table = tally(out, ["c0"])
    assert table.votes["c0"] == {"t1": "for", "t2": "against", "t3": "against"}
    assert table.n_pairs == 3  # the unlabelled pair is not voted on
    assert all(r.purpose == "vote" for r in model.requests)
    assert len(model.requests) == 3


def test_malformed_answers_become_invalid_votes_and_are_recorded():
    def tamper(request):
        content = request.messages[-1].content
        if "A dog sat." in content:
            return "I think A is better."  # no JSON at all
        return json.dumps({"0": "A", "1": "maybe"})  # one answer unknown

    model = ScriptedModel(lambda r: None, tamper=tamper)
    out = vote(CAT_PAIRS, CANDS, model, VoteConfig(seeds=1))
    unreadable = [c for c in out.calls if c.pair_id == "p3"]
    readable = [c for c in out.calls if c.pair_id != "p3"]
    assert [c.answers for c in unreadable] == [["invalid", "invalid"]]
    for call in readable:
        # The valid answer for the first shown candidate survives, undoing the swap.
        assert call.answers == ["b" if call.swapped else "a", "invalid"]
    assert all(call.error for call in out.calls)
    table = tally(out, ["c0", "c1"])
    assert sum(row.invalid for row in table.rows) == 4
    assert table.n_pairs == 3


def test_a_bare_list_in_rule_order_is_read_positionally():
    model = ScriptedModel(lambda r: None, tamper=lambda r: '["neither", "BOTH"]')
    out = vote(CAT_PAIRS[:1], CANDS, model, VoteConfig(seeds=1))
    (call,) = out.calls
    assert call.answers == ["neither", "both"]
    assert "LLMOutputError" in call.error  # still recorded: the schema was not met


def test_transport_failures_are_invalid_votes_not_exceptions():
    model = ScriptedModel(lambda r: None, tamper=lambda r: transport_error())
    out = vote(CAT_PAIRS, CANDS, model, VoteConfig(seeds=3))
    assert len(out.errors) == len(out.calls) == 9
    table = tally(out, ["c0", "c1"])
    assert table.row("c0").invalid == 3
    assert "LLMTransportError" in out.calls[0].error


def test_results_and_requests_do_not_depend_on_batching():
    whole_model = judge_model(ORTHOGONAL_RULES)
    whole = vote(CAT_PAIRS, CANDS, whole_model, VoteConfig(seed=9))
    parts_model = judge_model(ORTHOGONAL_RULES)
    parts = [
        vote(CAT_PAIRS[2:], CANDS, parts_model, VoteConfig(seed=9)),
        vote(CAT_PAIRS[:2], CANDS, parts_model, VoteConfig(seed=9)),
    ]
    merged = VoteOutput.merge(parts)
    assert merged.to_dict() == whole.to_dict()
    assert sorted(whole_model.keys()) == sorted(parts_model.keys())
    assert VoteOutput.from_dict(merged.to_dict()) == merged


def test_vote_config_names_the_bad_field():
    with pytest.raises(ValueError, match="seeds"):
        VoteConfig(seeds=0)
    with pytest.raises(ValueError, match="aggregation"):
        VoteConfig(aggregation="plurality")
    with pytest.raises(ValueError, match="prompt"):
        VoteConfig(prompt="nope_v9")
    with pytest.raises(ValueError, match="colour"):
        VoteConfig.from_dict({"colour": "red"})
    assert VoteConfig.from_dict(VoteConfig(seeds=5).to_dict()) == VoteConfig(seeds=5)


def test_nothing_to_vote_on_makes_no_calls():
    model = judge_model(ORTHOGONAL_RULES)
    assert vote(CAT_PAIRS, [], model, VoteConfig()).pairs == []
    assert vote([], CANDS, model, VoteConfig()).pairs == []
    assert model.requests == []
