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
    seeds: int,
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
    lengths = [len(ids) for ids in OnnxMiniLMEmbedder(max_tokens=512)._tokenize(texts)]
    print(
        f"{len(pairs)} real pairs, {len(texts)} distinct responses: mean "
        f"{np.mean([len(t) for t in texts]):.0f} characters, median {np.median(lengths):.0f} "
        f"word pieces, {np.mean([n > 128 for n in lengths]):.0%} over 128 and "
        f"{np.mean([n > 256 for n in lengths]):.0%} over 256; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    def measure(embedder) -> tuple[np.ndarray, float, float]:
        embedder.embed(["warm-up"])
        wall, cpu = time.perf_counter(), _cpu()
        vectors = embedder.embed(texts)
        return vectors, len(texts) / (time.perf_counter() - wall), len(texts) / (_cpu() - cpu)

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    full_speed: tuple[float, float] | None = None
    if full_cache and full_cache.is_file() and str(np.load(full_cache)["digest"]) == digest:
        full = np.load(full_cache)["vectors"]
    else:
        full, *speed = measure(SentenceTransformerEmbedder())
        full_speed = (speed[0], speed[1])
        if full_cache:
            np.savez(full_cache, digest=digest, vectors=full)

    row = {t: i for i, t in enumerate(texts)}
    won = [p.preferred is Preference.A for p in pairs]
    chosen = [row[p.response_a if w else p.response_b] for p, w in zip(pairs, won, strict=True)]
    rejected = [row[p.response_b if w else p.response_a] for p, w in zip(pairs, won, strict=True)]
    ks = sorted({clusters, default_diff_clusters(len(pairs), 3)})
    features = {"style": StyleEncoder().embed(texts), "sentiment": SentimentEncoder().embed(texts)}
    setups = {"content": ["content"], "all": ["content", "style", "sentiment"]}

    def diffs(vectors: np.ndarray) -> np.ndarray:  # preferred minus rejected, as improved 2
        return vectors[chosen] - vectors[rejected]

    def select(content: np.ndarray, setup: str, seed: int):
        encoders = {"content": _Lookup("content", texts, content, False)}
        encoders.update({n: _Lookup(n, texts, v, True) for n, v in features.items()})
        config = IcaiConfig(method="icai_improved_2", encoders=setups[setup], seed=seed)
        return select_triplets(pairs, encoders, config)

    full_labels = {(k, s): kmeans_labels(diffs(full), k, s) for k in ks for s in range(seeds + 1)}
    full_sel = {(key, s): select(full, key, s) for key in setups for s in range(seeds + 1)}

    def agreement(vectors: np.ndarray, offset: int) -> dict[str, float]:
        """Mean over seeds s of: full at seed s against ``vectors`` at seed s + offset."""
        rows: list[dict[str, float]] = []
        for s in range(seeds):
            other = s + offset
            out = {
                f"ARI k={k}": adjusted_rand_score(
                    full_labels[(k, s)],
                    full_labels[(k, other)] if offset else kmeans_labels(diffs(vectors), k, s),
                )
                for k in ks
            }
            # A seed moves the style and sentiment clusters too, so the reference
            # compares the content-only selection.
            for key in ("content",) if offset else setups:
                theirs = full_sel[(key, other)] if offset else select(vectors, key, s)
                for metric, value in selection_overlap(full_sel[(key, s)], theirs).items():
                    out[f"{key} {metric}"] = value
            rows.append(out)
        return {m: float(np.mean([r[m] for r in rows])) for m in rows[0]}

    columns = [f"ARI k={k}" for k in ks] + [
        f"{key} {m}" for key in setups for m in ("shown", "covered", "clusters")
    ]
    print(
        f"\nAgreement with the full model (torch, 256 tokens), mean of {seeds} KMeans seeds. "
        "ARI: KMeans of the pair differences (preferred - rejected);\nselections of improved 2 "
        "(content alone = the preset, all = content + style + sentiment): Jaccard of the pairs "
        "shown to the LLM,\nof the pairs in the selected clusters, and of selected clusters "
        "matched one to one\n(c: content alone, a: all)."
    )
    header = f"{'encoder':<24}{'texts/s':>8}{'/CPU-s':>8}{'40k min':>8}{'cos':>7}{'cos p5':>7}{'diff':>6}"
    short = {"content": "c", "all": "a", "shown": "shown", "covered": "cover", "clusters": "clust"}
    names = [
        c.replace("ARI k=", "ARI ")
        if c.startswith("ARI")
        else ":".join(short[w] for w in c.split())
        for c in columns
    ]
    print(header + "".join(f"{n:>9}" for n in names))

    def line(label: str, speed: tuple[float, float] | None, vectors: np.ndarray, offset: int):
        cos = (full * vectors).sum(axis=1)
        fd, gd = diffs(full), diffs(vectors)
        norms = np.linalg.norm(fd, axis=1) * np.linalg.norm(gd, axis=1)
        diff_cos = (fd * gd).sum(axis=1) / np.maximum(norms, 1e-12)
        values = agreement(vectors, offset)
        rate = (
            f"{speed[0]:>8.1f}{speed[1]:>8.1f}{40_000 / speed[1] / 2 / 60:>8.1f}"
            if speed
            else f"{'':>24}"
        )
        print(
            f"{label:<24}{rate}{cos.mean():>7.3f}{np.percentile(cos, 5):>7.3f}{diff_cos.mean():>6.2f}"
            + "".join(f"{values.get(c, float('nan')):>9.2f}" for c in columns),
            flush=True,
        )

    line("full, next KMeans seed", full_speed, full, 1)
    for tokens in max_tokens:
        for quantize in (False, True) if fp32 else (True,):
            fast, *speed = measure(OnnxMiniLMEmbedder(max_tokens=tokens, quantize=quantize))
            kind = "int8" if quantize else "fp32"
            line(f"onnx {kind} {tokens} tokens", (speed[0], speed[1]), fast, 0)
    print(
        "\n40k min: minutes for 40,000 such texts on 2 free cores, from the CPU-second rate "
        "(the full model's row is the reference: another KMeans seed, same vectors)."
    )
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
    parser.add_argument("--seeds", type=int, default=3, help="KMeans seeds to average over")
    add_data_argument(parser)
    args = parser.parse_args()
    if args.real:
        return real_quality(
            args.data,
            args.real,
            args.max_tokens,
            args.clusters,
            args.fp32,
            args.full_cache,
            args.seeds,
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
