"""Presets: each publication's settings, versioned so a stored run keeps its meaning."""

from __future__ import annotations

import pytest

from gcai.core import presets
from gcai.core.cluster import Candidate, Evidence, RepresentativeOutput
from gcai.core.grounded import GcaiConfig, rank_contextual
from gcai.core.icai import IcaiConfig, filter_principles
from gcai.core.presets import Preset
from gcai.core.types import Preference
from gcai.core.voting import PairVotes, VoteOutput, aggregate
from tests.core.scripted import HashEmbedder

# What inverse-cai 0.4.8 runs (src/inverse_cai/experiment/config/main.py and
# config/prompts.py), and what the ICAI paper describes.
ICAI_REFERENCE = {
    "method": "icai",
    "principles_per_pair": 3,  # s1_num_principles_per_sampling_step
    "generation_prompt": "icai_generate_v1",  # DEFAULT_GENERATOR_PROMPT_V2
    "use_scores": False,
    "representative": "random",  # s2_sample_cluster_instead_of_rewrite
    "vote_seeds": 3,  # s3_num_seeds_to_reannotate_with
    "aggregation": "unanimous",  # s3_voting_method_cross_seed
    "max_candidates_per_call": 40,  # s3_filter_max_votes_in_single_prompt
    "require_majority_valid": True,  # s3_filter_majority_valid
    "min_support": 0.1,  # s3_filter_min_relevance
    "recluster_factor": 1.5,  # s3_ratio_of_max_principles_to_cluster_again
    "triplets": False,
}


def _resolved(name: str) -> dict:
    return presets.resolve(name).config.to_dict()


def _subset(config: dict, expected: dict) -> dict:
    return {k: config[k] for k in expected}


def test_icai_preset_matches_the_paper_and_the_reference_implementation():
    config = _resolved("icai")
    assert _subset(config, ICAI_REFERENCE) == ICAI_REFERENCE
    resolved = presets.resolve("icai").config
    assert isinstance(resolved, IcaiConfig)
    assert resolved.effective_use_scores is False
    assert not resolved.uses_triplets


def test_improved_1_preset_is_icai_with_the_general_prompt_and_centroid_representative():
    expected = {
        **ICAI_REFERENCE,
        "method": "icai_improved_1",
        "generation_prompt": "icai_generate_general_v1",
        "representative": "centroid",
    }
    assert _subset(_resolved("icai_improved_1"), expected) == expected


def test_improved_2_preset_generates_from_difference_cluster_triplets():
    expected = {
        **ICAI_REFERENCE,
        "method": "icai_improved_2",
        "generation_prompt": "icai_generate_general_v1",
        "representative": "centroid",
        "triplets": True,
    }
    assert _subset(_resolved("icai_improved_2"), expected) == expected
    assert presets.resolve("icai_improved_2").config.uses_triplets


def test_improved_2_embeds_responses_with_the_fast_encoder_from_version_2():
    assert presets.current_version("icai_improved_2") == 2
    assert presets.resolve("icai_improved_2").config.fast_content_tokens == 128
    v1 = presets.resolve("icai_improved_2", version=1)
    assert v1.config.fast_content_tokens is None  # the run's embedder, as before
    # A version-1 run stored before the setting existed keeps the run's embedder.
    stored = {k: v for k, v in v1.to_dict()["method_config"].items() if k != "fast_content_tokens"}
    assert presets.restore("icai_improved_2", 1, stored).fast_content_tokens is None
    only = {
        k
        for k, v in presets.get("icai_improved_2", 2).settings.items()
        if presets.get("icai_improved_2", 1).settings.get(k) != v
    }
    assert only == {"fast_content_tokens"}
    with pytest.raises(ValueError, match="fast_content_tokens"):
        presets.resolve("icai_improved_2", {"fast_content_tokens": 4})


def test_scores_preset_is_improved_1_with_ratings_in_the_prompt():
    improved_1 = _resolved("icai_improved_1")
    scores = _resolved("icai_scores")
    differing = {k for k in scores if scores[k] != improved_1[k]}
    assert differing == {"method", "use_scores"}
    assert scores["use_scores"] is True


def test_gcai_preset_matches_the_paper():
    config = presets.resolve("gcai").config
    assert isinstance(config, GcaiConfig)
    assert config.contextual_clusters == config.general_clusters == 10
    assert config.quotas() == (5, 5)  # 5 principles from each stream
    assert config.contextual_min_support == 0.1
    assert config.drop_contradicted is True
    assert config.aggregation == "unanimous"


def test_every_preset_is_selectable_and_unknown_names_are_refused():
    assert set(presets.NAMES) == set(presets.REGISTRY)
    for name in presets.NAMES:
        assert presets.resolve(name).preset.version == presets.current_version(name) >= 1
    with pytest.raises(ValueError, match="method: must be one of"):
        presets.resolve("icai_improved_9")
    with pytest.raises(ValueError, match="preset_version"):
        presets.get("icai", 99)


def test_overrides_are_recorded_as_deviations_and_validated():
    resolved = presets.resolve("icai", {"aggregation": "majority"}, seed=4)
    stored = resolved.to_dict()
    assert stored["preset"] == "icai"
    assert stored["preset_version"] == 1
    assert stored["overrides"] == {"aggregation": "majority"}
    assert stored["method_config"]["aggregation"] == "majority"
    assert stored["method_config"]["seed"] == 4
    with pytest.raises(ValueError, match="min_supprt: unknown ICAI setting"):
        presets.resolve("icai", {"min_supprt": 0.2})


def test_a_preset_name_stored_on_an_old_run_keeps_meaning_the_same_configuration(monkeypatch):
    stored = presets.resolve("icai", seed=2).to_dict()
    before = presets.restore("icai", stored["preset_version"], stored["method_config"], seed=2)

    # Later the publication's settings change (a new preset version) and a new setting
    # appears in the code with a different default.
    changed = dict(presets.get("icai").settings, min_support=0.3, aggregation="majority")
    v2 = Preset("icai", 2, "icai", "ICAI baseline", "errata", changed)
    monkeypatch.setitem(presets.REGISTRY, "icai", {**presets.REGISTRY["icai"], 2: v2})
    partial = {k: v for k, v in stored["method_config"].items() if k != "require_majority_valid"}
    monkeypatch.setattr(IcaiConfig, "__init__", _with_default(IcaiConfig.__init__, False))

    assert presets.resolve("icai").config.to_dict()["min_support"] == 0.3  # new runs move
    after = presets.restore("icai", stored["preset_version"], stored["method_config"], seed=2)
    assert after.to_dict() == before.to_dict()  # the old run does not
    # A setting the old run did not store comes from its preset version, not the code.
    restored = presets.restore("icai", 1, partial, seed=2)
    assert restored.to_dict() == before.to_dict()


def _with_default(init, value):
    def patched(self, *args, **kwargs):
        kwargs.setdefault("require_majority_valid", value)
        init(self, *args, **kwargs)

    return patched


def test_runs_made_before_presets_keep_their_behaviour():
    # A stored pre-preset ICAI run: ratings on, majority voting, no majority-valid filter.
    legacy = presets.restore("icai", None, {"use_scores": True, "aggregation": "majority"})
    assert legacy.to_dict()["require_majority_valid"] is False
    gcai = presets.restore("gcai", None, {})
    assert gcai.to_dict()["contextual_min_support"] == 0.0
    assert gcai.to_dict()["aggregation"] == "majority"


# --------------------------------------------------------------------------- the rules


def _candidates(*ids: str) -> RepresentativeOutput:
    return RepresentativeOutput(
        [
            Candidate(cid, f"Select the response that is {cid}.", i, Evidence(["p"]), 1, "single")
            for i, cid in enumerate(ids)
        ]
    )


def _votes(per_candidate: dict[str, list[str]], label: Preference = Preference.A) -> VoteOutput:
    n = len(next(iter(per_candidate.values())))
    return VoteOutput(
        pairs=[
            PairVotes(
                f"p{i:04d}", label, {cid: answers[i] for cid, answers in per_candidate.items()}
            )
            for i in range(n)
        ]
    )


def test_unanimous_voting_turns_any_disagreement_between_seeds_into_an_abstention():
    assert aggregate(["a", "a", "a"], "unanimous") == "a"
    assert aggregate(["a", "a", "b"], "unanimous") == "split"
    assert aggregate(["a", "a", "b"], "majority") == "a"


def test_filter_drops_principles_whose_votes_are_mostly_invalid():
    # "shaky": 3 for, 0 against, 0 abstain, 7 invalid -> passes for > against and the
    # 10% support, but invalid >= valid, as the reference's majority-valid filter says.
    votes = _votes(
        {
            "shaky": ["a"] * 3 + ["invalid"] * 7,
            "solid": ["a"] * 3 + ["neither"] * 4 + ["invalid"] * 3,
        }
    )
    out = filter_principles(_candidates("shaky", "solid"), votes, HashEmbedder(), IcaiConfig())
    assert out.selected == ["solid"]
    assert out.dropped["shaky"] == "invalid 7 >= valid 3"
    relaxed = IcaiConfig(require_majority_valid=False)
    out = filter_principles(_candidates("shaky", "solid"), votes, HashEmbedder(), relaxed)
    assert set(out.selected) == {"shaky", "solid"}


def test_gcai_contextual_ranking_needs_minimum_support():
    # 1000 voted pairs: "lucky" was right once and never took a side again; "proven" was
    # right 900 times and wrong 100 times. Accuracy alone would rank lucky first.
    votes = _votes(
        {
            "lucky": ["a"] + ["neither"] * 999,
            "proven": ["a"] * 900 + ["b"] * 100,
        }
    )
    ranking = rank_contextual(_candidates("lucky", "proven"), votes, GcaiConfig())
    assert [r.candidate.id for r in ranking.ranked] == ["proven"]
    assert ranking.dropped["lucky"] == "for 1 < min support 100"
    # Without a minimum support (the pre-preset behaviour) accuracy alone decides.
    loose = GcaiConfig(contextual_min_support=0.0)
    ranking = rank_contextual(_candidates("lucky", "proven"), votes, loose)
    assert [r.candidate.id for r in ranking.ranked] == ["lucky", "proven"]
