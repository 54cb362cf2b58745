"""Inverse Constitutional AI (Findeis et al., arXiv 2406.06560) and its published improvements.

Stages, each a pure function whose output is a JSON-serialisable dataclass:

0. :func:`select_triplets` (``icai_improved_2`` only): cluster the embedding differences
   (preferred minus rejected response) of the pairs, keep the best-separated clusters and
   a representative triplet of pairs from each. No LLM.
1. :func:`generate`: per generation unit (a pair, or a triplet) the LLM proposes K
   "Select the response that ..." principles explaining the recorded preference.
2. :func:`cluster_principles`: embed all proposals, seeded KMeans into C clusters.
3. :func:`select_representatives`: one candidate per cluster (random | centroid | summary).
4. :func:`vote`: test every candidate on every labelled pair (see :mod:`gcai.core.voting`).
5. :func:`filter_principles`: keep candidates with for > against and enough support,
   rank by for - against, cap at N by re-clustering the top 1.5N into N.

Variants are configuration (:class:`IcaiConfig.method`), not forks:
``icai`` (baseline: published prompt, random representative), ``icai_improved_1``
(generalisation-oriented prompt, centroid-closest representative), ``icai_improved_2``
(improved 1 plus generation from representative triplets of embedding-difference
clusters) and ``icai_scores`` (improved 1 with rating scores in the prompt). Every
setting a method implies can be overridden individually; the published settings of
each method are the presets of :mod:`gcai.core.presets`.

Unlike the reference implementation, ties and both-bad labels are accepted: they are not
used to generate principles but are counted in voting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from gcai.core import prompts
from gcai.core.cluster import (
    REPRESENTATIVE_MODES,
    Candidate,
    ClusterOutput,
    Evidence,
    Proposal,
    Proposals,
    RepresentativeOutput,
    choose_representatives,
    clean_principles,
    cluster_proposals,
)
from gcai.core.embed import Embedder
from gcai.core.encoders import Encoder, validate_encoder_names
from gcai.core.icai_filter import FilterOutput, filter_principles
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult
from gcai.core.quality import PRINCIPLE_STRING_SCHEMA
from gcai.core.serial import Stored
from gcai.core.triplets import DiffCluster as DiffCluster
from gcai.core.triplets import TripletSelection as TripletSelection
from gcai.core.triplets import default_diff_clusters as default_diff_clusters
from gcai.core.triplets import select_triplets as select_triplets
from gcai.core.types import Constitution, Pair, Preference
from gcai.core.voting import (
    AGGREGATIONS,
    VoteConfig,
    VoteOutput,
    require_float,
    require_int,
    require_prompt,
    settings_from_dict,
)
from gcai.core.voting import vote as _vote

METHODS: tuple[str, ...] = ("icai", "icai_improved_1", "icai_improved_2", "icai_scores")

# What each method implies unless the config overrides it.
_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "icai": {
        "generation_prompt": "icai_generate_v1",
        "representative": "random",
        "use_scores": False,
    },
    "icai_improved_1": {
        "generation_prompt": "icai_generate_general_v1",
        "representative": "centroid",
        "use_scores": False,
    },
    "icai_improved_2": {
        "generation_prompt": "icai_generate_general_v1",
        "representative": "centroid",
        "use_scores": False,
    },
    "icai_scores": {
        "generation_prompt": "icai_generate_general_v1",
        "representative": "centroid",
        "use_scores": True,
    },
}

GENERATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # No maxItems: an extra principle should be trimmed, not fail the whole answer.
        "principles": {"type": "array", "items": PRINCIPLE_STRING_SCHEMA, "minItems": 1}
    },
    "required": ["principles"],
}


# --------------------------------------------------------------------------- config


@dataclass(slots=True)
class IcaiConfig(Stored):
    """Settings of an ICAI run. ``None`` means "the method's default" or "scale with data"."""

    method: str = "icai"
    seed: int = 0
    # generate
    principles_per_pair: int = 3
    generation_prompt: str | None = None
    # Show rating scores in the prompt when a pair has them (None: only icai_scores does).
    use_scores: bool | None = None
    # cluster + representative
    num_clusters: int | None = None  # default min(#principles, max(10, #pairs // 5))
    representative: str | None = None  # random | centroid | summary
    summary_prompt: str = "cluster_summary_v1"
    # vote
    vote_seeds: int = 3
    max_candidates_per_call: int = 40
    aggregation: str = "unanimous"  # across vote_seeds, as inverse-cai 0.4.8
    vote_prompt: str = "icai_vote_v1"
    # filter
    min_support: float = 0.1  # "for" votes needed, as a share of voted pairs
    # Drop a candidate whose invalid votes are at least its valid ones (the reference's
    # s3_filter_majority_valid).
    require_majority_valid: bool = True
    max_principles: int = 10
    # Top up to this many principles with the best-ranked ones that failed the filter
    # (marked below_threshold). 0 = as published: the filter may leave nothing.
    min_principles: int = 0
    recluster_factor: float = 1.5
    # improved 2: triplets from clusters of embedding differences
    triplets: bool | None = None  # default: on for icai_improved_2
    encoders: list[str] = field(default_factory=lambda: ["content"])
    diff_clusters: int | None = None  # default min(#pairs // 3, max(10, #pairs // 10))
    top_clusters: int | None = None  # default: every eligible cluster
    triplet_size: int = 3
    max_overlap: float = 0.0  # share of a cluster's pairs already covered that is allowed
    joint_prompt: str = "icai_generate_joint_v1"
    # Embed the responses for the triplets with the bundled MiniLM through ONNX Runtime
    # (int8; gcai.core.fast_embed) reading this many word pieces, instead of the
    # run's embedder (None). Applies when the run's embedder is that local model.
    fast_content_tokens: int | None = None
    # LLM
    temperature: float = 0.0
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if self.method not in METHODS:
            raise ValueError(f"method: must be one of {METHODS}, got {self.method!r}")
        require_int("seed", self.seed, 0)
        require_int("principles_per_pair", self.principles_per_pair, 1)
        if self.generation_prompt is not None:
            require_prompt("generation_prompt", self.generation_prompt)
        if self.use_scores is not None and not isinstance(self.use_scores, bool):
            raise ValueError("use_scores: must be true, false or null")
        if not isinstance(self.require_majority_valid, bool):
            raise ValueError("require_majority_valid: must be true or false")
        require_int("num_clusters", self.num_clusters, 1, optional=True)
        if self.representative is not None and self.representative not in REPRESENTATIVE_MODES:
            raise ValueError(f"representative: must be one of {REPRESENTATIVE_MODES} or null")
        require_prompt("summary_prompt", self.summary_prompt)
        require_int("vote_seeds", self.vote_seeds, 1)
        require_int("max_candidates_per_call", self.max_candidates_per_call, 1)
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: must be one of {AGGREGATIONS}")
        require_prompt("vote_prompt", self.vote_prompt)
        require_float("min_support", self.min_support, 0.0, 1.0)
        require_int("max_principles", self.max_principles, 1)
        require_float("recluster_factor", self.recluster_factor, 1.0)
        if self.triplets is not None and not isinstance(self.triplets, bool):
            raise ValueError("triplets: must be true, false or null")
        validate_encoder_names(self.encoders)
        require_int("diff_clusters", self.diff_clusters, 1, optional=True)
        require_int("top_clusters", self.top_clusters, 1, optional=True)
        require_int("triplet_size", self.triplet_size, 1)
        require_float("max_overlap", self.max_overlap, 0.0, 1.0)
        require_prompt("joint_prompt", self.joint_prompt)
        require_int("fast_content_tokens", self.fast_content_tokens, 8, optional=True)
        require_float("temperature", self.temperature, 0.0)
        require_int("max_tokens", self.max_tokens, 1, optional=True)

    # The effective settings, after the method's defaults.
    @property
    def effective_generation_prompt(self) -> str:
        return self.generation_prompt or _METHOD_DEFAULTS[self.method]["generation_prompt"]

    @property
    def effective_representative(self) -> str:
        return self.representative or _METHOD_DEFAULTS[self.method]["representative"]

    @property
    def effective_use_scores(self) -> bool:
        if self.use_scores is not None:
            return self.use_scores
        return bool(_METHOD_DEFAULTS[self.method]["use_scores"])

    @property
    def uses_triplets(self) -> bool:
        return self.triplets if self.triplets is not None else self.method == "icai_improved_2"

    def voting(self) -> VoteConfig:
        """The vote-stage settings."""
        return VoteConfig.of(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        # Settings typed by people: unknown keys are errors and validate() checks values.
        return settings_from_dict(cls, data, "ICAI")


def default_num_clusters(n_principles: int, n_pairs: int) -> int:
    """ICAI's default C: min(#principles, max(10, #pairs // 5)), at least 1."""
    return max(1, min(n_principles, max(10, n_pairs // 5)))


# --------------------------------------------------------------------------- prompts


def _preferred_rejected(pair: Pair) -> tuple[str, str, float | None, float | None]:
    if Preference(pair.preferred) is Preference.A:
        return pair.response_a, pair.response_b, pair.score_a, pair.score_b
    return pair.response_b, pair.response_a, pair.score_b, pair.score_a


def _scores_block(pair: Pair, use_scores: bool) -> str:
    _, _, chosen, other = _preferred_rejected(pair)
    if not use_scores or chosen is None or other is None:
        return ""
    return prompts.block(
        "ratings", f"The selected response was rated {chosen:g}; the other response {other:g}."
    )


def _pair_request(pair: Pair, config: IcaiConfig) -> ChatRequest:
    preferred, rejected, _, _ = _preferred_rejected(pair)
    messages = prompts.render(
        config.effective_generation_prompt,
        prompt_block=prompts.block("prompt", pair.prompt),
        preferred=preferred,
        rejected=rejected,
        scores_block=_scores_block(pair, config.effective_use_scores),
        k=str(config.principles_per_pair),
    )
    return _generation_request(messages, config)


def _joint_request(pairs: Sequence[Pair], config: IcaiConfig) -> ChatRequest:
    samples = []
    for i, pair in enumerate(pairs, 1):
        preferred, rejected, _, _ = _preferred_rejected(pair)
        samples.append(
            f'<sample number="{i}">'
            f"{prompts.block('prompt', pair.prompt)}\n"
            f"<selected_response>\n{preferred}\n</selected_response>\n\n"
            f"<other_response>\n{rejected}\n</other_response>\n"
            f"{_scores_block(pair, config.effective_use_scores)}</sample>"
        )
    messages = prompts.render(
        config.joint_prompt,
        samples="\n\n".join(samples),
        n=str(len(pairs)),
        k=str(config.principles_per_pair),
    )
    return _generation_request(messages, config)


def _generation_request(messages: Any, config: IcaiConfig) -> ChatRequest:
    return ChatRequest(
        messages=messages,
        schema=GENERATION_SCHEMA,
        temperature=config.temperature,
        seed=config.seed,
        max_tokens=config.max_tokens,
        purpose="icai.generate",
    )


def parse_principles(result: ChatResult, limit: int) -> tuple[list[str], str]:
    """(principles, error note) from a generation answer; never raises."""
    if result.error is not None:
        return [], f"{type(result.error).__name__}: {result.error}"
    raw = result.parsed.get("principles") if isinstance(result.parsed, dict) else None
    cleaned = clean_principles(raw, limit)
    if cleaned is None:
        return [], "answer has no list of principle strings"
    if not cleaned:
        return [], "answer lists no principles"
    return cleaned, ""


# Stage 0 (select_triplets, improved 2) lives in gcai.core.triplets, imported above.


# --------------------------------------------------------------------------- stage 1: generate


@dataclass(slots=True)
class GenerationUnit:
    """What one generation call explains: one pair, or a triplet of similar pairs."""

    id: str
    pairs: list[Pair]


def generation_units(
    pairs: Sequence[Pair], config: IcaiConfig, triplets: TripletSelection | None = None
) -> list[GenerationUnit]:
    """The units the generate stage works on; split them into batches freely.

    Per pair (every pair, so non-decisive ones are recorded as skipped), or, when the
    config uses triplets, one unit per selected triplet (``triplets`` is then required).
    """
    if not config.uses_triplets:
        return [GenerationUnit(p.id, [p]) for p in sorted(pairs, key=lambda p: p.id)]
    if triplets is None:
        raise ValueError("triplets: required when the config generates from triplets")
    by_id = {p.id: p for p in pairs}
    units = []
    for dc in triplets.triplets:
        missing = [pid for pid in dc.triplet if pid not in by_id]
        if missing:
            raise ValueError(f"triplets: pair {missing[0]!r} of {dc.id} is not among the pairs")
        units.append(GenerationUnit(dc.id, [by_id[pid] for pid in dc.triplet]))
    return units


def generate(units: Sequence[GenerationUnit], model: ChatModel, config: IcaiConfig) -> Proposals:
    """Stage 1: propose ``principles_per_pair`` principles per unit (one LLM call each).

    A single-pair unit whose label is not decisive (tie, both bad, unlabelled) is skipped
    and recorded as such. LLM failures are recorded per unit with ``status="error"``.
    """
    out: list[Proposal] = []
    pending: list[tuple[Proposal, ChatRequest]] = []
    for unit in units:
        proposal = Proposal(unit.id, Evidence(pair_ids=[p.id for p in unit.pairs]))
        usable = [p for p in unit.pairs if Preference(p.preferred).is_decisive]
        if not usable:
            proposal.status = "skipped"
            labels = sorted({str(p.preferred) for p in unit.pairs})
            proposal.note = f"label {', '.join(labels)}: only decisive labels explain a choice"
            out.append(proposal)
            continue
        if len(unit.pairs) == 1:
            request = _pair_request(usable[0], config)
        else:
            request = _joint_request(usable, config)
        pending.append((proposal, request))
    results = model.complete_many([req for _, req in pending]) if pending else []
    for (proposal, _), result in zip(pending, results, strict=True):
        principles, note = parse_principles(result, config.principles_per_pair)
        proposal.principles = principles
        if note:
            proposal.status = "error"
            proposal.note = note
        out.append(proposal)
    return Proposals(out)


# --------------------------------------------------------------------------- stages 2 + 3


def cluster_principles(
    proposals: Proposals, embedder: Embedder, config: IcaiConfig, *, n_pairs: int
) -> ClusterOutput:
    """Stage 2: embed and cluster all proposed principles.

    ``n_pairs`` is the number of training pairs, used by the default C =
    min(#principles, max(10, #pairs // 5)).
    """
    n_principles = sum(len(p.principles) for p in proposals.items)
    c = config.num_clusters or default_num_clusters(n_principles, n_pairs)
    return cluster_proposals(proposals, embedder, n_clusters=c, seed=config.seed)


def select_representatives(
    clusters: ClusterOutput, model: ChatModel | None, config: IcaiConfig
) -> RepresentativeOutput:
    """Stage 3: one candidate per cluster, as the method (or ``representative``) says.

    Only ``summary`` calls the model; clusters are independent, so callers may batch
    them (pass ``ClusterOutput`` slices) and merge with ``RepresentativeOutput.merge``.
    """
    return choose_representatives(
        clusters.clusters,
        config.effective_representative,  # type: ignore[arg-type]
        seed=config.seed,
        model=model,
        id_prefix="c",
        prompt=config.summary_prompt,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
    )


# --------------------------------------------------------------------------- stage 4: vote


def vote(
    pairs: Sequence[Pair],
    candidates: RepresentativeOutput | Sequence[Candidate],
    model: ChatModel,
    config: IcaiConfig,
) -> VoteOutput:
    """Stage 4, one batch of pairs: see :func:`gcai.core.voting.vote`.

    Merge batches with ``VoteOutput.merge``; results do not depend on the split.
    """
    cands = candidates.candidates if isinstance(candidates, RepresentativeOutput) else candidates
    return _vote(pairs, cands, model, config.voting())


# --------------------------------------------------------------------------- whole run


@dataclass(slots=True)
class IcaiResult(Stored):
    """Every stage's output of a library run, and the resulting constitution."""

    config: IcaiConfig
    triplets: TripletSelection | None
    proposals: Proposals
    clusters: ClusterOutput
    representatives: RepresentativeOutput
    votes: VoteOutput
    filtered: FilterOutput

    @property
    def constitution(self) -> Constitution:
        return Constitution(principles=list(self.filtered.principles), title=self.config.method)


def run_icai(
    pairs: Sequence[Pair],
    model: ChatModel,
    embedder: Embedder,
    config: IcaiConfig | None = None,
    *,
    encoders: Mapping[str, Encoder] | None = None,
) -> IcaiResult:
    """Run every ICAI stage in one process (library use; the web app runs them as tasks).

    ``encoders`` are the named encoders for ``icai_improved_2`` (default: ``embedder``
    as ``"content"``).
    """
    config = config or IcaiConfig()
    triplets = None
    if config.uses_triplets:
        triplets = select_triplets(pairs, encoders or {"content": embedder}, config)
    proposals = generate(generation_units(pairs, config, triplets), model, config)
    clusters = cluster_principles(proposals, embedder, config, n_pairs=len(pairs))
    representatives = select_representatives(clusters, model, config)
    votes = vote(pairs, representatives, model, config)
    filtered = filter_principles(representatives, votes, embedder, config)
    return IcaiResult(config, triplets, proposals, clusters, representatives, votes, filtered)
