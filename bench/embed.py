"""Local embedding throughput: bundled all-MiniLM-L6-v2 on short principle-like texts.

Reports the model load time, a cold pass (every text embedded) and a cached pass
(every text served by the embedding cache), in texts per second.

    .venv/bin/python bench/embed.py [-n 3000] [--batch-size 64]

With ``--real N``: the first N decisive real AlpacaEval pairs (``--data DIR``), the full
model (torch, 256 tokens) against the fast ONNX embedder at each ``--max-tokens`` (int8,
and with ``--fp32`` also the float graph, which isolates what the token cut costs from
what int8 costs): throughput in texts per wall second and per CPU second (the machine
is shared, so CPU seconds are the stable figure), cosine between full and fast vectors
and between their pair differences, agreement of KMeans clusters of the differences
(adjusted Rand index), and how alike improved 2's triplet selections are (Jaccard of
the pairs shown to the LLM, of the pairs in the selected clusters, and of matched
selected clusters) with the content encoder alone (the preset) and with content, style
and sentiment. The full model with another KMeans seed is printed first: the agreement
a faster encoder can be expected to reach. ``--full-cache FILE`` keeps the full model's
vectors between runs.

    .venv/bin/python bench/embed.py --real 1000 --data DIR [--max-tokens 128 96 64] [--fp32]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.realdata import add_data_argument
from gcai.core.embed import (
    CachedEmbedder,
    MemoryEmbeddingCache,
    SentenceTransformerEmbedder,
)

OPENERS = ["Select the response that", "Prefer the answer that", "Choose the reply that"]
VERBS = [
    "admits", "explains", "avoids", "respects", "acknowledges", "questions", "corrects",
    "summarises", "protects", "clarifies",
]  # fmt: skip
OBJECTS = [
    "uncertainty", "the user's privacy", "harmful stereotypes", "cultural context",
    "factual errors", "the user's autonomy", "safety risks", "opposing views",
    "the original question", "emotional needs",
]  # fmt: skip
TAILS = [
    "without lecturing", "in plain language", "with concrete examples", "briefly",
    "before giving advice", "when the stakes are high", "even if it is inconvenient",
    "without moralising", "using reliable sources", "step by step",
]  # fmt: skip


def principle_texts(n: int) -> list[str]:
    """``n`` distinct short principles (cycled combinations of phrase lists)."""
    combos = itertools.cycle(itertools.product(OPENERS, VERBS, OBJECTS, TAILS))
    return [f"{o} {v} {obj} {t}." for (o, v, obj, t), _ in zip(combos, range(n), strict=False)]


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Lookup:
    """Precomputed vectors served as an encoder (text -> row)."""

    def __init__(self, name: str, texts: list[str], vectors: np.ndarray, standardise: bool):
        self.name, self.standardise = name, standardise
        self._row = {t: i for i, t in enumerate(texts)}
        self._vectors = vectors

    def embed(self, texts):
        return self._vectors[[self._row[t] for t in texts]]


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def selection_overlap(a, b) -> dict[str, float]:
    """How alike two triplet selections are: pairs shown to the LLM, pairs covered by
    the selected clusters, and selected clusters matched one to one (mean best Jaccard
    of their pairs, both directions)."""
    shown = [{pid for dc in s.triplets for pid in dc.triplet} for s in (a, b)]
    covered = [{pid for dc in s.triplets for pid in dc.pair_ids} for s in (a, b)]
    groups = [[set(dc.pair_ids) for dc in s.triplets] for s in (a, b)]

    def best(xs, ys):
        return float(np.mean([max(_jaccard(x, y) for y in ys) for x in xs])) if xs and ys else 0.0

    return {
        "shown": _jaccard(*shown),
        "covered": _jaccard(*covered),
        "clusters": (best(groups[0], groups[1]) + best(groups[1], groups[0])) / 2,
    }


def real_quality(
    data: Path,
    n_pairs: int,
    max_tokens: list[int],
    clusters: int,
    fp32: bool,
    full_cache: Path | None,
) -> int:
    """Full vs fast MiniLM on real pairs: speed, cosine, clusters and improved 2's selection."""
    import hashlib

    from sklearn.metrics import adjusted_rand_score

    from bench.realdata import real_pairs
    from gcai.core.cluster import kmeans_labels
    from gcai.core.encoders import SentimentEncoder, StyleEncoder
    from gcai.core.fast_embed import OnnxMiniLMEmbedder
    from gcai.core.icai import IcaiConfig
    from gcai.core.triplets import default_diff_clusters, select_triplets
    from gcai.core.types import Preference

    pairs = real_pairs(data, n_pairs)
    texts = list(dict.fromkeys(t for p in pairs for t in (p.response_a, p.response_b)))
    tokens = OnnxMiniLMEmbedder(max_tokens=512)._tokenize(texts)
    print(
        f"{len(pairs)} real pairs, {len(texts)} distinct responses, mean "
        f"{np.mean([len(t) for t in texts]):.0f} characters, median "
        f"{np.median([len(t) for t in tokens]):.0f} word pieces ({np.mean([len(t) > 128 for t in tokens]):.0%} "
        f"over 128); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    def measure(embedder, label):
        embedder.embed(["warm-up"])
        wall, cpu = time.perf_counter(), _cpu()
        vectors = embedder.embed(texts)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        print(
            f"{label:<38}{len(texts) / wall:>7.1f} texts/s {len(texts) / cpu:>7.1f} texts/cpu-s"
            f"  (40,000 texts: {40_000 / (len(texts) / cpu) / 2 / 60:.1f} min on 2 free cores)"
        )
        return vectors

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    cached = full_cache and full_cache.is_file() and np.load(full_cache)
    if cached and str(cached["digest"]) == digest:
        full = cached["vectors"]
        print("full: torch fp32, 256 tokens          (vectors from --full-cache)")
    else:
        full = measure(SentenceTransformerEmbedder(), "full: torch fp32, 256 tokens")
        if full_cache:
            np.savez(full_cache, digest=digest, vectors=full)
    row = {t: i for i, t in enumerate(texts)}
    won = [p.preferred is Preference.A for p in pairs]
    chosen = [row[p.response_a if w else p.response_b] for p, w in zip(pairs, won, strict=True)]
    rejected = [row[p.response_b if w else p.response_a] for p, w in zip(pairs, won, strict=True)]
    ks = sorted({clusters, default_diff_clusters(len(pairs), 3)})

    features = {
        "style": StyleEncoder().embed(texts),
        "sentiment": SentimentEncoder().embed(texts),
    }

    def select(content: np.ndarray, names: list[str], seed: int = 0):
        encoders = {"content": _Lookup("content", texts, content, False)}
        encoders.update({n: _Lookup(n, texts, v, True) for n, v in features.items()})
        config = IcaiConfig(method="icai_improved_2", encoders=names, seed=seed)
        return select_triplets(pairs, encoders, config)

    setups = {"content": ["content"], "content+style+sentiment": ["content", "style", "sentiment"]}
    full_sel = {k: select(full, names) for k, names in setups.items()}

    def diffs(vectors):  # preferred minus rejected, as improved 2 clusters them
        return vectors[chosen] - vectors[rejected]

    full_labels = {k: kmeans_labels(diffs(full), k, 0) for k in ks}

    def ari(vectors, seed: int = 0) -> str:
        return ", ".join(
            f"k={k} {adjusted_rand_score(full_labels[k], kmeans_labels(diffs(vectors), k, seed)):.3f}"
            for k in ks
        )

    def report_selection(label: str, other: dict) -> None:
        for key, sel in other.items():
            o = selection_overlap(full_sel[key], sel)
            print(
                f"    {label} [{key}]: {len(sel.triplets)} triplets; Jaccard with full: pairs shown "
                f"{o['shown']:.2f}, pairs covered {o['covered']:.2f}, matched clusters {o['clusters']:.2f}"
            )

    # KMeans on differences is itself unstable: the same vectors with another seed set
    # the agreement a faster encoder can be expected to reach.
    # (with style and sentiment the seed moves their clusters too, so only content's
    # selection has a seed reference).
    print(f"  reference: the full model with KMeans seed 1 instead of 0: ARI {ari(full, 1)}")
    report_selection("full, seed 1", {"content": select(full, ["content"], seed=1)})
    variants = [(t, q) for t in max_tokens for q in ((False, True) if fp32 else (True,))]
    for tokens, quantize in variants:
        kind = "int8" if quantize else "fp32"
        fast = measure(
            OnnxMiniLMEmbedder(max_tokens=tokens, quantize=quantize),
            f"fast: onnx fused {kind}, {tokens} tokens",
        )
        cos = (full * fast).sum(axis=1)
        fd, gd = diffs(full), diffs(fast)
        norms = np.linalg.norm(fd, axis=1) * np.linalg.norm(gd, axis=1)
        diff_cos = (fd * gd).sum(axis=1) / np.maximum(norms, 1e-12)
        print(
            f"    cosine to full: mean {cos.mean():.4f}, 5th percentile {np.percentile(cos, 5):.4f}, "
            f"min {cos.min():.4f}; pair differences: mean {diff_cos.mean():.4f}, 5th percentile "
            f"{np.percentile(diff_cos, 5):.4f}; KMeans of differences vs full: ARI {ari(fast)}"
        )
        report_selection(f"{kind} {tokens}t", {k: select(fast, n) for k, n in setups.items()})
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="texts (default 3000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--real", type=int, default=0, help="real pairs to compare on")
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[128, 96, 64])
    parser.add_argument("--fp32", action="store_true", help="also the float ONNX graph")
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--full-cache", type=Path, default=None)
    add_data_argument(parser)
    args = parser.parse_args()
    if args.real:
        return real_quality(
            args.data, args.real, args.max_tokens, args.clusters, args.fp32, args.full_cache
        )

    texts = principle_texts(args.n)
    inner = SentenceTransformerEmbedder(batch_size=args.batch_size, threads=args.threads)

    started = time.perf_counter()
    inner.embed(["warm-up"])  # loads torch and the weights
    load = time.perf_counter() - started

    embedder = CachedEmbedder(inner, MemoryEmbeddingCache(), batch_size=args.batch_size)
    started = time.perf_counter()
    cold = embedder.embed(texts)
    cold_s = time.perf_counter() - started

    started = time.perf_counter()
    cached = embedder.embed(texts)
    cached_s = time.perf_counter() - started

    import torch

    print(f"model               {inner.name} (bundled, offline), dim {cold.shape[1]}")
    print(
        f"cpu threads         torch {torch.get_num_threads()}, machine {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"texts               {len(texts)} ({len(set(texts))} distinct), batch {args.batch_size}")
    print(f"model load          {load:.2f} s")
    print(f"cold pass           {cold_s:.2f} s  {len(texts) / cold_s:,.0f} texts/s")
    print(f"cached pass         {cached_s:.3f} s  {len(texts) / cached_s:,.0f} texts/s")
    print(f"cache hits/misses   {embedder.hits}/{embedder.misses}")
    same = np.allclose(cold, cached, atol=1e-6)
    norms = np.linalg.norm(cold, axis=1)
    print(f"identical vectors   {same}; norms {norms.min():.4f}..{norms.max():.4f}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
