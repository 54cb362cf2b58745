"""Local embedding throughput: bundled all-MiniLM-L6-v2 on short principle-like texts.

Reports the model load time, a cold pass (every text embedded) and a cached pass
(every text served by the embedding cache), in texts per second.

    .venv/bin/python bench/embed.py [-n 3000] [--batch-size 64]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="texts (default 3000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()

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
