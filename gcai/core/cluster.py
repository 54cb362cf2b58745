"""Clustering of proposed principles, and the data that flows through it.

Every generation stage (ICAI, GCAI contextual, GCAI general) produces :class:`Proposals`:
principle texts tied to the human input (:class:`Evidence`) behind them. This module
embeds and clusters them with seeded KMeans, orders each cluster's members by closeness
to the centroid, and picks one representative per cluster: a random member (ICAI
baseline), the centroid-closest member (improved ICAI) or an LLM summary of the members
(GCAI default).

Randomness never comes from a shared RNG stream: :func:`stable_seed` derives it from a
hash of (run seed, item id, ...), so results do not depend on how work was batched.
"""

from __future__ import annotations

import hashlib
import random
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gcai.core import prompts
from gcai.core.embed import Embedder
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult
from gcai.core.quality import PRINCIPLE_STRING_SCHEMA
from gcai.core.serial import Stored
from gcai.core.types import Origin, Principle

RepresentativeMode = Literal["random", "centroid", "summary"]
REPRESENTATIVE_MODES: tuple[str, ...] = ("random", "centroid", "summary")
ProposalStatus = Literal["ok", "skipped", "error", "no_values"]

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"principle": {**PRINCIPLE_STRING_SCHEMA, "minLength": 1}},
    "required": ["principle"],
}


# --------------------------------------------------------------------------- seeding


def stable_seed(*parts: object) -> int:
    """A 63-bit integer derived from ``parts`` that is the same in every process.

    Python's ``hash`` is salted per process, so it cannot seed anything that must be
    reproducible across Celery workers.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def stable_rng(*parts: object) -> random.Random:
    """A private RNG for one item, seeded by :func:`stable_seed`."""
    return random.Random(stable_seed(*parts))


# --------------------------------------------------------------------------- evidence


def _uniq(values: Iterable[str]) -> list[str]:
    return sorted({v for v in values if v})


@dataclass(slots=True)
class Evidence(Stored):
    """The human input behind a principle: ids of pairs, annotations, statements, people."""

    pair_ids: list[str] = field(default_factory=list)
    judgement_ids: list[str] = field(default_factory=list)
    statement_ids: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)  # pseudonyms, never identities

    def __post_init__(self) -> None:
        # Sorted unique lists make evidence comparable and its JSON stable.
        self.pair_ids = _uniq(self.pair_ids)
        self.judgement_ids = _uniq(self.judgement_ids)
        self.statement_ids = _uniq(self.statement_ids)
        self.participants = _uniq(self.participants)

    @property
    def is_empty(self) -> bool:
        return not (self.pair_ids or self.judgement_ids or self.statement_ids)

    @staticmethod
    def union(items: Iterable[Evidence]) -> Evidence:
        """All ids of all ``items``."""
        items = list(items)
        return Evidence(
            pair_ids=[x for e in items for x in e.pair_ids],
            judgement_ids=[x for e in items for x in e.judgement_ids],
            statement_ids=[x for e in items for x in e.statement_ids],
            participants=[x for e in items for x in e.participants],
        )

    def counts(self) -> dict[str, int]:
        """How much evidence there is, for a principle's stats."""
        return {
            "n_pairs": len(self.pair_ids),
            "n_judgements": len(self.judgement_ids),
            "n_statements": len(self.statement_ids),
            "n_participants": len(self.participants),
        }


def make_principle(
    text: str, origin: Origin, evidence: Evidence, stats: dict[str, Any]
) -> Principle:
    """A :class:`Principle` carrying ``evidence``."""
    return Principle(
        text=text,
        origin=origin,
        pair_ids=list(evidence.pair_ids),
        judgement_ids=list(evidence.judgement_ids),
        statement_ids=list(evidence.statement_ids),
        participants=list(evidence.participants),
        stats=stats,
    )


# --------------------------------------------------------------------------- proposals


@dataclass(slots=True)
class Proposal(Stored):
    """The principles one LLM call proposed for one input (pair, triplet, annotation...).

    ``status`` records why there may be none: ``skipped`` (input not eligible, e.g. a
    tie in ICAI generation), ``error`` (LLM failure or unusable answer), ``no_values``
    (a statement without values). ``note`` says more (error message, LLM's reason).
    """

    source_id: str
    evidence: Evidence = field(default_factory=Evidence)
    principles: list[str] = field(default_factory=list)
    status: ProposalStatus = "ok"
    note: str = ""


@dataclass(slots=True)
class Proposals(Stored):
    """Output of a generation stage: one :class:`Proposal` per input, sorted by source id."""

    items: list[Proposal] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Canonical order, so merged batches equal a single run whatever the split.
        self.items = sorted(self.items, key=lambda p: p.source_id)

    @classmethod
    def merge(cls, parts: Iterable[Proposals]) -> Proposals:
        """Combine the outputs of several batches (later duplicates of a source win)."""
        by_id: dict[str, Proposal] = {}
        for part in parts:
            for item in part.items:
                by_id[item.source_id] = item
        return cls(list(by_id.values()))

    @property
    def errors(self) -> list[Proposal]:
        return [p for p in self.items if p.status == "error"]

    def counts(self) -> dict[str, int]:
        out = {"inputs": len(self.items), "principles": sum(len(p.principles) for p in self.items)}
        for p in self.items:
            out[p.status] = out.get(p.status, 0) + 1
        return out

    def _json_extra(self) -> dict[str, Any]:
        return {"counts": self.counts()}  # the stage page reads these without the items


_WORD = re.compile(r"[^\W\d_]{2,}")


def is_meaningful(text: str) -> bool:
    """Whether ``text`` can be a principle: some words, not a copied placeholder.

    Small models sometimes echo the format example ("Select the response that ...") or
    emit bare punctuation; such strings must not become principles.
    """
    if text.rstrip().endswith(("...", "\u2026")):
        return False
    return len(_WORD.findall(text)) >= 3


def clean_principles(raw: object, limit: int) -> list[str] | None:
    """Normalise an LLM's list of principle strings; ``None`` if it is not such a list.

    Strips whitespace, list markers and quotes, drops empty, meaningless (see
    :func:`is_meaningful`) and repeated entries and keeps at most ``limit``.
    """
    if not isinstance(raw, list):
        return None
    out: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            return None
        text = " ".join(item.split()).strip(" -*\"'")
        if text and is_meaningful(text) and text not in out:
            out.append(text)
    return out[:limit]


# --------------------------------------------------------------------------- KMeans


def kmeans_labels(vectors: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """Seeded KMeans labels for ``vectors``, numbered by first appearance.

    Asks for at most as many clusters as there are distinct vectors, so fewer items
    than clusters (or many identical texts) is not an error: every distinct item then
    gets its own cluster.
    """
    n = int(vectors.shape[0])
    if n == 0:
        return np.zeros(0, dtype=int)
    distinct = int(np.unique(np.round(vectors, 6), axis=0).shape[0])
    k = max(1, min(n_clusters, distinct))
    if k == 1:
        return np.zeros(n, dtype=int)
    from sklearn.cluster import KMeans  # heavy imports, only when clustering
    from threadpoolctl import threadpool_limits

    # On small inputs OpenMP threads cost more than they save (their spin-waits can make
    # a 5 ms fit take 100 ms on a busy host); large inputs keep the default pool.
    threads = 1 if n * k < 200_000 else None
    with warnings.catch_warnings(), threadpool_limits(limits=threads):
        # Near-duplicate vectors can still trigger sklearn's convergence warning.
        warnings.simplefilter("ignore")
        raw = KMeans(n_clusters=k, random_state=seed % (2**32), n_init=10).fit_predict(
            vectors.astype(np.float64)
        )
    # Renumber so cluster 0 holds the first item, cluster 1 the first item not in 0...
    mapping: dict[int, int] = {}
    for label in raw.tolist():
        mapping.setdefault(label, len(mapping))
    return np.array([mapping[label] for label in raw.tolist()], dtype=int)


def centroid_order(vectors: np.ndarray, members: Sequence[int]) -> list[tuple[int, float]]:
    """``members`` sorted by cosine similarity to their centroid, closest first.

    Returns (index, similarity) pairs; ties keep the input order.
    """
    if not members:
        return []
    sub = vectors[list(members)].astype(np.float64)
    centroid = sub.mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    sims = sub @ (centroid / norm) if norm > 0 else np.ones(len(members))
    order = sorted(range(len(members)), key=lambda i: (-round(float(sims[i]), 9), i))
    return [(members[i], round(float(sims[i]), 6)) for i in order]


def separation_scores(vectors: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Per cluster: distance to the nearest other centroid / mean distance to own centroid.

    High scores mark tight clusters far from the rest. A cluster without spread (one
    distinct point) divides by a tiny floor instead of zero, so scores stay finite and
    JSON-safe; with a single cluster there is nothing to separate from and the score is 0.
    """
    ids = sorted(set(labels.tolist()))
    centroids = {c: vectors[labels == c].astype(np.float64).mean(axis=0) for c in ids}
    out: dict[int, float] = {}
    for c in ids:
        members = vectors[labels == c].astype(np.float64)
        intra = float(np.linalg.norm(members - centroids[c], axis=1).mean())
        others = [float(np.linalg.norm(centroids[c] - centroids[o])) for o in ids if o != c]
        inter = min(others) if others else 0.0
        out[c] = round(inter / max(intra, 1e-6), 6)
    return out


# --------------------------------------------------------------------------- clusters


@dataclass(slots=True)
class ClusterMember(Stored):
    text: str
    source_id: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    similarity: float = 1.0  # cosine similarity to the cluster centroid


@dataclass(slots=True)
class TextCluster(Stored):
    """One cluster; ``members`` are ordered closest-to-centroid first."""

    id: int
    members: list[ClusterMember]

    @property
    def evidence(self) -> Evidence:
        return Evidence.union(m.evidence for m in self.members)

    def distinct_texts(self) -> list[str]:
        """Member texts without repeats, closest-to-centroid first."""
        return list(dict.fromkeys(m.text for m in self.members))


@dataclass(slots=True)
class ClusterOutput(Stored):
    """Output of a cluster stage."""

    clusters: list[TextCluster] = field(default_factory=list)
    n_texts: int = 0
    n_clusters_requested: int = 0
    embedder: str = ""
    seed: int = 0

    def _json_extra(self) -> dict[str, Any]:
        return {"n_clusters": len(self.clusters)}  # read by the stage page


def embed_unique(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts``, calling the embedder once per distinct text."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    uniq = list(dict.fromkeys(texts))
    vecs = np.asarray(embedder.embed(uniq), dtype=np.float32)
    row = {t: i for i, t in enumerate(uniq)}
    return vecs[[row[t] for t in texts]]


def cluster_proposals(
    proposals: Proposals, embedder: Embedder, *, n_clusters: int, seed: int
) -> ClusterOutput:
    """Embed every proposed principle and group them into at most ``n_clusters`` clusters.

    Each principle of each proposal becomes one member (repeated texts from different
    inputs count separately: frequency is signal). Clusters are numbered canonically and
    members sorted closest-to-centroid first, so the centroid representative is
    ``members[0]`` and a summary prompt can show the most typical members.
    """
    if n_clusters < 1:
        raise ValueError("n_clusters: must be at least 1")
    members = [
        ClusterMember(text=text, source_id=p.source_id, evidence=p.evidence)
        for p in Proposals(list(proposals.items)).items
        for text in p.principles
    ]
    name = getattr(embedder, "name", "")
    if not members:
        return ClusterOutput([], 0, n_clusters, name, seed)
    vectors = embed_unique(embedder, [m.text for m in members])
    labels = kmeans_labels(vectors, n_clusters, seed)
    clusters = []
    for c in range(int(labels.max()) + 1):
        idx = [i for i, label in enumerate(labels.tolist()) if label == c]
        ordered = [
            ClusterMember(members[i].text, members[i].source_id, members[i].evidence, sim)
            for i, sim in centroid_order(vectors, idx)
        ]
        clusters.append(TextCluster(id=c, members=ordered))
    return ClusterOutput(clusters, len(members), n_clusters, name, seed)


# --------------------------------------------------------------------------- representatives


@dataclass(slots=True)
class Candidate(Stored):
    """A cluster's representative principle: the candidate that voting and ranking see."""

    id: str
    text: str
    cluster_id: int
    evidence: Evidence = field(default_factory=Evidence)
    cluster_size: int = 0
    method: str = ""  # how the text was chosen: random | centroid | summary | single
    note: str = ""  # e.g. why a summary fell back to the centroid member


@dataclass(slots=True)
class RepresentativeOutput(Stored):
    """Output of a representative stage: one candidate per cluster, in cluster order."""

    candidates: list[Candidate] = field(default_factory=list)

    @property
    def errors(self) -> list[Candidate]:
        return [c for c in self.candidates if c.note]

    @classmethod
    def merge(cls, parts: Iterable[RepresentativeOutput]) -> RepresentativeOutput:
        """Combine batches of clusters."""
        by_id = {c.id: c for part in parts for c in part.candidates}
        return cls(sorted(by_id.values(), key=lambda c: c.cluster_id))


def summary_request(
    cluster: TextCluster,
    *,
    seed: int,
    prompt: str = "cluster_summary_v1",
    max_members: int = 30,
    temperature: float = 0.0,
    max_tokens: int | None = None,
) -> ChatRequest:
    """The LLM request that summarises ``cluster`` into one principle."""
    texts = cluster.distinct_texts()[:max_members]
    messages = prompts.render(prompt, principles="\n".join(f"- {t}" for t in texts))
    return ChatRequest(
        messages=messages,
        schema=SUMMARY_SCHEMA,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        purpose="cluster.summary",
    )


def parse_summary(result: ChatResult) -> tuple[str | None, str]:
    """(principle text, error note) from a summary answer; never raises."""
    if result.error is not None:
        return None, f"summary failed: {type(result.error).__name__}: {result.error}"
    parsed = result.parsed
    text = parsed.get("principle") if isinstance(parsed, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None, "summary failed: answer has no 'principle' string"
    text = " ".join(text.split()).strip(" -*\"'")
    if not is_meaningful(text):
        return None, f"summary failed: {text[:60]!r} is not a usable principle"
    return text, ""


def choose_representatives(
    clusters: Sequence[TextCluster],
    mode: RepresentativeMode,
    *,
    seed: int,
    model: ChatModel | None = None,
    id_prefix: str = "c",
    prompt: str = "cluster_summary_v1",
    max_members: int = 30,
    temperature: float = 0.0,
    max_tokens: int | None = None,
) -> RepresentativeOutput:
    """One :class:`Candidate` per cluster.

    ``random`` picks a member with an RNG seeded by (seed, cluster id) (ICAI baseline);
    ``centroid`` takes the member closest to the centroid (improved ICAI); ``summary``
    asks the LLM to summarise the cluster's distinct member texts (GCAI). A cluster with
    one distinct text needs no summary call. A failed summary falls back to the centroid
    member and records why in ``note``. Clusters are independent, so callers may batch
    them freely.
    """
    if mode not in REPRESENTATIVE_MODES:
        raise ValueError(f"representative: must be one of {REPRESENTATIVE_MODES}, got {mode!r}")
    if mode == "summary" and model is None:
        raise ValueError("model: required for summary representatives")
    candidates: list[Candidate] = []
    to_summarise: list[tuple[int, ChatRequest]] = []
    for cluster in clusters:
        if not cluster.members:
            continue
        base = Candidate(
            id=f"{id_prefix}{cluster.id}",
            text=cluster.members[0].text,
            cluster_id=cluster.id,
            evidence=cluster.evidence,
            cluster_size=len(cluster.members),
            method="centroid",
        )
        distinct = cluster.distinct_texts()
        if mode == "random":
            # A random member, not a random distinct text: frequent texts are likelier.
            pick = stable_rng(seed, "representative", cluster.id).choice(cluster.members)
            base.text = pick.text
            base.method = "random"
        elif mode == "summary":
            if len(distinct) == 1:
                base.method = "single"
            else:
                req = summary_request(
                    cluster,
                    seed=seed,
                    prompt=prompt,
                    max_members=max_members,
                    temperature=temperature,
                    max_tokens=max_tokens,
                )
                to_summarise.append((len(candidates), req))
        candidates.append(base)
    if to_summarise:
        assert model is not None
        results = model.complete_many([req for _, req in to_summarise])
        for (pos, _), result in zip(to_summarise, results, strict=True):
            text, note = parse_summary(result)
            if text is None:
                candidates[pos].note = note
            else:
                candidates[pos].text = text
                candidates[pos].method = "summary"
    return RepresentativeOutput(candidates)
