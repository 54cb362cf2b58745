"""Improved ICAI variant 2's triplet stage at full size: 20,000 pairs, no extrapolation.

Builds ``--pairs`` pairs (default 20,000, i.e. 40,000 responses) from the real AlpacaEval
responses in ``--data`` and runs the whole triplet stage on them exactly as a run does:
``build_embedder`` (the fast ONNX embedder by default) behind a fresh embedding cache,
``build_encoders`` for content, style and sentiment, then ``select_triplets``
(embedding both responses of every pair with every encoder, KMeans of the differences
per encoder, scoring, top-k selection, triplet search). Reported per part: wall
seconds, CPU seconds (all threads of this process) and texts per second, then the
total and the peak resident memory.

The data has about 2,400 distinct responses (mean 1,600 characters), so the 40,000
texts are made as follows, every one distinct and none shorter than its source:

- the distinct responses are shuffled (seeded) once per round and laid end to end;
  consecutive slots form a pair, and a slot is swapped further along when both halves
  would answer the same prompt, so each pair joins responses to different prompts;
- a response's first use is its text unchanged; its k-th reuse (k >= 1) starts with a
  short opener sentence ("Sure.", "Good question.", ..., 20 of them, two joined beyond
  the 20th reuse), so a repeat is a different text to every cache and to the embedder,
  2-10 word pieces longer; the fast embedder still reads its first
  ``max_tokens`` word pieces, so every text costs what a real one does;
- which response is preferred is a seeded coin flip (the labels do not change the cost).

The content embedder's cache starts empty and the bench fails if it reports a hit.

    .venv/bin/python bench/embed_scale.py --data DIR [--pairs 20000] [--embedder onnx|local]
        [--max-tokens 128] [--encoders content style sentiment]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.realdata import add_data_argument, real_rows
from gcai.core import presets
from gcai.core.embed import MemoryEmbeddingCache, build_embedder
from gcai.core.encoders import build_encoders
from gcai.core.icai import IcaiConfig
from gcai.core.triplets import select_triplets, triplet_coverage
from gcai.core.types import Pair, Preference

OPENERS = (
    "Sure.", "Certainly.", "Of course.", "Good question.", "Thanks for asking.",
    "Happy to help.", "Here you go.", "Let me explain.", "Great question.", "Absolutely.",
    "Here is my answer.", "Glad you asked.", "Let me help.", "Okay.", "Right.",
    "Here goes.", "I can help with that.", "Here is a reply.", "All right.", "Gladly.",
)  # fmt: skip


def opener(k: int) -> str:
    """The sentence put before a response's k-th reuse (k >= 1); distinct for every k."""
    if k <= len(OPENERS):
        return OPENERS[k - 1]
    first, second = divmod(k - len(OPENERS) - 1, len(OPENERS))
    return f"{OPENERS[first % len(OPENERS)]} {OPENERS[second]}"


def scale_pairs(data: Path, n_pairs: int, seed: int = 0) -> list[Pair]:
    """``n_pairs`` pairs of distinct real-length texts (see the module docstring)."""
    prompt_of: dict[str, str] = {}
    for row in real_rows(data):
        for key in ("response_a", "response_b"):
            prompt_of.setdefault(row[key], row["prompt"])
    responses = sorted(prompt_of)
    rng = random.Random(seed)
    slots: list[tuple[str, int]] = []  # (response, reuse number)
    round_no = 0
    while len(slots) < 2 * n_pairs + len(responses):
        order = responses[:]
        rng.shuffle(order)
        slots.extend((text, round_no) for text in order)
        round_no += 1
    pairs: list[Pair] = []
    i = 0
    while len(pairs) < n_pairs:
        j = i + 1
        while prompt_of[slots[j][0]] == prompt_of[slots[i][0]]:
            j += 1
        slots[i + 1], slots[j] = slots[j], slots[i + 1]
        (a, ka), (b, kb) = slots[i], slots[i + 1]
        pairs.append(
            Pair(
                id=f"s{len(pairs):06d}",
                prompt=prompt_of[a],
                response_a=f"{opener(ka)} {a}" if ka else a,
                response_b=f"{opener(kb)} {b}" if kb else b,
                preferred=Preference.A if rng.random() < 0.5 else Preference.B,
            )
        )
        i += 2
    return pairs


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Timed:
    """Wraps an encoder and adds up the wall and CPU seconds of its ``embed`` calls."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        # As select_triplets reads it: a cache wrapper keeps the encoder as ``inner``.
        wrapped = getattr(inner, "inner", inner)
        self.standardise = bool(getattr(inner, "standardise", getattr(wrapped, "standardise", 0)))
        self.normalised = bool(getattr(inner, "normalised", True))
        self.wall = self.cpu = 0.0
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        wall, cpu = time.perf_counter(), cpu_seconds()
        out = self.inner.embed(texts)
        self.wall += time.perf_counter() - wall
        self.cpu += cpu_seconds() - cpu
        self.texts += len(texts)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--embedder", choices=["onnx", "local"], default="onnx")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=presets.get("icai_improved_2").settings.get("fast_content_tokens"),
        help="word pieces the onnx embedder reads (default: the improved-2 preset's)",
    )
    parser.add_argument("--encoders", nargs="+", default=["content", "style", "sentiment"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(
        f"machine: {os.cpu_count()} cores, this process may use {len(os.sched_getaffinity(0))}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    rows: list[tuple[str, float, float]] = []

    def part(name: str, wall: float, cpu: float, note: str = "") -> None:
        rows.append((name, wall, cpu))
        print(f"  {name:<34}{wall:>9.1f} s wall {cpu:>9.1f} CPU-s  {note}", flush=True)

    started, cpu = time.perf_counter(), cpu_seconds()
    pairs = scale_pairs(args.data, args.pairs, args.seed)
    texts = [t for p in pairs for t in (p.response_a, p.response_b)]
    if len(set(texts)) != len(texts):
        raise SystemExit("bench error: the generated texts are not distinct")
    part(
        "build pairs",
        time.perf_counter() - started,
        cpu_seconds() - cpu,
        f"{len(pairs)} pairs, {len(texts)} distinct texts, mean "
        f"{np.mean([len(t) for t in texts]):.0f} characters",
    )

    content = build_embedder(
        args.embedder, max_tokens=args.max_tokens, cache=MemoryEmbeddingCache()
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    content.inner.embed(["warm-up"])  # export (first use on a machine) and session load
    part("load content model", time.perf_counter() - started, cpu_seconds() - cpu, content.name)

    built = build_encoders(args.encoders, content=content, cache=MemoryEmbeddingCache())
    timed = {name: Timed(encoder) for name, encoder in built.items()}
    config = IcaiConfig(method="icai_improved_2", encoders=list(args.encoders), seed=args.seed)
    started, cpu = time.perf_counter(), cpu_seconds()
    selection = select_triplets(pairs, timed, config)
    stage_wall, stage_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    for name, t in timed.items():
        part(
            f"embed: {name}",
            t.wall,
            t.cpu,
            f"{t.texts} texts, {t.texts / max(t.wall, 1e-9):.1f} texts/s, "
            f"{t.texts / max(t.cpu, 1e-9):.1f} texts/CPU-s ({t.name})",
        )
    part(
        "cluster + score + select",
        stage_wall - sum(t.wall for t in timed.values()),
        stage_cpu - sum(t.cpu for t in timed.values()),
        f"KMeans k={selection.clusters and max(c.cluster for c in selection.clusters) + 1} "
        f"x {len(args.encoders)} encoders",
    )
    if content.hits:
        raise SystemExit(f"bench error: {content.hits} embedding cache hits")
    total_wall = sum(r[1] for r in rows)
    total_cpu = sum(r[2] for r in rows)
    embed = timed.get("content")
    print(f"  {'total':<34}{total_wall:>9.1f} s wall {total_cpu:>9.1f} CPU-s")
    print(f"  triplet stage (select_triplets)   {stage_wall:>9.1f} s wall {stage_cpu:>9.1f} CPU-s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:.0f} MB; load average now {os.getloadavg()[0]:.2f}")
    if embed is not None:
        print(
            f"content embedding of {embed.texts} texts: {embed.wall / 60:.1f} min wall "
            f"({embed.cpu / 60:.1f} CPU-min; cache misses {content.misses}, hits {content.hits})"
        )
    coverage = triplet_coverage(selection)
    print(
        f"selection: {coverage['selected']} triplets (top k {selection.top_k} of "
        f"{len(selection.clusters)} clusters), per encoder {coverage['per_encoder']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
