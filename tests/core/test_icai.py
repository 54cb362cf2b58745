"""ICAI and its improved variants (gcai.core.icai) on ICAI's synthetic data."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from gcai.core.cluster import Proposals, RepresentativeOutput
from gcai.core.icai import (
    IcaiConfig,
    IcaiResult,
    TripletSelection,
    cluster_principles,
    default_num_clusters,
    filter_principles,
    generate,
    generation_units,
    run_icai,
    select_representatives,
    select_triplets,
    vote,
)
from gcai.core.types import Origin, Pair, Preference
from gcai.core.voting import VoteOutput
from tests.core.scripted import (
    ALIGNED_RULES,
    NOISE,
    ORTHOGONAL_RULES,
    SYNTHETIC,
    HashEmbedder,
    Rule,
    ScriptedModel,
    judge_model,
    load_icai_csv,
    transport_error,
    user_text,
)


@pytest.fixture
def orthogonal() -> list[Pair]:
    return load_icai_csv(SYNTHETIC / "synthetic_data_orthogonal_adcbg.csv")


@pytest.fixture
def aligned() -> list[Pair]:
    return load_icai_csv(SYNTHETIC / "synthetic_data_aligned_vqvtb.csv")


def _rule_of(text: str, rules: tuple[Rule, ...]) -> Rule | None:
    return next((r for r in rules if text in (r.principle, *r.variants)), None)


def _expected_votes(rule: Rule, pairs: list[Pair]) -> dict[str, str]:
    """What a consistent judge's votes must be: for where the rule decides, else abstain."""
    out = {}
    for p in pairs:
        decided = rule.decide(p.response_a, p.response_b)
        if decided in ("A", "B"):
            agrees = (decided == "A") == (p.preferred is Preference.A)
            out[p.id] = "for" if agrees else "against"
        else:
            out[p.id] = "abstain"
    return out


# On the aligned data preferred answers are longer, so "longer" is a true (if shallow)
# explanation there; only the orthogonal data makes it a wrong one.
ENGLISH_ONLY = NOISE[1:]


@pytest.mark.parametrize(
    ("method", "dataset", "rules", "noise"),
    [
        ("icai", "orthogonal", ORTHOGONAL_RULES, NOISE),
        ("icai_improved_1", "aligned", ALIGNED_RULES, ENGLISH_ONLY),
        ("icai_improved_2", "orthogonal", ORTHOGONAL_RULES, NOISE),
    ],
)
def test_pipeline_recovers_the_planted_principles_with_exact_votes(
    method, dataset, rules, noise, request
):
    pairs = request.getfixturevalue(dataset)
    model = judge_model(rules, noise=noise)
    result = run_icai(pairs, model, HashEmbedder(), IcaiConfig(method=method, seed=1))

    principles = result.constitution.principles
    recovered = {_rule_of(p.text, rules) for p in principles}
    assert recovered == set(rules)  # every planted rule, and nothing else
    for p in principles:
        rule = _rule_of(p.text, rules)
        assert rule is not None
        expected = _expected_votes(rule, pairs)
        assert result.filtered.table.votes[p.stats["candidate_id"]] == expected
        counts = [list(expected.values()).count(o) for o in ("for", "against", "abstain")]
        assert [p.stats["for"], p.stats["against"], p.stats["abstain"]] == counts
        assert p.stats["against"] == 0
        assert p.stats["accuracy"] == 1.0
        assert p.origin is Origin.ICAI
        # Evidence: the pairs whose generation produced the cluster's members.
        assert p.pair_ids
        assert set(p.pair_ids) <= {x.id for x in pairs}
    # The noise explanations were proposed, voted on and dropped for the right reasons.
    noise_ids = [c.id for c in result.representatives.candidates if c.text in noise]
    assert noise_ids
    assert all(result.filtered.dropped[cid].startswith("for ") for cid in noise_ids)


def test_baseline_uses_the_published_prompt_and_random_representatives(orthogonal):
    model = judge_model(ORTHOGONAL_RULES)
    result = run_icai(orthogonal, model, HashEmbedder(), IcaiConfig())
    gen = [r for r in model.requests if r.purpose == "icai.generate"]
    assert len(gen) == 30
    assert "generalise" not in user_text(gen[0])
    assert "<prompt>\nPlease write a funny short story" in user_text(gen[0])  # prompt apart
    assert "<selected_response>" in user_text(gen[0])
    assert {c.method for c in result.representatives.candidates} == {"random"}


def test_improved_1_asks_for_general_principles_and_takes_centroid_members(orthogonal):
    model = judge_model(ORTHOGONAL_RULES)
    result = run_icai(orthogonal, model, HashEmbedder(), IcaiConfig(method="icai_improved_1"))
    gen = [r for r in model.requests if r.purpose == "icai.generate"]
    assert "generalise beyond this sample" in user_text(gen[0])
    for cand, cluster in zip(
        result.representatives.candidates, result.clusters.clusters, strict=True
    ):
        assert cand.method == "centroid"
        assert cand.text == cluster.members[0].text


def test_improved_2_generates_from_disjoint_triplets_in_joint_prompts(orthogonal):
    model = judge_model(ORTHOGONAL_RULES)
    config = IcaiConfig(method="icai_improved_2", seed=1)
    result = run_icai(orthogonal, model, HashEmbedder(), config)
    assert result.triplets is not None
    triplets = result.triplets.triplets
    assert triplets
    seen: set[str] = set()
    for t in triplets:
        assert len(t.triplet) == 3
        assert set(t.triplet) <= set(t.pair_ids)
        assert not seen.intersection(t.pair_ids)  # selected clusters share no pair
        seen.update(t.pair_ids)
    scores = [c.score for c in result.triplets.clusters]
    assert scores == sorted(scores, reverse=True)
    gen = [r for r in model.requests if r.purpose == "icai.generate"]
    assert len(gen) == len(triplets)  # one joint call per triplet, not one per pair
    assert user_text(gen[0]).count("<selected_response>") == 3
    # A proposal's evidence is its triplet.
    by_source = {p.source_id: p for p in result.proposals.items}
    for t in triplets:
        assert by_source[t.id].evidence.pair_ids == sorted(t.triplet)


def test_triplet_selection_round_trips_through_strict_json(orthogonal):
    config = IcaiConfig(method="icai_improved_2")
    selection = select_triplets(orthogonal, HashEmbedder(), config)
    stored = json.loads(json.dumps(selection.to_dict(), allow_nan=False))
    assert TripletSelection.from_dict(stored) == selection


def test_improved_2_accepts_named_encoders(orthogonal):
    encoders = {"content": HashEmbedder(), "style": HashEmbedder(dim=64, name="style")}
    config = IcaiConfig(method="icai_improved_2", encoders=["content", "style"], max_overlap=1.0)
    selection = select_triplets(orthogonal, encoders, config)
    assert {c.encoder for c in selection.clusters} == {"content", "style"}
    assert {c.encoder for c in selection.triplets} == {"content", "style"}
    with pytest.raises(ValueError, match="encoders"):
        select_triplets(orthogonal, {"content": HashEmbedder()}, config)


def test_ties_are_not_explained_but_are_counted_in_voting(orthogonal):
    pairs = [
        *orthogonal[:12],
        dataclasses.replace(orthogonal[12], id="tie-1", preferred=Preference.TIE),
        dataclasses.replace(orthogonal[13], id="bad-1", preferred=Preference.BOTH_BAD),
    ]
    model = judge_model(ORTHOGONAL_RULES)
    result = run_icai(pairs, model, HashEmbedder(), IcaiConfig(seed=2))
    skipped = {p.source_id: p for p in result.proposals.items if p.status == "skipped"}
    assert set(skipped) == {"tie-1", "bad-1"}
    assert "tie" in skipped["tie-1"].note
    assert model.count("icai.generate") == 12
    assert result.filtered.table.n_pairs == 14
    # The blue-shirt rule separates the responses of both non-decisive pairs: against.
    blue = [c.id for c in result.representatives.candidates if "blue" in c.text]
    assert blue
    for cid in blue:
        assert result.filtered.table.votes[cid]["tie-1"] == "against"
        assert result.filtered.table.votes[cid]["bad-1"] == "against"


def test_malformed_answers_are_recorded_and_the_run_completes(orthogonal):
    judge = judge_model(ORTHOGONAL_RULES).answer

    def tamper(request):
        text = user_text(request)
        if request.purpose == "icai.generate" and "Whiskers" in text:
            return "Sorry, I cannot answer in JSON."
        if request.purpose == "vote" and "<prompt>\nWhich ice cream" in text:
            return '{"0": "A", "1": 7}'  # valid JSON, invalid answers
        if request.purpose == "vote" and "Cheers!" in text:
            return transport_error()
        return None

    model = ScriptedModel(judge, tamper=tamper)
    result = run_icai(orthogonal, model, HashEmbedder(), IcaiConfig(seed=3))
    errors = result.proposals.errors
    assert errors
    assert all(p.principles == [] and p.note for p in errors)
    assert result.votes.errors
    assert any(r.invalid for r in result.filtered.table.rows)
    calls = result.votes.calls
    assert any("LLMTransportError" in c.error for c in calls)
    assert any(
        c.error and "invalid" in c.answers and not all(a == "invalid" for a in c.answers)
        for c in calls
    )
    # The answers that did work still make a constitution.
    assert "blue" in " ".join(p.text for p in result.constitution.principles)


def test_dataset_smaller_than_the_number_of_clusters(orthogonal):
    pairs = orthogonal[:2]
    model = judge_model(ORTHOGONAL_RULES)
    result = run_icai(pairs, model, HashEmbedder(), IcaiConfig(num_clusters=50))
    distinct = {t for p in result.proposals.items for t in p.principles}
    assert len(result.clusters.clusters) == len(distinct)
    assert result.clusters.n_clusters_requested == 50
    assert result.constitution.principles
    assert default_num_clusters(4, 2) == 4
    assert default_num_clusters(600, 100) == 20
    assert default_num_clusters(600, 20) == 10


def test_a_run_with_nothing_to_explain_yields_an_empty_constitution():
    pairs = [Pair("t", "", "x", "y", Preference.TIE)]
    model = judge_model(ORTHOGONAL_RULES)
    result = run_icai(pairs, model, HashEmbedder(), IcaiConfig())
    assert result.constitution.principles == []
    assert model.requests == []


def test_cap_reclusters_the_top_candidates_and_keeps_each_clusters_best(orthogonal):
    model = judge_model(ORTHOGONAL_RULES)
    config = IcaiConfig(max_principles=3, seed=1)
    result = run_icai(orthogonal, model, HashEmbedder(), config)
    out = result.filtered
    assert len(out.principles) == 3
    assert len(out.ranked) > 3
    assert out.shortlist == out.ranked[: math.ceil(1.5 * 3)]
    assert len(set(out.recluster.values())) == 3
    assert out.selected == [p.stats["candidate_id"] for p in out.principles]
    for cid in out.shortlist:
        if cid not in out.selected:
            assert out.dropped[cid] == "near-duplicate of a better-ranked principle"
    nets = [p.stats["for"] - p.stats["against"] for p in out.principles]
    assert nets == sorted(nets, reverse=True)
    assert [p.stats["rank"] for p in out.principles] == [1, 2, 3]


def test_min_support_drops_rarely_supported_principles(orthogonal):
    model = judge_model(ORTHOGONAL_RULES)
    result = run_icai(orthogonal, model, HashEmbedder(), IcaiConfig(min_support=0.5))
    assert result.constitution.principles == []
    assert all(
        "min support 15" in why or why.startswith("for ")
        for why in result.filtered.dropped.values()
    )


def test_same_inputs_give_the_same_output_and_the_same_requests(orthogonal):
    config = IcaiConfig(method="icai_improved_2", seed=4)
    first_model, second_model = judge_model(ORTHOGONAL_RULES), judge_model(ORTHOGONAL_RULES)
    first = run_icai(orthogonal, first_model, HashEmbedder(), config)
    second = run_icai(orthogonal, second_model, HashEmbedder(), config)
    assert first.to_dict() == second.to_dict()
    assert first_model.keys() == second_model.keys()  # a re-run is all cache hits
    other = run_icai(
        orthogonal,
        judge_model(ORTHOGONAL_RULES),
        HashEmbedder(),
        IcaiConfig(seed=5, method="icai_improved_2"),
    )
    assert other.votes.to_dict() != first.votes.to_dict()  # the seed matters


def test_stage_by_stage_in_batches_equals_a_single_run(orthogonal):
    """What the task layer does: batches, JSON round trips between stages, merges."""
    config = IcaiConfig(seed=6)
    embedder = HashEmbedder()
    whole_model = judge_model(ORTHOGONAL_RULES)
    whole = run_icai(orthogonal, whole_model, embedder, config)

    model = judge_model(ORTHOGONAL_RULES)
    units = generation_units(orthogonal, config)
    parts = [generate(units[i : i + 7], model, config).to_dict() for i in range(0, len(units), 7)]
    proposals = Proposals.merge(Proposals.from_dict(p) for p in reversed(parts))
    clusters = cluster_principles(proposals, embedder, config, n_pairs=len(orthogonal))
    reps = RepresentativeOutput.from_dict(select_representatives(clusters, model, config).to_dict())
    batches = [orthogonal[i : i + 4] for i in range(0, len(orthogonal), 4)]
    votes = VoteOutput.merge(
        VoteOutput.from_dict(vote(b, reps, model, config).to_dict()) for b in batches
    )
    filtered = filter_principles(reps, votes, embedder, config)

    assert filtered.to_dict() == whole.filtered.to_dict()
    assert sorted(model.keys()) == sorted(whole_model.keys())


def test_rating_scores_appear_in_the_prompt_only_when_present_and_wanted():
    pair = Pair("s1", "Q?", "Good answer.", "Bad answer.", Preference.A, score_a=9, score_b=2.5)
    plain = Pair("s2", "Q?", "Good answer.", "Bad answer.", Preference.A)
    scores = IcaiConfig(method="icai_scores")
    model = judge_model(ORTHOGONAL_RULES)
    generate(generation_units([pair, plain], scores), model, scores)
    texts = {r.messages[-1].content.count("rated"): r for r in model.requests}
    assert set(texts) == {0, 1}
    assert "The selected response was rated 9; the other response 2.5." in user_text(texts[1])
    # As published, ICAI and its improvements 1 and 2 show no ratings (section 3.5 is
    # the variant that does), unless a researcher switches them on.
    for config in (
        IcaiConfig(),
        IcaiConfig(method="icai_improved_1"),
        IcaiConfig(use_scores=False),
    ):
        model = judge_model(ORTHOGONAL_RULES)
        generate([generation_units([pair], config)[0]], model, config)
        assert "rated" not in user_text(model.requests[0])
    model = judge_model(ORTHOGONAL_RULES)
    generate([generation_units([pair], IcaiConfig())[0]], model, IcaiConfig(use_scores=True))
    assert "rated 9" in user_text(model.requests[0])


def test_config_validates_and_names_the_field():
    with pytest.raises(ValueError, match="method"):
        IcaiConfig(method="icai_improved_9")
    with pytest.raises(ValueError, match="min_support"):
        IcaiConfig(min_support=1.5)
    with pytest.raises(ValueError, match="principles_per_pair"):
        IcaiConfig(principles_per_pair=0)
    with pytest.raises(ValueError, match="representative"):
        IcaiConfig(representative="median")
    with pytest.raises(ValueError, match="encoders"):
        IcaiConfig(encoders=[])
    with pytest.raises(ValueError, match="num_clusters"):
        IcaiConfig.from_dict({"num_clusters": "ten"})
    with pytest.raises(ValueError, match="max_principle"):
        IcaiConfig.from_dict({"max_principle": 5})
    config = IcaiConfig(method="icai_improved_2", num_clusters=7, encoders=["content", "style"])
    assert IcaiConfig.from_dict(config.to_dict()) == config
    assert config.effective_representative == "centroid"
    assert config.uses_triplets
    assert IcaiConfig(representative="summary").effective_representative == "summary"


def test_result_round_trips_through_json(orthogonal):
    result = run_icai(orthogonal[:9], judge_model(ORTHOGONAL_RULES), HashEmbedder(), IcaiConfig())
    stored = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # what a JSON column holds
    again = IcaiResult.from_dict(stored)
    assert again.to_dict() == result.to_dict()
    assert again.constitution.as_text() == result.constitution.as_text()


def test_min_principles_tops_up_with_the_best_failed_candidates():
    from gcai.core.cluster import Candidate, Evidence, RepresentativeOutput
    from gcai.core.icai import IcaiConfig, filter_principles
    from gcai.core.voting import PairVotes, VoteOutput
    from tests.core.scripted import HashEmbedder

    cands = RepresentativeOutput(
        [
            Candidate(
                id=f"c{i}",
                text=f"Select the response that is kind {i}.",
                cluster_id=i,
                evidence=Evidence(pair_ids=["p1"]),
                cluster_size=1,
                method="random",
            )
            for i in range(3)
        ]
    )
    # Every candidate loses or ties on the single pair: the published filter keeps none.
    votes = VoteOutput(
        calls=[],
        pairs=[
            PairVotes(
                pair_id="p1", label=Preference.A, answers={"c0": "b", "c1": "neither", "c2": "b"}
            )
        ],
    )
    strict = filter_principles(cands, votes, HashEmbedder(), IcaiConfig())
    assert strict.principles == []
    topped = filter_principles(cands, votes, HashEmbedder(), IcaiConfig(min_principles=2))
    assert len(topped.principles) == 2
    assert all(p.stats["below_threshold"] for p in topped.principles)
    assert topped.principles[0].text.endswith("kind 1.")  # abstain beats against
