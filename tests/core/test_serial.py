"""The stored JSON form of the core dataclasses (gcai.core.serial)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import pytest

from gcai.core.cluster import Evidence, Proposal, Proposals
from gcai.core.evaluate import EvalResult
from gcai.core.icai import IcaiConfig
from gcai.core.judging import PairJudgement
from gcai.core.serial import dump, load
from gcai.core.stats import Estimate
from gcai.core.types import Origin, Preference, Principle
from gcai.core.voting import PairVotes, VoteRow, VoteTable

# A vote table and an evaluation as the hand-written serialisers stored them.
STORED_TABLE = {
    "rows": [
        {
            "candidate_id": "c0",
            "for": 3,
            "against": 1,
            "abstain": 0,
            "invalid": 0,
            "voted_pairs": 4,
            "relevance": 1.0,
            "accuracy": 0.75,
        }
    ],
    "votes": {"c0": {"p1": "for", "p2": "for", "p3": "for", "p4": "against"}},
    "n_pairs": 4,
}
STORED_EVALUATION = {
    "config": {
        "allow_abstain": False,
        "seed": 0,
        "prompt_version": "v1",
        "temperature": 0.0,
        "principle_analysis": False,
        "batch_size": 64,
        "confidence": 0.95,
    },
    "principles": ["Select the response that is honest."],
    "metrics": {
        "n_pairs": 1,
        "n_scored": 1,
        "n_ties": 0,
        "n_unlabelled": 0,
        "n_errors": 0,
        **{
            name: {
                "value": 1.0,
                "lo": 0.2065,
                "hi": 1.0,
                "n": 1,
                "k": 1,
                "method": "wilson",
                "confidence": 0.95,
            }
            for name in (
                "accuracy",
                "accuracy_abstain_half",
                "accuracy_per_order",
                "coverage",
                "accuracy_covered",
                "order_disagreement",
                "order_flip",
                "kappa",
            )
        },
        "confusion": {"a": {"a": 1, "b": 0, "abstain": 0, "inconsistent": 0}},
        "tie_outcomes": {},
        "principles": [],
        "confidence": 0.95,
    },
    "judgements": [
        {
            "pair_id": "p1",
            "human": "a",
            "original": "a",
            "swapped": "a",
            "final": "a",
            "errors": [],
            "principle_votes": {"1": "a"},
            "decisive": [1],
            "analysis_errors": [],
        }
    ],
    "usage": {"calls": 2, "cached_calls": 0, "cost_usd": 0.25},
}


def test_stored_results_load_and_dump_to_the_same_json():
    for cls, stored in ((VoteTable, STORED_TABLE), (EvalResult, STORED_EVALUATION)):
        again = load(cls, stored).to_dict()
        # Same JSON text: keys, values, and ints that stay ints (counts, k).
        assert json.dumps(again, sort_keys=True) == json.dumps(stored, sort_keys=True)


def test_renamed_and_computed_keys_apply_where_the_class_is_nested():
    table = VoteTable.from_dict(STORED_TABLE)
    assert table.rows[0] == VoteRow("c0", for_=3, against=1)
    row = table.to_dict()["rows"][0]
    assert "for_" not in row
    assert (row["for"], row["accuracy"], row["voted_pairs"]) == (3, 0.75, 4)
    # Computed keys are for readers of the JSON; loading ignores them.
    stored = Proposals([Proposal("s1", principles=["x"])]).to_dict()
    assert stored["counts"] == {"inputs": 1, "principles": 1, "ok": 1}
    assert Proposals.from_dict(stored) == Proposals([Proposal("s1", principles=["x"])])


def test_missing_keys_take_defaults_and_unknown_keys_are_ignored():
    proposal = Proposal.from_dict({"source_id": "s1", "added_later": True})
    assert proposal == Proposal("s1", Evidence(), [], "ok", "")
    assert VoteRow.from_dict({"candidate_id": "c1"}).for_ == 0


def test_enums_travel_as_values_and_int_keys_as_strings():
    votes = PairVotes.from_dict({"pair_id": "p", "label": "tie", "answers": {"c0": "both"}})
    assert votes.label is Preference.TIE
    assert votes.to_dict()["label"] == "tie"
    principle = Principle("Select the response that is kind.", Origin.GENERAL)
    assert principle.to_dict()["origin"] == "general"
    assert Principle.from_dict({"text": "t"}).origin is Origin.ICAI
    judgement = PairJudgement.from_dict(STORED_EVALUATION["judgements"][0])
    assert judgement.principle_votes == {1: "a"}
    assert judgement.to_dict()["principle_votes"] == {"1": "a"}


def test_loading_runs_post_init_like_the_constructor():
    evidence = Evidence.from_dict({"pair_ids": ["b", "a", "b", ""]})
    assert evidence.pair_ids == ["a", "b"]
    proposals = Proposals.from_dict({"items": [{"source_id": "z"}, {"source_id": "a"}]})
    assert [p.source_id for p in proposals.items] == ["a", "z"]


def test_tuples_are_stored_as_lists_and_come_back_as_tuples():
    @dataclass(frozen=True)
    class Span:
        bounds: tuple[int, int]

    assert dump(Span((1, 2))) == {"bounds": [1, 2]}
    assert load(Span, {"bounds": [1, 2]}) == Span((1, 2))


def test_dumping_every_field_type_raises_no_serializer_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Estimate(0.5, 0.1, 0.9, 4, 2).to_dict()
        load(EvalResult, STORED_EVALUATION).to_dict()
        IcaiConfig(method="icai_improved_2").to_dict()


def test_settings_still_reject_unknown_keys_by_name():
    with pytest.raises(ValueError, match="num_clusterz: unknown ICAI setting"):
        IcaiConfig.from_dict({"num_clusterz": 3})
