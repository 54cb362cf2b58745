"""Preference reconstruction: requests, both-order judging, metrics and baselines."""

from __future__ import annotations

import json

import pytest

from gcai.core.evaluate import (
    NO_CONSTITUTION,
    EvalConfig,
    EvalMetrics,
    EvalResult,
    PairJudgement,
    baseline_constitutions,
    build_analysis_requests,
    build_judge_requests,
    compare_judgements,
    compute_metrics,
    evaluate,
    judge_pairs,
    orthogonal_constitution,
    principle_texts,
)
from gcai.core.llm.base import LLMCancelled, LLMTransportError
from gcai.core.types import Constitution, Pair, Preference, Principle
from tests.core.eval_fakes import (
    ALIGNED_RULES,
    MIXED_GROUND_TRUTH,
    ORTHOGONAL_RULES,
    ScriptedChatModel,
    as_responder,
    contains,
    failing_every,
    load_icai_synthetic,
    position_biased_judge,
    read_request,
    rule_judge,
)

PLEASE = "Select the response that says please."
RUDE = "Hand it over now."
POLITE = "Could you please hand it over?"


def polite_pairs(n: int = 40) -> list[Pair]:
    """Humans always prefer the polite response; it sits on side a in half the pairs."""
    pairs = []
    for i in range(n):
        polite_first = i % 2 == 0
        pairs.append(
            Pair(
                id=f"p{i}",
                prompt=f"Ask for item {i}.",
                response_a=f"{POLITE} ({i})" if polite_first else f"{RUDE} ({i})",
                response_b=f"{RUDE} ({i})" if polite_first else f"{POLITE} ({i})",
                preferred=Preference.A if polite_first else Preference.B,
            )
        )
    return pairs


def planted_rule_model() -> ScriptedChatModel:
    return ScriptedChatModel(rule_judge({PLEASE: contains("please")}))


# --------------------------------------------------------------------------- requests


def test_every_pair_is_requested_in_both_orders():
    pair = polite_pairs(1)[0]
    original, swapped = build_judge_requests([PLEASE], [pair])

    seen, seen_swapped = (
        read_request([(m.role, m.content) for m in r.messages]) for r in (original, swapped)
    )
    assert (seen.response_a, seen.response_b) == (pair.response_a, pair.response_b)
    assert (seen_swapped.response_a, seen_swapped.response_b) == (pair.response_b, pair.response_a)
    assert seen.principles == [PLEASE]
    assert original.schema == swapped.schema
    # A forced choice by default, as published; "none" only when abstaining is allowed.
    assert original.schema["properties"]["choice"]["enum"] == ["A", "B"]
    (abstaining, _) = build_judge_requests([PLEASE], [pair], EvalConfig(allow_abstain=True))
    assert abstaining.schema["properties"]["choice"]["enum"] == ["A", "B", "none"]


def test_requests_are_deterministic_and_independent_of_batching():
    pairs = polite_pairs(4)
    config = EvalConfig(seed=11)
    together = build_judge_requests([PLEASE], pairs, config)
    again = build_judge_requests([PLEASE], pairs, config)
    alone = build_judge_requests([PLEASE], pairs[2:3], config)

    assert together == again
    assert together[4:6] == alone
    assert {r.seed for r in together} == {11}
    assert {r.temperature for r in together} == {0.0}


def test_baseline_prompt_has_no_constitution_and_abstains_only_when_allowed():
    pair = polite_pairs(1)[0]
    with_abstain = build_judge_requests(NO_CONSTITUTION, [pair], EvalConfig(allow_abstain=True))[0]
    without = build_judge_requests(NO_CONSTITUTION, [pair])[0]

    text = "\n".join(m.content for m in with_abstain.messages)
    assert "<constitution>" not in text
    assert "better" in text
    assert with_abstain.schema["properties"]["choice"]["enum"] == ["A", "B", "none"]
    assert without.schema["properties"]["choice"]["enum"] == ["A", "B"]
    assert '"none"' not in "\n".join(m.content for m in without.messages)
    assert build_analysis_requests(NO_CONSTITUTION, [pair]) == []


def test_constitution_is_shown_numbered_and_accepted_in_any_form():
    constitution = Constitution([Principle("First rule."), Principle("Second rule.")])
    assert principle_texts(constitution) == ["First rule.", "Second rule."]
    assert principle_texts(constitution.as_text()) == ["First rule.", "Second rule."]
    assert principle_texts(["First rule."]) == ["First rule."]
    assert principle_texts(None) is None
    request = build_judge_requests(constitution, polite_pairs(1))[0]
    assert "1. First rule.\n2. Second rule." in request.messages[0].content


def test_orthogonal_baseline_loads_the_editable_default_list():
    default = orthogonal_constitution()
    assert 6 <= len(default.principles) <= 10
    assert all(p.text.startswith("Select the response") for p in default.principles)
    # Length-neutral: one fixed place in a response, never a count that grows with length.
    assert "Select the response whose first word begins with a vowel." in principle_texts(default)
    assert not any("more often" in t or "more words" in t for t in principle_texts(default))

    edited = orthogonal_constitution("# mine\nSelect the longer response.\n\n")
    assert principle_texts(edited) == ["Select the longer response."]
    assert set(baseline_constitutions()) == {"no_constitution", "orthogonal"}
    assert baseline_constitutions()["no_constitution"] is None


# --------------------------------------------------------------------------- scripted judges


def test_judge_following_the_planted_rule_scores_near_perfect():
    model = planted_rule_model()
    result = evaluate(model, [PLEASE], polite_pairs(40))
    m = result.metrics

    assert m.n_scored == 40
    assert m.accuracy.value >= 0.95
    assert m.accuracy.lo > 0.85
    assert m.coverage.value == 1.0
    assert m.accuracy_covered.value == 1.0
    assert m.order_disagreement.value == 0.0
    assert m.kappa.value == pytest.approx(1.0)
    assert m.confusion == {
        "a": {"a": 20, "b": 0, "abstain": 0, "inconsistent": 0},
        "b": {"a": 0, "b": 20, "abstain": 0, "inconsistent": 0},
    }
    # Two judge requests and two analysis requests per pair.
    assert len(model.requests) == 4 * 40
    (principle,) = m.principles
    assert (principle.text, principle.relevance.value, principle.accuracy.value) == (
        PLEASE,
        1.0,
        1.0,
    )
    assert principle.decisive.value == 1.0


def test_position_biased_judge_is_at_chance_and_disagrees_with_itself_on_every_pair():
    model = ScriptedChatModel(position_biased_judge)
    m = evaluate(model, [PLEASE], polite_pairs(40)).metrics

    # Always "A": right in one order and wrong in the other on every pair. Judged in
    # one order only it would look 50% accurate and perfectly decisive.
    assert m.order_disagreement.value == 1.0
    assert m.order_flip.value == 1.0
    assert m.accuracy_per_order.value == pytest.approx(0.5)
    assert m.kappa.value == pytest.approx(0.0)
    assert m.kappa.lo < 0 < m.kappa.hi
    assert m.accuracy.value == 0.0  # never the same answer in both orders
    assert m.confusion["a"]["inconsistent"] == m.confusion["b"]["inconsistent"] == 20
    # Its claims about principle 1 flip with the order too, so they never count as right.
    assert m.principles[0].accuracy.value == 0.0


def test_baselines_run_through_the_same_judge_and_pairs():
    pairs = polite_pairs(20)
    model = ScriptedChatModel(rule_judge({PLEASE: contains("please")}))
    targets = {"planted": [PLEASE], **baseline_constitutions()}
    results = {name: evaluate(model, c, pairs).metrics for name, c in targets.items()}

    assert results["planted"].accuracy_per_order.value == 1.0
    assert results["planted"].accuracy.value == 1.0
    # The judge knows no rule for irrelevant principles and no taste of its own here:
    # forced to choose, it says "A" in both orders, which is exactly chance.
    for name in ("orthogonal", "no_constitution"):
        assert results[name].accuracy_per_order.value == 0.5
        assert results[name].accuracy.value == 0.0
        assert results[name].kappa.value == pytest.approx(0.0)
    # Allowed to abstain, it abstains, which is chance once an abstention counts half.
    abstaining = EvalConfig(allow_abstain=True)
    for name in ("orthogonal", "no_constitution"):
        m = evaluate(model, targets[name], pairs, abstaining).metrics
        assert m.coverage.value == 0.0
        assert m.accuracy.value == 0.0
        assert m.accuracy_abstain_half.value == 0.5
        assert m.accuracy_per_order.value == 0.5
    assert all(p.relevance.value == 0.0 for p in results["orthogonal"].principles)
    assert results["no_constitution"].principles == []


def test_ground_truth_constitution_reconstructs_icai_synthetic_preferences():
    pairs = load_icai_synthetic("synthetic_data_mixed_vqvtb_adcbg.csv")
    model = ScriptedChatModel(rule_judge({**ALIGNED_RULES, **ORTHOGONAL_RULES}))

    truth = evaluate(model, MIXED_GROUND_TRUTH, pairs).metrics
    orthogonal = evaluate(model, orthogonal_constitution(), pairs).metrics

    assert truth.n_scored == 60
    assert truth.accuracy.value == 1.0
    assert orthogonal.accuracy.value == 0.0
    assert truth.accuracy.lo > orthogonal.accuracy.hi
    # Each planted principle explains its own ten pairs, and only those.
    for row in truth.principles:
        assert (row.n_applied, row.n_correct, row.n_decisive) == (10, 10, 10)


def test_abstaining_in_one_order_only_is_an_order_inconsistency():
    def answer(view):
        if view.kind == "principles":
            return {"applicable": [], "decisive": 0}
        return {"choice": "A" if "please" in view.response_a else "none"}

    config = EvalConfig(allow_abstain=True)
    judgements = judge_pairs(ScriptedChatModel(answer), [PLEASE], polite_pairs(2), config)
    assert [(j.original, j.swapped, j.final) for j in judgements] == [
        ("a", "abstain", "inconsistent"),
        ("abstain", "b", "inconsistent"),
    ]
    assert judgements[0].principle_votes == {}


# --------------------------------------------------------------------------- failures


def test_failed_and_malformed_answers_are_recorded_and_never_raise():
    pairs = polite_pairs(12)
    model = ScriptedChatModel(failing_every(5, rule_judge({PLEASE: contains("please")})))
    result = evaluate(model, [PLEASE], pairs, EvalConfig(principle_analysis=False))

    errored = [j for j in result.judgements if j.final == "error"]
    assert errored
    assert all(j.errors and "LLMOutputError" in j.errors[0] for j in errored)
    m = result.metrics
    assert m.n_errors == len(errored)
    assert m.n_scored == 12 - len(errored)
    assert m.accuracy.value == 1.0  # failures are reported, not scored as the judge's mistakes


def test_a_client_that_raises_loses_the_batch_not_the_evaluation():
    class Down:
        name = "down"

        def complete_many(self, requests):
            raise LLMTransportError("connection refused")

    judgements = judge_pairs(Down(), [PLEASE], polite_pairs(3))
    assert [j.final for j in judgements] == ["error"] * 3
    assert "connection refused" in judgements[0].errors[0]


def test_cancellation_stops_the_evaluation():
    model = ScriptedChatModel(lambda view: LLMCancelled("run cancelled"))
    with pytest.raises(LLMCancelled):
        judge_pairs(model, [PLEASE], polite_pairs(5), EvalConfig(batch_size=2))
    assert len(model.requests) == 8  # the first batch only


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"choice": "B"}', "b"),
        ('Sure! {"choice": "b"}', "b"),
        ("A", "a"),
        ("Response B", "b"),
        ('{"choice": "neither"}', "abstain"),
        ('{"verdict": "A"}', None),
        ("I cannot decide between them, both are fine.", None),
        ("", None),
    ],
)
def test_text_only_answers_are_parsed_tolerantly(text, expected):
    model = ScriptedChatModel(lambda view: text, parse=False)
    config = EvalConfig(principle_analysis=False, allow_abstain=True)
    (judgement,) = judge_pairs(model, [PLEASE], polite_pairs(1), config)
    assert judgement.original == expected
    if expected is None:
        assert judgement.final == "error"
        assert judgement.errors


def test_abstaining_when_not_allowed_is_an_error():
    model = ScriptedChatModel(lambda view: {"choice": "none"})
    (judgement,) = judge_pairs(
        model, NO_CONSTITUTION, polite_pairs(1), EvalConfig(allow_abstain=False)
    )
    assert judgement.final == "error"
    assert "not allowed" in judgement.errors[0]


def test_invented_principle_numbers_are_ignored():
    def answer(view):
        if view.kind == "principles":
            return {
                "applicable": [{"principle": 7, "favours": "A"}, {"principle": 1, "favours": "A"}],
                "decisive": 7,
            }
        return {"choice": "A"}

    (judgement,) = judge_pairs(ScriptedChatModel(answer), [PLEASE], polite_pairs(1))
    # Principle 1 favoured "A" in both orders, i.e. different responses: inconsistent.
    assert judgement.principle_votes == {1: "inconsistent"}
    assert judgement.decisive == []


# --------------------------------------------------------------------------- metrics


def _judgement(pair_id, human, original, swapped):
    final = original if original == swapped else "inconsistent"
    return PairJudgement(pair_id, human, original, swapped, final)


def test_metrics_from_hand_made_judgements():
    judgements = [
        _judgement("1", "a", "a", "a"),  # right
        _judgement("2", "a", "a", "a"),  # right
        _judgement("3", "b", "b", "b"),  # right
        _judgement("4", "b", "a", "a"),  # wrong
        _judgement("5", "a", "abstain", "abstain"),  # abstained
        _judgement("6", "b", "a", "b"),  # order flip
        _judgement("7", "tie", "a", "a"),  # tie: not scored
        _judgement("8", "none", "a", "a"),  # unlabelled: not scored
        PairJudgement("9", "a", None, "a", "error", ["original: LLMTransportError: down"]),
    ]
    m = compute_metrics(judgements)

    assert (m.n_pairs, m.n_scored, m.n_ties, m.n_unlabelled, m.n_errors) == (9, 6, 1, 1, 1)
    assert m.accuracy.value == pytest.approx(3 / 6)
    assert m.accuracy_abstain_half.value == pytest.approx(3.5 / 6)
    # Per order: 1, 1, 1, 0, 0.5, 0.5 (one of two orders right).
    assert m.accuracy_per_order.value == pytest.approx(4 / 6)
    assert m.kappa.value == pytest.approx((4 / 6 - 0.5) / 0.5)
    assert m.coverage.value == pytest.approx(5 / 6)
    assert m.accuracy_covered.value == pytest.approx(3 / 5)
    assert m.order_disagreement.value == pytest.approx(1 / 6)
    assert m.order_flip.value == pytest.approx(1 / 6)
    assert m.confusion == {
        "a": {"a": 2, "b": 0, "abstain": 1, "inconsistent": 0},
        "b": {"a": 1, "b": 1, "abstain": 0, "inconsistent": 1},
    }
    assert m.tie_outcomes == {"a": 1, "b": 0, "abstain": 0, "inconsistent": 0}
    for estimate in (m.accuracy, m.accuracy_abstain_half, m.coverage, m.kappa):
        assert estimate.lo <= estimate.value <= estimate.hi


def test_paired_comparison_of_two_evaluations_on_the_same_pairs():
    pairs = polite_pairs(30)
    planted = evaluate(planted_rule_model(), [PLEASE], pairs).judgements
    biased = evaluate(ScriptedChatModel(position_biased_judge), [PLEASE], pairs).judgements
    # Make the planted judge wrong on a few pairs so the differences vary.
    for j in planted[:6]:
        j.original = j.swapped = j.final = "b" if j.human == "a" else "a"

    strict = compare_judgements(planted, biased, score="strict", seed=5)
    per_order = compare_judgements(planted, biased, seed=5)  # the headline by default

    assert strict.n == 30
    assert strict.value == pytest.approx(24 / 30)
    assert strict.lo < strict.value < strict.hi <= 1.0
    assert strict.lo > 0.5
    assert per_order.value == pytest.approx((24 * 1.0 + 6 * 0.0) / 30 - 0.5)
    assert compare_judgements(planted, biased, score="strict", seed=5) == strict  # seeded
    # Only pairs scored in both evaluations are compared.
    assert compare_judgements(planted[:10], biased, seed=5).n == 10
    with pytest.raises(ValueError, match="appears twice"):
        compare_judgements(planted + planted[:1], biased)


def test_labels_override_the_recorded_human_preference():
    judgements = [_judgement("1", "a", "b", "b"), _judgement("2", "none", "a", "a")]
    m = compute_metrics(judgements, {"1": Preference.B, "2": "a"})
    assert (m.n_scored, m.accuracy.value) == (2, 1.0)


def test_no_scored_pairs_gives_undefined_values_not_nan():
    m = compute_metrics([_judgement("1", "tie", "a", "a")])
    assert m.n_scored == 0
    assert m.accuracy.value is None
    assert (m.accuracy.lo, m.accuracy.hi) == (0.0, 1.0)
    json.dumps(m.to_dict(), allow_nan=False)


def test_evaluation_round_trips_through_json():
    result = evaluate(planted_rule_model(), [PLEASE], polite_pairs(6), EvalConfig(seed=3))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))

    again = EvalResult.from_dict(data)
    assert again.metrics == result.metrics
    assert again.judgements == result.judgements
    assert again.config == result.config
    assert EvalMetrics.from_dict(data["metrics"]).to_dict() == data["metrics"]
    assert data["usage"]["calls"] == 4 * 6
    assert data["judgements"][0]["principle_votes"] == {"1": "a"}


def test_progress_is_reported_per_batch():
    calls = []
    judge_pairs(
        planted_rule_model(),
        [PLEASE],
        polite_pairs(7),
        EvalConfig(batch_size=3),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(3, 7), (6, 7), (7, 7)]


# --------------------------------------------------------------------------- real client


def test_judges_scripted_behind_the_fake_openai_server():
    from gcai.core.llm.openai_client import OpenAIChatModel
    from tests.fakes import FakeOpenAIServer

    pairs = polite_pairs(10)
    with FakeOpenAIServer(responder=as_responder(rule_judge({PLEASE: contains("please")}))) as s:
        model = OpenAIChatModel(model="judge", base_url=s.base_url, api_key="test", max_retries=0)
        planted = evaluate(model, [PLEASE], pairs).metrics
        s.responder = as_responder(position_biased_judge)
        biased = evaluate(model, [PLEASE], pairs, EvalConfig(seed=1)).metrics
        calls = s.chat_calls

    assert planted.accuracy.value == 1.0
    assert planted.order_disagreement.value == 0.0
    assert biased.order_disagreement.value == 1.0
    assert biased.accuracy_per_order.value == pytest.approx(0.5)
    assert calls == 2 * 4 * 10
