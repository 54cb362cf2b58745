"""GCAI: contextual and general streams and their merge (gcai.core.grounded)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gcai.core.cluster import Proposals
from gcai.core.grounded import (
    GcaiConfig,
    GcaiResult,
    contextual_generate,
    general_generate,
    merge_streams,
    run_gcai,
)
from gcai.core.types import Judgement, Origin, Pair, Preference, Statement
from tests.core.scripted import (
    ALIGNED_RULES,
    EAGER,
    HONEST,
    KIND,
    SYNTHETIC,
    HashEmbedder,
    ScriptedModel,
    judge_model,
    load_icai_csv,
    output_error,
    user_text,
)

STATEMENT_RULES = (HONEST, KIND)

REASONS = {
    0: "This one is honest about the capital; the other one makes things up.",
    1: "It names an actual destination I could visit.",
    2: "It sounds eager to help me.",
}


@pytest.fixture
def pairs() -> list[Pair]:
    return load_icai_csv(SYNTHETIC / "synthetic_data_aligned_vqvtb.csv")


@pytest.fixture
def judgements(pairs) -> list[Judgement]:
    out = []
    for i, pair in enumerate(pairs):
        reason = REASONS[i // 10]
        if i in (9, 19):
            reason = "   "  # no reason given: nothing to ground a principle in
        out.append(Judgement(f"ann-{i:03d}", pair, pair.preferred, reason, f"annotator-{i % 3}"))
    out.append(
        Judgement("ann-tie", pairs[25], Preference.TIE, "Both are eager to help.", "annotator-9")
    )
    out.append(Judgement("ann-none", pairs[26], Preference.NONE, "Honest?", "annotator-9"))
    return out


STATEMENTS = [
    Statement("s1", "AI must always be honest with people.", "participant-1"),
    Statement("s2", "Honest answers matter most to me.", "participant-2"),
    Statement("s3", "Be honest, please.", "participant-3", question="What should AI value?"),
    Statement("s4", "AI should be kind to animals.", "participant-4"),
    Statement("s5", "I want AI to be eager to help.", "participant-5"),
    Statement("s6", "I like pizza.", "participant-6"),
    Statement("s7", "   ", "participant-7"),
    Statement("s8", "AI should be kind, always.", "participant-1"),
]


def _model(**kwargs) -> ScriptedModel:
    return judge_model(ALIGNED_RULES, statement_rules=STATEMENT_RULES, **kwargs)


def _by_text(result: GcaiResult, text: str):
    return next(p for p in result.constitution.principles if p.text == text)


def test_full_run_grounds_every_principle_in_evidence(judgements, pairs):
    result = run_gcai(judgements, STATEMENTS, pairs, _model(), HashEmbedder(), GcaiConfig(seed=1))
    principles = result.constitution.principles
    assert principles
    for p in principles:
        assert p.origin in (Origin.CONTEXTUAL, Origin.GENERAL, Origin.BOTH)
        assert p.judgement_ids or p.statement_ids
        assert p.participants
    assert [p.stats["rank"] for p in principles] == list(range(1, len(principles) + 1))
    contextual = [p for p in principles if p.origin is Origin.CONTEXTUAL]
    for p in contextual:
        assert p.stats["accuracy"] == 1.0
        assert p.stats["for"] > 0


def test_a_principle_supported_by_both_streams_is_merged_once_with_both_evidence_sets(
    judgements, pairs
):
    model = _model()
    result = run_gcai(judgements, STATEMENTS, pairs, model, HashEmbedder(), GcaiConfig(seed=1))
    honest = [p for p in result.constitution.principles if "honest" in p.text]
    assert len(honest) == 1
    (p,) = honest
    assert p.origin is Origin.BOTH
    assert p.text == HONEST.variants[0]  # the contextual wording, the one voted on
    assert p.statement_ids == ["s1", "s2", "s3"]
    assert p.judgement_ids == [f"ann-{i:03d}" for i in range(9)]
    assert set(p.participants) >= {"participant-1", "participant-2", "participant-3"}
    assert set(p.participants) >= {"annotator-0", "annotator-1", "annotator-2"}
    assert p.stats["support"] == 3
    assert p.stats["for"] == 9
    assert p.stats["general_text"] == HONEST.principle
    merged = [c for c in result.merged.checks if c.merged]
    assert len(merged) == 1
    assert model.count("gcai.merge") == len(result.merged.checks)
    # Eager is in both streams too, but worded too differently to reach the threshold.
    assert {p.origin for p in result.constitution.principles if "eager" in p.text} == {
        Origin.CONTEXTUAL,
        Origin.GENERAL,
    }


def test_the_llm_check_decides_which_similar_pairs_merge(judgements, pairs):
    config = GcaiConfig(seed=1, similarity_threshold=-1.0)  # every cross pair is a candidate
    result = run_gcai(judgements, STATEMENTS, pairs, _model(), HashEmbedder(), config)
    merged = {(c.contextual_id, c.general_id) for c in result.merged.checks if c.merged}
    rejected = [c for c in result.merged.checks if c.same is False]
    assert len(merged) == 2  # honest and eager
    assert rejected
    both = [p for p in result.constitution.principles if p.origin is Origin.BOTH]
    assert sorted("honest" in p.text for p in both) == [False, True]
    # Without the LLM check, only the similarity decides.
    unchecked = dataclasses.replace(config, confirm_duplicates=False, similarity_threshold=0.8)
    model = _model()
    out = run_gcai(judgements, STATEMENTS, pairs, model, HashEmbedder(), unchecked)
    assert model.count("gcai.merge") == 0
    assert [p.origin for p in out.constitution.principles].count(Origin.BOTH) == 1


def test_statements_without_values_yield_no_principles(judgements, pairs):
    model = _model()
    valueless = [STATEMENTS[5], STATEMENTS[6]]
    out = general_generate(valueless, model, GcaiConfig())
    assert [(p.source_id, p.status, p.principles) for p in out.items] == [
        ("s6", "no_values", []),
        ("s7", "no_values", []),
    ]
    assert out.items[0].note == "no value about AI stated"
    assert out.items[1].note == "empty statement"
    assert model.count("gcai.general") == 1  # the empty one is not sent

    result = run_gcai(judgements, valueless, pairs, _model(), HashEmbedder(), GcaiConfig())
    assert result.general_candidates.candidates == []
    assert result.constitution.principles
    assert all(p.origin is Origin.CONTEXTUAL for p in result.constitution.principles)


def test_general_stream_ranks_by_distinct_participants(judgements, pairs):
    result = run_gcai(judgements, STATEMENTS, pairs, _model(), HashEmbedder(), GcaiConfig())
    ranked = result.general_ranking.ranked
    assert [r.stats["support"] for r in ranked] == [3, 2, 1]
    kind = ranked[1]
    assert kind.candidate.text == KIND.principle
    assert kind.candidate.evidence.statement_ids == ["s4", "s8"]
    assert kind.candidate.evidence.participants == ["participant-1", "participant-4"]
    assert _by_text(result, KIND.principle).origin is Origin.GENERAL


def test_contextual_stream_skips_missing_reasons_and_handles_ties(judgements):
    model = _model()
    out = contextual_generate(judgements, model, GcaiConfig())
    by_id = {p.source_id: p for p in out.items}
    assert by_id["ann-009"].status == "skipped"
    assert by_id["ann-009"].note == "no reason given"
    assert by_id["ann-none"].status == "skipped"
    assert by_id["ann-tie"].principles == [EAGER.variants[0]]
    tie_request = next(r for r in model.requests if "Both are eager" in user_text(r))
    assert "equally good" in user_text(tie_request)
    assert "<response_1>" in user_text(tie_request)
    decisive = next(r for r in model.requests if "actual destination" in user_text(r))
    assert "<chosen_response>" in user_text(decisive)
    assert "<reason>\nIt names an actual destination I could visit.\n</reason>" in user_text(
        decisive
    )
    assert model.count("gcai.contextual") == 29
    evidence = by_id["ann-012"].evidence
    assert (evidence.judgement_ids, evidence.pair_ids, evidence.participants) == (
        ["ann-012"],
        ["012"],
        ["annotator-0"],
    )


@pytest.mark.parametrize(
    ("cap", "share", "expected"),
    [
        (2, 0.5, {"contextual": 1, "both": 1}),  # honest (merged) is general's best
        (4, 1.0, {"contextual": 2, "both": 1, "general": 1}),  # general fills the gap
        (2, 0.0, {"both": 1, "general": 1}),
        (3, 0.5, {"contextual": 2, "both": 1}),  # 2 contextual slots (half up), 1 general
    ],
)
def test_caps_and_shares_hold(judgements, pairs, cap, share, expected):
    config = GcaiConfig(max_principles=cap, contextual_share=share)
    result = run_gcai(judgements, STATEMENTS, pairs, _model(), HashEmbedder(), config)
    origins = [str(p.origin) for p in result.constitution.principles]
    assert len(origins) == cap
    assert {o: origins.count(o) for o in set(origins)} == expected
    assert all(why == "beyond the cap" for why in result.merged.dropped.values())


def test_llm_failures_are_recorded_per_item_and_the_run_completes(judgements, pairs):
    def tamper(request):
        text = user_text(request)
        if request.purpose == "gcai.contextual" and "destination" in text:
            return output_error("not json")
        if request.purpose == "gcai.general" and "kind" in text:
            return "{}"
        if request.purpose == "gcai.merge":
            return "maybe?"
        return None

    model = _model(tamper=tamper)
    result = run_gcai(judgements, STATEMENTS, pairs, model, HashEmbedder(), GcaiConfig())
    ctx_errors = result.contextual_proposals.errors
    assert {p.source_id for p in ctx_errors} == {f"ann-{i:03d}" for i in range(10, 19)}
    assert {p.source_id for p in result.general_proposals.errors} == {"s4", "s8"}
    checks = result.merged.checks
    assert checks
    assert all(c.same is None and not c.merged and c.note for c in checks)
    assert result.constitution.principles
    assert all(p.origin is not Origin.BOTH for p in result.constitution.principles)


def test_batches_and_reruns_give_the_same_result(judgements, pairs):
    config = GcaiConfig(seed=3)
    first_model = _model()
    first = run_gcai(judgements, STATEMENTS, pairs, first_model, HashEmbedder(), config)
    second_model = _model()
    second = run_gcai(judgements, STATEMENTS, pairs, second_model, HashEmbedder(), config)
    assert first.to_dict() == second.to_dict()
    assert first_model.keys() == second_model.keys()

    parts = [contextual_generate(judgements[i : i + 5], _model(), config) for i in range(0, 32, 5)]
    assert Proposals.merge(reversed(parts)) == first.contextual_proposals
    stored = json.loads(json.dumps(first.to_dict(), allow_nan=False))
    assert GcaiResult.from_dict(stored).to_dict() == first.to_dict()


def test_merge_with_an_empty_stream_takes_the_other(judgements, pairs):
    result = run_gcai(judgements, STATEMENTS, pairs, _model(), HashEmbedder(), GcaiConfig())
    empty = dataclasses.replace(result.general_ranking, ranked=[])
    out = merge_streams(result.contextual_ranking, empty, None, HashEmbedder(), GcaiConfig())
    assert len(out.principles) == len(result.contextual_ranking.ranked)
    assert out.checks == []


def test_config_validates_and_names_the_field():
    with pytest.raises(ValueError, match="contextual_share"):
        GcaiConfig(contextual_share=2)
    with pytest.raises(ValueError, match="general_representative"):
        GcaiConfig(general_representative="best")
    with pytest.raises(ValueError, match="method"):
        GcaiConfig(method="icai")
    with pytest.raises(ValueError, match="contextual_clusters"):
        GcaiConfig.from_dict({"contextual_clusters": 0})
    with pytest.raises(ValueError, match="clusters_per_stream"):
        GcaiConfig.from_dict({"clusters_per_stream": 5})
    config = GcaiConfig(max_principles=7, contextual_share=0.3)
    assert GcaiConfig.from_dict(config.to_dict()) == config
    assert config.quotas() == (2, 5)
