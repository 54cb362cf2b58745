"""Grounded Constitutional AI (GCAI, arXiv 2601.18760).

Two streams of principles, each grounded in what people said, merged into one
constitution in which every principle lists the human input behind it.

Contextual stream (preferences with reasons):
  :func:`contextual_generate` (per annotation with a reason, 1..K principles stating the
  person's reason as a general rule) -> :func:`cluster_stream` -> :func:`represent`
  (LLM summary by default) -> :func:`vote_contextual` on the training pairs, exactly as
  ICAI -> :func:`rank_contextual`: candidates with enough support (``for`` on at least
  ``contextual_min_support`` of the voted pairs) and for > against, ranked by accuracy
  (predictive power), then relevance.

General stream (value statements):
  :func:`general_generate` (per approved statement, 0..K principles; statements without
  values yield none and are recorded as such) -> :func:`cluster_stream` ->
  :func:`represent` -> :func:`rank_general` by support (distinct participants).

:func:`merge_streams`: union of both rankings; cross-stream near-duplicates (cosine
similarity >= threshold, confirmed by an LLM check) become one principle of origin
``both`` with the union of the evidence; capped at N with a share per stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

from gcai.core import prompts
from gcai.core.cluster import (
    REPRESENTATIVE_MODES,
    ClusterOutput,
    Evidence,
    Proposal,
    Proposals,
    RepresentativeOutput,
    choose_representatives,
    clean_principles,
    cluster_proposals,
    embed_unique,
    make_principle,
)
from gcai.core.embed import Embedder
from gcai.core.grounded_rank import Ranked, StreamRanking, rank_contextual, rank_general
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult
from gcai.core.quality import PRINCIPLE_STRING_SCHEMA
from gcai.core.serial import Stored
from gcai.core.types import Constitution, Judgement, Origin, Pair, Preference, Principle, Statement
from gcai.core.voting import (
    AGGREGATIONS,
    VoteConfig,
    VoteOutput,
    require_float,
    require_int,
    require_prompt,
    settings_from_dict,
    vote,
)

STREAMS: tuple[str, ...] = ("contextual", "general")

CONTEXTUAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "principles": {"type": "array", "items": PRINCIPLE_STRING_SCHEMA, "minItems": 1}
    },
    "required": ["principles"],
}
GENERAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "has_values": {"type": "boolean"},
        "reason": {"type": "string"},
        "principles": {"type": "array", "items": PRINCIPLE_STRING_SCHEMA},
    },
    "required": ["has_values", "principles"],
}
SAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"same": {"type": "boolean"}},
    "required": ["same"],
}


# --------------------------------------------------------------------------- config


@dataclass(slots=True)
class GcaiConfig(Stored):
    """Settings of a GCAI run."""

    method: str = "gcai"
    seed: int = 0
    # contextual stream
    principles_per_judgement: int = 3
    contextual_clusters: int = 10
    contextual_representative: str = "summary"  # summary | centroid | random
    contextual_prompt: str = "gcai_contextual_v1"
    drop_contradicted: bool = True  # drop contextual principles with for <= against
    # "for" votes a contextual principle needs, as a share of voted pairs (as ICAI's
    # min_support): without it, 1 for / 0 against would outrank 900 / 100.
    contextual_min_support: float = 0.1
    # general stream
    principles_per_statement: int = 3
    general_clusters: int = 10
    general_representative: str = "summary"
    general_prompt: str = "gcai_general_v1"
    min_participants: int = 1  # general principles need this many distinct participants
    summary_prompt: str = "cluster_summary_v1"
    # vote (contextual stream, on the training pairs)
    vote_seeds: int = 3
    max_candidates_per_call: int = 40
    aggregation: str = "unanimous"  # across vote_seeds, as ICAI
    vote_prompt: str = "icai_vote_v1"
    # merge
    similarity_threshold: float = 0.8
    confirm_duplicates: bool = True  # ask the LLM before merging a similar pair
    merge_prompt: str = "gcai_same_v1"
    max_principles: int = 10
    contextual_share: float = 0.5
    # LLM
    temperature: float = 0.0
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if self.method != "gcai":
            raise ValueError(f"method: must be 'gcai', got {self.method!r}")
        require_int("seed", self.seed, 0)
        require_int("principles_per_judgement", self.principles_per_judgement, 1)
        require_int("contextual_clusters", self.contextual_clusters, 1)
        for name in ("contextual_representative", "general_representative"):
            if getattr(self, name) not in REPRESENTATIVE_MODES:
                raise ValueError(f"{name}: must be one of {REPRESENTATIVE_MODES}")
        for name in ("contextual_prompt", "general_prompt", "summary_prompt", "vote_prompt"):
            require_prompt(name, getattr(self, name))
        require_prompt("merge_prompt", self.merge_prompt)
        for name in ("drop_contradicted", "confirm_duplicates"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be true or false")
        require_float("contextual_min_support", self.contextual_min_support, 0.0, 1.0)
        require_int("principles_per_statement", self.principles_per_statement, 1)
        require_int("general_clusters", self.general_clusters, 1)
        require_int("min_participants", self.min_participants, 1)
        require_int("vote_seeds", self.vote_seeds, 1)
        require_int("max_candidates_per_call", self.max_candidates_per_call, 1)
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: must be one of {AGGREGATIONS}")
        require_float("similarity_threshold", self.similarity_threshold, -1.0, 1.0)
        require_int("max_principles", self.max_principles, 1)
        require_float("contextual_share", self.contextual_share, 0.0, 1.0)
        require_float("temperature", self.temperature, 0.0)
        require_int("max_tokens", self.max_tokens, 1, optional=True)

    def voting(self) -> VoteConfig:
        """The vote-stage settings (the same machinery as ICAI)."""
        return VoteConfig.of(self)

    def quotas(self) -> tuple[int, int]:
        """(contextual, general) slots before unused share is filled from the other stream."""
        n_ctx = int(self.max_principles * self.contextual_share + 0.5)  # round half up
        return n_ctx, self.max_principles - n_ctx

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        # Settings typed by people: unknown keys are errors and validate() checks values.
        return settings_from_dict(cls, data, "GCAI")


def _request(
    messages: Any, schema: dict[str, Any], purpose: str, config: GcaiConfig
) -> ChatRequest:
    return ChatRequest(
        messages=messages,
        schema=schema,
        temperature=config.temperature,
        seed=config.seed,
        max_tokens=config.max_tokens,
        purpose=purpose,
    )


def _error_note(result: ChatResult) -> str:
    return f"{type(result.error).__name__}: {result.error}" if result.error else ""


# --------------------------------------------------------------------------- contextual stream


_VERDICTS = {
    Preference.A: "They preferred the chosen response over the rejected response.",
    Preference.B: "They preferred the chosen response over the rejected response.",
    Preference.TIE: "They judged both responses to be equally good.",
    Preference.BOTH_BAD: "They judged both responses to be bad.",
}


def _contextual_request(j: Judgement, config: GcaiConfig) -> ChatRequest:
    pair = j.pair
    label = Preference(j.preferred)
    if label.is_decisive:
        first_label, second_label = "chosen_response", "rejected_response"
        first, second = (
            (pair.response_a, pair.response_b)
            if label is Preference.A
            else (pair.response_b, pair.response_a)
        )
    else:
        first_label, second_label = "response_1", "response_2"
        first, second = pair.response_a, pair.response_b
    messages = prompts.render(
        config.contextual_prompt,
        prompt_block=prompts.block("prompt", pair.prompt),
        first_label=first_label,
        first=first,
        second_label=second_label,
        second=second,
        verdict=_VERDICTS[label],
        reason=j.reason.strip(),
        k=str(config.principles_per_judgement),
    )
    return _request(messages, CONTEXTUAL_SCHEMA, "gcai.contextual", config)


def contextual_generate(
    judgements: Sequence[Judgement], model: ChatModel, config: GcaiConfig
) -> Proposals:
    """Contextual stage 1, one batch: 1..K principles per annotation that has a reason.

    Annotations without a reason, or without a verdict, are recorded as ``skipped``;
    LLM failures as ``error``. Evidence: the annotation, its pair and its annotator.
    """
    out: list[Proposal] = []
    pending: list[tuple[Proposal, ChatRequest]] = []
    for j in judgements:
        evidence = Evidence(pair_ids=[j.pair.id], judgement_ids=[j.id], participants=[j.annotator])
        proposal = Proposal(j.id, evidence)
        if not j.reason.strip():
            proposal.status, proposal.note = "skipped", "no reason given"
            out.append(proposal)
        elif Preference(j.preferred) is Preference.NONE:
            proposal.status, proposal.note = "skipped", "no verdict given"
            out.append(proposal)
        else:
            pending.append((proposal, _contextual_request(j, config)))
    results = model.complete_many([r for _, r in pending]) if pending else []
    for (proposal, _), result in zip(pending, results, strict=True):
        note = _error_note(result)
        raw = result.parsed.get("principles") if isinstance(result.parsed, dict) else None
        cleaned = None if note else clean_principles(raw, config.principles_per_judgement)
        if note or not cleaned:
            proposal.status = "error"
            proposal.note = note or "answer has no list of principle strings"
        else:
            proposal.principles = cleaned
        out.append(proposal)
    return Proposals(out)


# --------------------------------------------------------------------------- general stream


def _general_request(s: Statement, config: GcaiConfig) -> ChatRequest:
    messages = prompts.render(
        config.general_prompt,
        question_block=prompts.block("question", s.question),
        statement=s.text.strip(),
        k=str(config.principles_per_statement),
    )
    return _request(messages, GENERAL_SCHEMA, "gcai.general", config)


def general_generate(
    statements: Sequence[Statement], model: ChatModel, config: GcaiConfig
) -> Proposals:
    """General stage 1, one batch: 0..K principles per (approved) value statement.

    A statement the LLM finds off-topic or empty of values gets ``status="no_values"``
    and the LLM's reason in ``note``; an empty statement is not sent at all. LLM
    failures are ``error``. Evidence: the statement and its participant.
    """
    out: list[Proposal] = []
    pending: list[tuple[Proposal, ChatRequest]] = []
    for s in statements:
        proposal = Proposal(s.id, Evidence(statement_ids=[s.id], participants=[s.participant]))
        if not s.text.strip():
            proposal.status, proposal.note = "no_values", "empty statement"
            out.append(proposal)
        else:
            pending.append((proposal, _general_request(s, config)))
    results = model.complete_many([r for _, r in pending]) if pending else []
    for (proposal, _), result in zip(pending, results, strict=True):
        note = _error_note(result)
        parsed = result.parsed if isinstance(result.parsed, dict) else None
        if note or parsed is None or not isinstance(parsed.get("has_values"), bool):
            proposal.status = "error"
            proposal.note = note or "answer has no 'has_values' flag"
            out.append(proposal)
            continue
        reason = parsed.get("reason")
        reason = " ".join(reason.split()) if isinstance(reason, str) else ""
        cleaned = clean_principles(parsed.get("principles"), config.principles_per_statement)
        if not parsed["has_values"]:
            # Trust the verdict over stray principles: the statement holds no values.
            proposal.status, proposal.note = "no_values", reason or "no values stated"
        elif cleaned is None:
            proposal.status, proposal.note = "error", "answer has no list of principle strings"
        elif not cleaned:
            proposal.status, proposal.note = "no_values", reason or "no actionable principle"
        else:
            proposal.principles, proposal.note = cleaned, reason
        out.append(proposal)
    return Proposals(out)


# --------------------------------------------------------------------------- shared stages


def cluster_stream(
    proposals: Proposals, embedder: Embedder, config: GcaiConfig, *, stream: str
) -> ClusterOutput:
    """Stage 2 of either stream: embed and cluster (default 10 clusters per stream)."""
    if stream not in STREAMS:
        raise ValueError(f"stream: must be one of {STREAMS}")
    n = config.contextual_clusters if stream == "contextual" else config.general_clusters
    return cluster_proposals(proposals, embedder, n_clusters=n, seed=config.seed)


def represent(
    clusters: ClusterOutput, model: ChatModel | None, config: GcaiConfig, *, stream: str
) -> RepresentativeOutput:
    """Stage 3 of either stream: one principle per cluster (LLM summary by default).

    Candidate ids are ``ctx<cluster>`` / ``gen<cluster>``.
    """
    if stream not in STREAMS:
        raise ValueError(f"stream: must be one of {STREAMS}")
    mode = (
        config.contextual_representative
        if stream == "contextual"
        else config.general_representative
    )
    return choose_representatives(
        clusters.clusters,
        mode,  # type: ignore[arg-type]
        seed=config.seed,
        model=model,
        id_prefix="ctx" if stream == "contextual" else "gen",
        prompt=config.summary_prompt,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
    )


def vote_contextual(
    pairs: Sequence[Pair],
    candidates: RepresentativeOutput,
    model: ChatModel,
    config: GcaiConfig,
) -> VoteOutput:
    """Contextual stage 4, one batch of training pairs: ICAI's voting, unchanged."""
    return vote(pairs, candidates.candidates, model, config.voting())


# --------------------------------------------------------------------------- merge


@dataclass(slots=True)
class DuplicateCheck(Stored):
    """A cross-stream pair above the similarity threshold and the LLM's verdict on it."""

    contextual_id: str
    general_id: str
    similarity: float
    same: bool | None = None  # None: the check failed, so the pair is not merged
    merged: bool = False
    note: str = ""


@dataclass(slots=True)
class MergeOutput(Stored):
    """Output of the merge stage: the constitution's principles and every decision."""

    principles: list[Principle] = field(default_factory=list)
    checks: list[DuplicateCheck] = field(default_factory=list)
    # candidate id -> why it is not in the constitution
    dropped: dict[str, str] = field(default_factory=dict)


def _same_request(first: str, second: str, config: GcaiConfig) -> ChatRequest:
    messages = prompts.render(config.merge_prompt, first=first, second=second)
    return _request(messages, SAME_SCHEMA, "gcai.merge", config)


def find_duplicates(
    contextual: StreamRanking,
    general: StreamRanking,
    model: ChatModel | None,
    embedder: Embedder,
    config: GcaiConfig,
) -> list[DuplicateCheck]:
    """Cross-stream pairs with cosine similarity >= threshold, checked by the LLM.

    Confirmed pairs are then matched one-to-one, most similar first (``merged``).
    """
    ctx = [r.candidate for r in contextual.ranked]
    gen = [r.candidate for r in general.ranked]
    if not ctx or not gen:
        return []
    vecs = embed_unique(embedder, [c.text for c in ctx] + [g.text for g in gen]).astype(np.float64)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = vecs / np.where(norms > 0, norms, 1.0)
    sims = vecs[: len(ctx)] @ vecs[len(ctx) :].T
    checks = [
        DuplicateCheck(c.id, g.id, round(float(sims[i, j]), 6), True)
        for i, c in enumerate(ctx)
        for j, g in enumerate(gen)
        if sims[i, j] >= config.similarity_threshold - 1e-9
    ]
    checks.sort(key=lambda d: (-d.similarity, d.contextual_id, d.general_id))
    if checks and config.confirm_duplicates:
        if model is None:
            raise ValueError("model: required to confirm duplicates")
        text = {c.id: c.text for c in ctx + gen}
        results = model.complete_many(
            [_same_request(text[d.contextual_id], text[d.general_id], config) for d in checks]
        )
        for d, result in zip(checks, results, strict=True):
            parsed = result.parsed if isinstance(result.parsed, dict) else None
            if (
                result.error is not None
                or parsed is None
                or not isinstance(parsed.get("same"), bool)
            ):
                d.same = None
                d.note = _error_note(result) or "answer has no 'same' flag"
            else:
                d.same = parsed["same"]
    used: set[str] = set()
    for d in checks:
        if d.same and d.contextual_id not in used and d.general_id not in used:
            d.merged = True
            used.update((d.contextual_id, d.general_id))
    return checks


def merge_streams(
    contextual: StreamRanking,
    general: StreamRanking,
    model: ChatModel | None,
    embedder: Embedder,
    config: GcaiConfig,
) -> MergeOutput:
    """Merge stage: one constitution from both rankings.

    A merged pair keeps the contextual wording (the one that was voted on), origin
    ``both``, the union of the evidence and both streams' statistics. The cap takes
    each stream's quota (``contextual_share`` of N, rounded half up) best first; a merged
    principle counts for the stream that picks it first; unused slots are filled from
    the other stream. The result alternates contextual and general picks, best first.
    Principles without evidence are never emitted.
    """
    checks = find_duplicates(contextual, general, model, embedder, config)
    partner = {d.contextual_id: d.general_id for d in checks if d.merged}
    partner.update({g: c for c, g in list(partner.items())})
    ctx_by_id = {r.candidate.id: r for r in contextual.ranked}
    gen_by_id = {r.candidate.id: r for r in general.ranked}

    def key(cid: str) -> str:
        # A merged principle has one identity in both lists: its contextual id.
        return cid if cid in ctx_by_id else partner.get(cid, cid)

    ctx_order = [key(r.candidate.id) for r in contextual.ranked]
    gen_order = [key(r.candidate.id) for r in general.ranked]
    n_ctx, n_gen = config.quotas()
    taken: list[str] = []
    picks: dict[str, list[str]] = {"contextual": [], "general": []}

    def take(order: list[str], stream: str, limit: int) -> None:
        for k in order:
            if len(taken) >= config.max_principles or len(picks[stream]) >= limit:
                return
            if k not in taken:
                taken.append(k)
                picks[stream].append(k)

    take(ctx_order, "contextual", n_ctx)
    take(gen_order, "general", n_gen)
    take(ctx_order, "contextual", config.max_principles)  # fill the general stream's unused share
    take(gen_order, "general", config.max_principles)  # and the other way round

    ordered: list[str] = []
    for i in range(max(len(picks["contextual"]), len(picks["general"]))):
        for stream in STREAMS:
            if i < len(picks[stream]):
                ordered.append(picks[stream][i])

    principles: list[Principle] = []
    dropped: dict[str, str] = {}
    for k in ordered:
        principle = _principle(k, ctx_by_id, gen_by_id, partner)
        if principle is None:
            dropped[k] = "no evidence"
            continue
        principle.stats["rank"] = len(principles) + 1
        principles.append(principle)
    for k in dict.fromkeys(ctx_order + gen_order):
        if k not in taken:
            dropped[k] = "beyond the cap"
    return MergeOutput(principles, checks, dropped)


def _principle(
    k: str,
    ctx_by_id: Mapping[str, Ranked],
    gen_by_id: Mapping[str, Ranked],
    partner: Mapping[str, str],
) -> Principle | None:
    ctx = ctx_by_id.get(k)
    gen = gen_by_id.get(partner.get(k, "")) if ctx else gen_by_id.get(k)
    if ctx and gen:
        evidence = Evidence.union([ctx.candidate.evidence, gen.candidate.evidence])
        stats = {
            **ctx.stats,
            "support": gen.stats["support"],
            "candidate_id": ctx.candidate.id,
            "general_candidate_id": gen.candidate.id,
            "general_text": gen.candidate.text,
            **evidence.counts(),
        }
        origin, text = Origin.BOTH, ctx.candidate.text
    elif ctx:
        evidence, stats = ctx.candidate.evidence, dict(ctx.stats)
        origin, text = Origin.CONTEXTUAL, ctx.candidate.text
    elif gen:
        evidence, stats = gen.candidate.evidence, dict(gen.stats)
        origin, text = Origin.GENERAL, gen.candidate.text
    else:
        return None
    if evidence.is_empty:
        return None
    return make_principle(text, origin, evidence, stats)


# --------------------------------------------------------------------------- whole run


@dataclass(slots=True)
class GcaiResult(Stored):
    """Every stage's output of a library run, and the resulting constitution."""

    config: GcaiConfig
    contextual_proposals: Proposals
    contextual_clusters: ClusterOutput
    contextual_candidates: RepresentativeOutput
    contextual_votes: VoteOutput
    contextual_ranking: StreamRanking
    general_proposals: Proposals
    general_clusters: ClusterOutput
    general_candidates: RepresentativeOutput
    general_ranking: StreamRanking
    merged: MergeOutput

    @property
    def constitution(self) -> Constitution:
        return Constitution(principles=list(self.merged.principles), title="gcai")


def run_gcai(
    judgements: Sequence[Judgement],
    statements: Sequence[Statement],
    training_pairs: Sequence[Pair],
    model: ChatModel,
    embedder: Embedder,
    config: GcaiConfig | None = None,
) -> GcaiResult:
    """Run every GCAI stage in one process (library use; the web app runs them as tasks).

    ``statements`` should be the approved ones; ``training_pairs`` are what contextual
    principles are voted on.
    """
    config = config or GcaiConfig()
    c_props = contextual_generate(judgements, model, config)
    c_clusters = cluster_stream(c_props, embedder, config, stream="contextual")
    c_cands = represent(c_clusters, model, config, stream="contextual")
    c_votes = vote_contextual(training_pairs, c_cands, model, config)
    c_rank = rank_contextual(c_cands, c_votes, config)
    g_props = general_generate(statements, model, config)
    g_clusters = cluster_stream(g_props, embedder, config, stream="general")
    g_cands = represent(g_clusters, model, config, stream="general")
    g_rank = rank_general(g_cands, config)
    merged = merge_streams(c_rank, g_rank, model, embedder, config)
    return GcaiResult(
        config,
        c_props,
        c_clusters,
        c_cands,
        c_votes,
        c_rank,
        g_props,
        g_clusters,
        g_cands,
        g_rank,
        merged,
    )
