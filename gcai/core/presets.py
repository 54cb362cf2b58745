"""Methods as published: named, versioned presets of the ICAI and GCAI settings.

A preset names a publication's method (``icai``, ``icai_improved_1``,
``icai_improved_2``, ``icai_scores``, ``gcai``) and fixes the settings that publication
prescribes. Every run stores the preset's name, its version and the fully resolved
configuration, so what a run did never depends on today's defaults:

- :func:`resolve` builds the configuration of a new run: the preset's settings, then
  the researcher's overrides (each override is a recorded deviation from the preset);
- :func:`restore` reads a stored run back: the stored configuration wins, and a setting
  it lacks (one added to the code after the run) comes from the preset version the run
  was made with, never from the current version.

A preset is never edited once released: a change to a publication's settings is a new
version of the preset. Version 0 of each preset is the behaviour of runs made before
presets existed (ratings in prompts, majority voting, no "majority valid" filter, no
minimum support for GCAI's contextual principles).

Where each setting comes from, and every deviation that remains, is listed in
``docs/methods.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gcai.core.grounded import GcaiConfig
from gcai.core.icai import IcaiConfig

Config = IcaiConfig | GcaiConfig


@dataclass(frozen=True)
class Preset:
    """One released version of a published method's settings."""

    name: str
    version: int
    algorithm: str  # "icai" | "gcai": which pipeline runs it
    label: str
    source: str  # the publication (and section) the settings follow
    settings: Mapping[str, Any] = field(default_factory=dict)

    def config(self, overrides: Mapping[str, Any] | None = None, *, seed: int = 0) -> Config:
        """The configuration of this preset with ``overrides`` applied (ValueError names
        a bad or unknown setting)."""
        data = {**self.settings, "seed": seed, **dict(overrides or {})}
        data["method"] = self.name if self.algorithm == "icai" else "gcai"
        cls = IcaiConfig if self.algorithm == "icai" else GcaiConfig
        return cls.from_dict(data)


def _frozen(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(settings))


# ICAI as published (Findeis et al., arXiv 2406.06560) and as inverse-cai 0.4.8 runs it
# (src/inverse_cai/experiment/config/main.py; algorithm/{proposal,voting,filter}.py).
_ICAI_PUBLISHED: dict[str, Any] = {
    "principles_per_pair": 3,  # s1_num_principles_per_sampling_step = 3
    "generation_prompt": "icai_generate_v1",  # DEFAULT_GENERATOR_PROMPT_V2 (prompts.py)
    "use_scores": False,  # the reference prompt shows no ratings
    "representative": "random",  # s2_sample_cluster_instead_of_rewrite = True
    "vote_seeds": 3,  # s3_num_seeds_to_reannotate_with = 3
    "aggregation": "unanimous",  # s3_voting_method_cross_seed = "unanimous"
    "max_candidates_per_call": 40,  # s3_filter_max_votes_in_single_prompt = 40
    "require_majority_valid": True,  # s3_filter_majority_valid = True
    "min_support": 0.1,  # s3_filter_min_relevance = 0.1 (for >= 10% of voted pairs)
    "recluster_factor": 1.5,  # s3_ratio_of_max_principles_to_cluster_again = 1.5
    "triplets": False,
}
# Improved ICAI: generalisation-oriented generation prompt, centroid-closest representative.
_IMPROVED_1: dict[str, Any] = {
    **_ICAI_PUBLISHED,
    "generation_prompt": "icai_generate_general_v1",
    "representative": "centroid",
}
# Variant 2: generation from representative triplets of embedding-difference clusters.
# Its encoder and cluster-selection settings keep the code's defaults (see methods.md).
_IMPROVED_2: dict[str, Any] = {**_IMPROVED_1, "triplets": True}
# Version 2: the responses are embedded by the fast ONNX int8 MiniLM reading 128 word
# pieces (20,000 pairs in minutes instead of over an hour; quality loss measured in
# docs/methods.md, deviation 12).
_IMPROVED_2_FAST: dict[str, Any] = {**_IMPROVED_2, "fast_content_tokens": 128}
# Ratings in the generation prompt (improved ICAI, section 3.5): improved 1 + scores.
_SCORES: dict[str, Any] = {**_IMPROVED_1, "use_scores": True}

# GCAI (arXiv 2601.18760): two streams of ~10 clusters, 5 principles from each; the
# contextual stream ranked by predictive power among principles with enough support,
# the general stream by consensus (distinct participants), one principle per cluster.
_GCAI_PUBLISHED: dict[str, Any] = {
    "contextual_clusters": 10,
    "general_clusters": 10,
    "max_principles": 10,
    "contextual_share": 0.5,
    "contextual_representative": "summary",
    "general_representative": "summary",
    "drop_contradicted": True,
    "contextual_min_support": 0.1,  # as ICAI's s3_filter_min_relevance
    "vote_seeds": 3,
    "aggregation": "unanimous",  # ICAI's voting, unchanged
}

# Runs made before presets existed: what the code did then, for settings added since.
_LEGACY_ICAI: dict[str, Any] = {
    "use_scores": True,
    "aggregation": "majority",
    "require_majority_valid": False,
}
_LEGACY_GCAI: dict[str, Any] = {"aggregation": "majority", "contextual_min_support": 0.0}

_ICAI_PAPER = "Findeis et al. 2024, Inverse Constitutional AI (arXiv 2406.06560), inverse-cai 0.4.8"
_IMPROVED_PAPER = "Improved ICAI"
_GCAI_PAPER = "Grounded Constitutional AI (arXiv 2601.18760)"

_ALL: tuple[Preset, ...] = (
    Preset("icai", 0, "icai", "ICAI baseline (before presets)", _ICAI_PAPER, _frozen(_LEGACY_ICAI)),
    Preset("icai", 1, "icai", "ICAI baseline", _ICAI_PAPER, _frozen(_ICAI_PUBLISHED)),
    Preset(
        "icai_improved_1",
        0,
        "icai",
        "ICAI improved 1 (before presets)",
        _IMPROVED_PAPER,
        _frozen(_LEGACY_ICAI),
    ),
    Preset(
        "icai_improved_1",
        1,
        "icai",
        "ICAI improved 1 (general prompt, centroid)",
        f"{_IMPROVED_PAPER}, variant 1",
        _frozen(_IMPROVED_1),
    ),
    Preset(
        "icai_improved_2",
        0,
        "icai",
        "ICAI improved 2 (before presets)",
        _IMPROVED_PAPER,
        _frozen(_LEGACY_ICAI),
    ),
    Preset(
        "icai_improved_2",
        1,
        "icai",
        "ICAI improved 2 (difference clustering)",
        f"{_IMPROVED_PAPER}, variant 2",
        _frozen(_IMPROVED_2),
    ),
    Preset(
        "icai_improved_2",
        2,
        "icai",
        "ICAI improved 2 (difference clustering, fast encoder)",
        f"{_IMPROVED_PAPER}, variant 2",
        _frozen(_IMPROVED_2_FAST),
    ),
    Preset(
        "icai_scores",
        1,
        "icai",
        "ICAI improved 1 + ratings",
        f"{_IMPROVED_PAPER}, section 3.5",
        _frozen(_SCORES),
    ),
    Preset("gcai", 0, "gcai", "GCAI (before presets)", _GCAI_PAPER, _frozen(_LEGACY_GCAI)),
    Preset("gcai", 1, "gcai", "GCAI (grounded)", _GCAI_PAPER, _frozen(_GCAI_PUBLISHED)),
)

#: Every released preset version: name -> version -> preset.
REGISTRY: dict[str, dict[int, Preset]] = {}
for _preset in _ALL:
    REGISTRY.setdefault(_preset.name, {})[_preset.version] = _preset

#: Preset names in the order a researcher meets them.
NAMES: tuple[str, ...] = ("gcai", "icai", "icai_improved_1", "icai_improved_2", "icai_scores")


def current_version(name: str) -> int:
    """The version new runs of preset ``name`` use (ValueError for an unknown name)."""
    return max(_versions(name))


def _versions(name: str) -> dict[int, Preset]:
    if name not in REGISTRY:
        raise ValueError(f"method: must be one of {', '.join(NAMES)}, got {name!r}")
    return REGISTRY[name]


def get(name: str, version: int | None = None) -> Preset:
    """Preset ``name`` at ``version`` (default: the current one)."""
    versions = _versions(name)
    if version is None:
        version = max(versions)
    if version not in versions:
        raise ValueError(f"preset_version: {name} has no version {version!r}")
    return versions[version]


@dataclass(frozen=True)
class Resolved:
    """A run's method: the preset it names, at which version, and the full configuration."""

    preset: Preset
    config: Config
    overrides: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        # Hand-written: the stored keys name the preset and its version, not these fields.
        return {
            "preset": self.preset.name,
            "preset_version": self.preset.version,
            "overrides": dict(self.overrides),
            "method_config": self.config.to_dict(),
        }


def resolve(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    version: int | None = None,
) -> Resolved:
    """The configuration of a new run of preset ``name`` with the researcher's
    ``overrides`` (recorded separately, as deviations from the preset)."""
    preset = get(name, version)
    extra = {k: v for k, v in dict(overrides or {}).items() if k not in ("method", "seed")}
    return Resolved(preset, preset.config(extra, seed=seed), extra)


def restore(
    name: str, version: int | None, stored: Mapping[str, Any] | None, *, seed: int = 0
) -> Config:
    """The configuration of a stored run: its stored settings over its preset version.

    ``version`` None means the run predates presets (version 0, or the first version of
    a preset that did not exist then).
    """
    if version is None:
        version = min(_versions(name))
    preset = get(name, version)
    data = dict(stored or {})
    data.pop("method", None)
    data.setdefault("seed", seed)
    return preset.config({k: v for k, v in data.items() if k != "seed"}, seed=data["seed"])
