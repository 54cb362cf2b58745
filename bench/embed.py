"""Local embedding throughput: bundled all-MiniLM-L6-v2 on short principle-like texts.

Reports the model load time, a cold pass (every text embedded) and a cached pass
(every text served by the embedding cache), in texts per second.

    .venv/bin/python bench/embed.py [-n 3000] [--batch-size 64]

With ``--real N``: N distinct real AlpacaEval responses (../shared/data), the full model
(torch, 256 tokens) against the fast ONNX int8 embedder at each ``--max-tokens``:
throughput in texts per wall second and per CPU second (the machine is shared, so CPU
seconds are the stable figure), cosine between full and fast vectors, and agreement of
KMeans clusters of the pairs' embedding differences (adjusted Rand index), with the
time 40,000 responses (20,000 pairs) would take on 2 free cores.

    .venv/bin/python bench/embed.py --real 400 [--max-tokens 128 64]
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


def real_quality(n: int, max_tokens: list[int], clusters: int) -> int:
    """Full vs fast MiniLM on real responses: speed, cosine, cluster agreement."""
    import json

    from sklearn.metrics import adjusted_rand_score

    from gcai.core.cluster import kmeans_labels
    from gcai.core.fast_embed import OnnxMiniLMEmbedder

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpacaeval-reasons"
    rows = [json.loads(line) for path in sorted(data.glob("*.jsonl")) for line in path.open()]
    pairs, seen = [], set()
    for row in rows:  # whole pairs of distinct texts, so differences can be clustered
        a, b = row["response_a"], row["response_b"]
        if a in seen or b in seen or a == b:
            continue
        seen.update((a, b))
        pairs.append((a, b))
        if 2 * len(pairs) >= n:
            break
    texts = [t for pair in pairs for t in pair]
    print(
        f"{len(texts)} real responses ({len(pairs)} pairs), mean {np.mean([len(t) for t in texts]):.0f} "
        f"characters; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    def measure(embedder, label):
        embedder.embed(["warm-up"])
        wall, cpu = time.perf_counter(), _cpu()
        vectors = embedder.embed(texts)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        rate = len(texts) / cpu
        print(
            f"{label:<34}{len(texts) / wall:>8.1f} texts/s{rate:>8.1f} texts/cpu-s"
            f"   40,000 texts: {40_000 / rate / 2 / 60:>5.1f} min on 2 free cores"
        )
        return vectors

    full = measure(SentenceTransformerEmbedder(), "full: torch fp32, 256 tokens")
    full_diffs = full[0::2] - full[1::2]
    full_labels = kmeans_labels(full_diffs, clusters, 0)
    # KMeans on differences is itself unstable: the same vectors with another seed set
    # the agreement a faster encoder can be expected to reach.
    stable = adjusted_rand_score(full_labels, kmeans_labels(full_diffs, clusters, 1))
    print(f"    full model, KMeans seed 0 vs seed 1: ARI {stable:.3f} (the reference)")
    for tokens in max_tokens:
        fast = measure(OnnxMiniLMEmbedder(max_tokens=tokens), f"fast: onnx int8, {tokens} tokens")
        cos = (full * fast).sum(axis=1)
        fast_diffs = fast[0::2] - fast[1::2]
        labels = kmeans_labels(fast_diffs, clusters, 0)
        norms = np.linalg.norm(full_diffs, axis=1) * np.linalg.norm(fast_diffs, axis=1)
        diff_cos = (full_diffs * fast_diffs).sum(axis=1) / np.maximum(norms, 1e-12)
        print(
            f"    cosine to full: mean {cos.mean():.4f}, 5th percentile {np.percentile(cos, 5):.4f}, "
            f"min {cos.min():.4f}; of the pair differences: mean {diff_cos.mean():.4f}; "
            f"difference clusters (k={clusters}) agree with full: "
            f"ARI {adjusted_rand_score(full_labels, labels):.3f}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="texts (default 3000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--real", type=int, default=0, help="real responses to compare on")
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--clusters", type=int, default=10)
    args = parser.parse_args()
    if args.real:
        return real_quality(args.real, args.max_tokens, args.clusters)

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
