"""The stages of each method, as stored, resumable steps.

Each method is a list of :class:`Stage`. A stage is either *whole* (one call of a
``gcai.core`` function) or *batched* (the same function over slices of a list of items:
pairs, annotations, statements). Every stage's output is stored as a
:class:`~gcai.constitutions.models.StageArtifact` (batched stages store one artifact
per batch, then the merged one), so:

- a failed, cancelled or killed run resumes at its first missing artifact, and together
  with the LLM response cache, finished calls are never paid for twice;
- a researcher can open and export every intermediate step.

This module only knows how to compute a stage; scheduling (Celery fan-out, locking,
progress) lives in :mod:`gcai.jobs.engine`; the run declaration in
:mod:`gcai.constitutions.runs`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from gcai.core import grounded, icai, presets
from gcai.core.cluster import ClusterOutput, Proposals, RepresentativeOutput
from gcai.core.embed import Embedder
from gcai.core.encoders import build_encoders
from gcai.core.grounded import GcaiConfig, MergeOutput, StreamRanking
from gcai.core.icai import FilterOutput, IcaiConfig, TripletSelection
from gcai.core.llm.base import ChatModel
from gcai.core.types import Judgement, Pair, Principle, Statement
from gcai.core.voting import VoteOutput
from gcai.jobs.stages import Stage, StageError


class RunInputs:
    """Everything a stage may read: config, inputs, earlier outputs, model, embedder.

    Inputs are loaded lazily and once; ``load_output`` reads earlier stages' artifacts.
    """

    def __init__(
        self,
        *,
        method: str,
        config: dict[str, Any],
        pairs_loader: Callable[[], list[Pair]],
        judgements_loader: Callable[[], list[Judgement]],
        statements_loader: Callable[[], list[Statement]],
        output_loader: Callable[[str], dict[str, Any]],
        model_factory: Callable[[], ChatModel],
        embedder_factory: Callable[[], Embedder],
        fast_embedder_factory: Callable[[int], Embedder] | None = None,
    ) -> None:
        self.method = method
        self.raw_config = config
        self._pairs_loader = pairs_loader
        self._judgements_loader = judgements_loader
        self._statements_loader = statements_loader
        self._output_loader = output_loader
        self._model_factory = model_factory
        self._embedder_factory = embedder_factory
        self._fast_embedder_factory = fast_embedder_factory
        self._outputs: dict[str, dict[str, Any]] = {}

    @cached_property
    def config(self) -> IcaiConfig | GcaiConfig:
        return method_config(self.method, self.raw_config)

    @property
    def icai(self) -> IcaiConfig:
        assert isinstance(self.config, IcaiConfig)
        return self.config

    @property
    def gcai(self) -> GcaiConfig:
        assert isinstance(self.config, GcaiConfig)
        return self.config

    @cached_property
    def pairs(self) -> list[Pair]:
        return self._pairs_loader()

    @cached_property
    def judgements(self) -> list[Judgement]:
        return self._judgements_loader()

    @cached_property
    def statements(self) -> list[Statement]:
        return self._statements_loader()

    @cached_property
    def model(self) -> ChatModel:
        return self._model_factory()

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder_factory()

    @cached_property
    def content_embedder(self) -> Embedder:
        """Improved 2's content encoder: the fast embedder when the config names its
        token cut (``fast_content_tokens``) and a factory is given, else the run's."""
        tokens = self.icai.fast_content_tokens
        if tokens is None or self._fast_embedder_factory is None:
            return self.embedder
        return self._fast_embedder_factory(tokens)

    def output(self, stage: str) -> dict[str, Any]:
        if stage not in self._outputs:
            self._outputs[stage] = self._output_loader(stage)
        return self._outputs[stage]


def method_config(method: str, raw: dict[str, Any]) -> IcaiConfig | GcaiConfig:
    """The core config of a stored run (ValueError names the field).

    The stored resolved settings win; what they lack comes from the preset version the
    run was made with (a run stored before presets existed is version 0). ``raw``
    without stored settings gives the preset's current configuration.
    """
    version = raw.get("preset_version")
    if version is None and "method_config" not in raw:
        version = presets.current_version(method)
    return presets.restore(
        method, version, raw.get("method_config") or {}, seed=int(raw.get("seed", 0))
    )


# --------------------------------------------------------------------------- ICAI stages


def _icai_triplets(ctx: RunInputs) -> dict[str, Any]:
    # The content encoder brings its cache; the others share it.
    content = ctx.content_embedder
    encoders = build_encoders(
        ctx.icai.encoders, content=content, cache=getattr(content, "cache", None)
    )
    try:
        return icai.select_triplets(ctx.pairs, encoders, ctx.icai).to_dict()
    except ValueError as exc:
        raise StageError(str(exc)) from exc


def _icai_units(ctx: RunInputs) -> list[icai.GenerationUnit]:
    triplets = None
    if ctx.icai.uses_triplets:
        triplets = TripletSelection.from_dict(ctx.output("triplets"))
    units = icai.generation_units(ctx.pairs, ctx.icai, triplets)
    if not any(any(p.preferred.is_decisive for p in u.pairs) for u in units):
        raise StageError("No training pair has a decisive preference (a or b) to explain.")
    return units


def _icai_generate(ctx: RunInputs, units: Sequence[Any]) -> dict[str, Any]:
    return icai.generate(units, ctx.model, ctx.icai).to_dict()


def _merge_proposals(ctx: RunInputs, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return Proposals.merge(Proposals.from_dict(p) for p in parts).to_dict()


def _icai_cluster(ctx: RunInputs) -> dict[str, Any]:
    proposals = Proposals.from_dict(ctx.output("generate"))
    if not any(p.principles for p in proposals.items):
        raise StageError(
            "The model proposed no usable principle for any pair (see the generate stage)."
        )
    return icai.cluster_principles(
        proposals, ctx.embedder, ctx.icai, n_pairs=len(ctx.pairs)
    ).to_dict()


def _icai_representatives(ctx: RunInputs) -> dict[str, Any]:
    clusters = ClusterOutput.from_dict(ctx.output("cluster"))
    return icai.select_representatives(clusters, ctx.model, ctx.icai).to_dict()


def _pairs_items(ctx: RunInputs) -> list[Pair]:
    return list(ctx.pairs)


def _icai_vote(ctx: RunInputs, pairs: Sequence[Any]) -> dict[str, Any]:
    reps = RepresentativeOutput.from_dict(ctx.output("representatives"))
    return icai.vote(pairs, reps, ctx.model, ctx.icai).to_dict()


def _merge_votes(ctx: RunInputs, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return VoteOutput.merge(VoteOutput.from_dict(p) for p in parts).to_dict()


def _icai_filter(ctx: RunInputs) -> dict[str, Any]:
    reps = RepresentativeOutput.from_dict(ctx.output("representatives"))
    votes = VoteOutput.from_dict(ctx.output("vote"))
    return icai.filter_principles(reps, votes, ctx.embedder, ctx.icai).to_dict()


def icai_stages(config: IcaiConfig) -> list[Stage]:
    stages = []
    if config.uses_triplets:
        stages.append(
            Stage("triplets", "Cluster response differences, pick triplets", compute=_icai_triplets)
        )
    stages += [
        Stage(
            "generate",
            "Generate candidate principles",
            items=_icai_units,
            compute_batch=_icai_generate,
            merge=_merge_proposals,
        ),
        Stage("cluster", "Embed and cluster candidates", compute=_icai_cluster),
        Stage("representatives", "Pick one principle per cluster", compute=_icai_representatives),
        Stage(
            "vote",
            "Test principles on training pairs",
            items=_pairs_items,
            compute_batch=_icai_vote,
            merge=_merge_votes,
        ),
        Stage("filter", "Filter, rank and cap", compute=_icai_filter),
    ]
    return stages


# --------------------------------------------------------------------------- GCAI stages


def _judgement_items(ctx: RunInputs) -> list[Judgement]:
    return list(ctx.judgements)


def _statement_items(ctx: RunInputs) -> list[Statement]:
    return list(ctx.statements)


def _gcai_contextual_generate(ctx: RunInputs, items: Sequence[Any]) -> dict[str, Any]:
    return grounded.contextual_generate(items, ctx.model, ctx.gcai).to_dict()


def _gcai_general_generate(ctx: RunInputs, items: Sequence[Any]) -> dict[str, Any]:
    return grounded.general_generate(items, ctx.model, ctx.gcai).to_dict()


def _gcai_cluster(stream: str) -> Callable[[RunInputs], dict[str, Any]]:
    def compute(ctx: RunInputs) -> dict[str, Any]:
        proposals = Proposals.from_dict(ctx.output(f"{stream}_generate"))
        return grounded.cluster_stream(proposals, ctx.embedder, ctx.gcai, stream=stream).to_dict()

    return compute


def _gcai_represent(stream: str) -> Callable[[RunInputs], dict[str, Any]]:
    def compute(ctx: RunInputs) -> dict[str, Any]:
        clusters = ClusterOutput.from_dict(ctx.output(f"{stream}_cluster"))
        return grounded.represent(clusters, ctx.model, ctx.gcai, stream=stream).to_dict()

    return compute


def _gcai_contextual_vote(ctx: RunInputs, pairs: Sequence[Any]) -> dict[str, Any]:
    cands = RepresentativeOutput.from_dict(ctx.output("contextual_representatives"))
    return grounded.vote_contextual(pairs, cands, ctx.model, ctx.gcai).to_dict()


def _gcai_contextual_rank(ctx: RunInputs) -> dict[str, Any]:
    cands = RepresentativeOutput.from_dict(ctx.output("contextual_representatives"))
    votes = VoteOutput.from_dict(ctx.output("contextual_vote"))
    return grounded.rank_contextual(cands, votes, ctx.gcai).to_dict()


def _gcai_general_rank(ctx: RunInputs) -> dict[str, Any]:
    cands = RepresentativeOutput.from_dict(ctx.output("general_representatives"))
    return grounded.rank_general(cands, ctx.gcai).to_dict()


def _gcai_merge(ctx: RunInputs) -> dict[str, Any]:
    contextual = StreamRanking.from_dict(ctx.output("contextual_rank"))
    general = StreamRanking.from_dict(ctx.output("general_rank"))
    if not contextual.ranked and not general.ranked:
        raise StageError(
            "Neither stream produced a principle: add annotations with reasons or approve value statements."
        )
    return grounded.merge_streams(contextual, general, ctx.model, ctx.embedder, ctx.gcai).to_dict()


def gcai_stages(config: GcaiConfig) -> list[Stage]:
    return [
        Stage(
            "contextual_generate",
            "Contextual: principles from preferences + reasons",
            items=_judgement_items,
            compute_batch=_gcai_contextual_generate,
            merge=_merge_proposals,
        ),
        Stage(
            "contextual_cluster",
            "Contextual: embed and cluster",
            compute=_gcai_cluster("contextual"),
        ),
        Stage(
            "contextual_representatives",
            "Contextual: one principle per cluster",
            compute=_gcai_represent("contextual"),
        ),
        Stage(
            "contextual_vote",
            "Contextual: test on training pairs",
            items=_pairs_items,
            compute_batch=_gcai_contextual_vote,
            merge=_merge_votes,
        ),
        Stage(
            "contextual_rank",
            "Contextual: rank by accuracy and relevance",
            compute=_gcai_contextual_rank,
        ),
        Stage(
            "general_generate",
            "General: principles from value statements",
            items=_statement_items,
            compute_batch=_gcai_general_generate,
            merge=_merge_proposals,
        ),
        Stage("general_cluster", "General: embed and cluster", compute=_gcai_cluster("general")),
        Stage(
            "general_representatives",
            "General: one principle per cluster",
            compute=_gcai_represent("general"),
        ),
        Stage("general_rank", "General: rank by participant support", compute=_gcai_general_rank),
        Stage("merge", "Merge both streams, cap and share", compute=_gcai_merge),
    ]


def stages_for(method: str, config: IcaiConfig | GcaiConfig) -> list[Stage]:
    if isinstance(config, GcaiConfig):
        return gcai_stages(config)
    return icai_stages(config)


def final_principles(method: str, ctx: RunInputs) -> list[Principle]:
    """The constitution's principles, best first, from the last stage's artifact."""
    if method == "gcai":
        return list(MergeOutput.from_dict(ctx.output("merge")).principles)
    return list(FilterOutput.from_dict(ctx.output("filter")).principles)


def sample_ids(ids: list[int], limit: int | None, seed: int) -> list[int]:
    """A seeded, order-independent sample of ``limit`` ids (all when limit is None)."""
    ids = sorted(ids)
    if limit is None or limit >= len(ids):
        return ids
    return sorted(random.Random(seed).sample(ids, limit))
