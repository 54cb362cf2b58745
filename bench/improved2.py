"""Improved ICAI variant 2 on real AlpacaEval pairs: wall time per stage, and the triplet
stage at scale.

Part 1 (``--pairs``, default 800): every stage of ``icai_improved_2`` with the content,
style and sentiment encoders on real pairs from ../shared/data/alpacaeval-reasons, the
real OpenAI client against the fake server (each answer after a random 0-50 ms, a
scripted rule-following judge), concurrency 16.

Part 2 (``--scale``, e.g. 20000): the triplet stage (embed both responses with every
encoder, cluster the differences, pick triplets) for that many pairs sampled from the
real ones. Embedding throughput is measured on ``--embed-sample`` distinct real texts
(CPU seconds per text, so the shared machine's load does not distort it) and
extrapolated to all responses; clustering and selection run at full size on the
measured vectors of the sampled pairs (plus a little noise so copies are not duplicates).

    .venv/bin/python bench/improved2.py [--pairs 800] [--embedder onnx|local]
        [--scale 20000] [--embed-sample 2000] [--skip-part1]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from gcai.core import icai
from gcai.core.embed import Embedder, SentenceTransformerEmbedder
from gcai.core.encoders import SentimentEncoder, StyleEncoder, build_encoders
from gcai.core.fast_embed import OnnxMiniLMEmbedder
from gcai.core.icai import IcaiConfig
from gcai.core.llm.cache import MemoryCache
from gcai.core.llm.openai_client import OpenAIChatModel
from gcai.core.triplets import select_triplets, triplet_coverage
from gcai.core.types import Pair, Preference
from tests.constitutions.judge_server import judge_responder
from tests.core.scripted import Judge, Rule
from tests.fakes import FakeOpenAIServer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpacaeval-reasons"
ENCODERS = ["content", "style", "sentiment"]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


# What the scripted judge believes about real answers: simple, checkable properties.
REAL_RULES = (
    Rule(
        "detailed",
        "Select the response that is more detailed.",
        ("Select the detailed response.",),
        lambda t: len(_words(t)) > 250,
    ),
    Rule(
        "numbered",
        "Select the response that uses a numbered list.",
        ("Select the response organised as numbered steps.",),
        lambda t: bool(re.search(r"^\s*\d+\.\s", t, re.MULTILINE)),
    ),
    Rule(
        "bold",
        "Select the response that highlights key terms in bold.",
        ("Select the response that uses bold headings.",),
        lambda t: "**" in t,
    ),
)


def real_pairs(limit: int | None = None) -> list[Pair]:
    """Decisive AlpacaEval pairs from every file, in file order."""
    pairs = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            row = json.loads(line)
            if row.get("preferred") not in ("a", "b"):
                continue
            pairs.append(
                Pair(
                    id=str(row["id"]),
                    prompt=row["prompt"],
                    response_a=row["response_a"],
                    response_b=row["response_b"],
                    preferred=Preference(row["preferred"]),
                )
            )
    return pairs[:limit] if limit else pairs


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def content_embedder(kind: str) -> Embedder:
    return OnnxMiniLMEmbedder() if kind == "onnx" else SentenceTransformerEmbedder()


def part1(n_pairs: int, kind: str, concurrency: int) -> None:
    pairs = real_pairs(n_pairs)
    config = IcaiConfig(method="icai_improved_2", encoders=ENCODERS)
    judge = judge_responder(Judge(REAL_RULES))
    rng = random.Random(0)

    def respond(request):
        time.sleep(rng.uniform(0.0, 0.05))
        return judge(request)

    embedder = content_embedder(kind)
    embedder.embed(["warm-up"])  # load (and for onnx export) outside the timing
    with FakeOpenAIServer(responder=respond) as server:
        model = OpenAIChatModel(
            model="fake-judge",
            base_url=server.base_url,
            api_key="x",
            concurrency=concurrency,
            cache=MemoryCache(),
        )
        print(
            f"Improved 2, {len(pairs)} real AlpacaEval pairs, encoders {'+'.join(ENCODERS)} "
            f"(content: {embedder.name}), fake server 0-50 ms, concurrency {concurrency}"
        )
        print(f"{'stage':<16}{'calls':>7}{'wall s':>9}{'cpu s':>9}")
        total_wall = 0.0
        total_calls = 0

        def stage(name, fn):
            nonlocal total_wall, total_calls
            before = server.chat_calls
            started, cpu = time.perf_counter(), cpu_seconds()
            out = fn()
            wall = time.perf_counter() - started
            calls = server.chat_calls - before
            total_wall += wall
            total_calls += calls
            print(f"{name:<16}{calls:>7}{wall:>9.1f}{cpu_seconds() - cpu:>9.1f}")
            return out

        encoders = build_encoders(ENCODERS, content=embedder)
        triplets = stage("triplets", lambda: select_triplets(pairs, encoders, config))
        units = icai.generation_units(pairs, config, triplets)
        proposals = stage("generate", lambda: icai.generate(units, model, config))
        clusters = stage(
            "cluster",
            lambda: icai.cluster_principles(proposals, embedder, config, n_pairs=len(pairs)),
        )
        reps = stage(
            "representatives", lambda: icai.select_representatives(clusters, model, config)
        )
        votes = stage("vote", lambda: icai.vote(pairs, reps, model, config))
        filtered = stage("filter", lambda: icai.filter_principles(reps, votes, embedder, config))
        print(f"{'total':<16}{total_calls:>7}{total_wall:>9.1f}")
        coverage = triplet_coverage(triplets)
        print(
            f"triplets: {coverage['selected']} selected (top k {triplets.top_k}) per encoder "
            f"{coverage['per_encoder']}; {len(reps.candidates)} candidates; "
            f"{len(filtered.principles)} principles:"
        )
        for p in filtered.principles:
            print(f"  - {p.text}  (for {p.stats.get('for')}, against {p.stats.get('against')})")


def part2(n_pairs: int, kind: str, sample: int) -> None:
    base = real_pairs()
    texts = list(dict.fromkeys(t for p in base for t in (p.response_a, p.response_b)))[:sample]
    print(
        f"\nTriplet stage at {n_pairs} pairs ({2 * n_pairs} responses); "
        f"throughput measured on {len(texts)} distinct real responses "
        f"(mean {np.mean([len(t) for t in texts]):.0f} characters)"
    )
    content = content_embedder(kind)
    content.embed(["warm-up"])
    vectors: dict[str, dict[str, np.ndarray]] = {}
    per_text: dict[str, float] = {}
    for name, encoder in (
        ("content", content),
        ("style", StyleEncoder()),
        ("sentiment", SentimentEncoder()),
    ):
        started, cpu = time.perf_counter(), cpu_seconds()
        rows = encoder.embed(texts)
        wall, used = time.perf_counter() - started, cpu_seconds() - cpu
        per_text[name] = used / len(texts)
        vectors[name] = dict(zip(texts, rows, strict=True))
        label = getattr(encoder, "name", name)
        print(
            f"  {name:<10}{label:<34}{len(texts) / wall:>8.1f} texts/s wall "
            f"{len(texts) / used:>8.1f} texts/cpu-s"
        )
    embed_cpu = sum(per_text.values()) * 2 * n_pairs
    print(
        f"  embedding {2 * n_pairs} responses: {embed_cpu:.0f} CPU-s, i.e. "
        f"{embed_cpu / 2:.0f} s on 2 free cores ({embed_cpu / 60:.1f} min on one)"
    )

    # Clustering and selection at full size, on the measured vectors of sampled pairs.
    have = [
        p for p in base if p.response_a in vectors["content"] and p.response_b in vectors["content"]
    ]
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(have), n_pairs)
    pairs = []
    lookup: dict[str, dict[str, np.ndarray]] = {name: {} for name in ENCODERS}
    for i, j in enumerate(picks):
        src = have[j]
        a, b = f"{i}a", f"{i}b"
        for name in ENCODERS:
            for key, text in ((a, src.response_a), (b, src.response_b)):
                vec = vectors[name][text]
                lookup[name][key] = vec + rng.normal(
                    0, 0.01 * (np.abs(vec).mean() + 1e-6), vec.shape
                )
        pairs.append(
            Pair(id=f"x{i:06d}", prompt="", response_a=a, response_b=b, preferred=src.preferred)
        )

    class Lookup:
        def __init__(self, name: str, standardise: bool) -> None:
            self.name, self.standardise, self._rows = name, standardise, lookup[name]

        def embed(self, keys):
            return np.asarray([self._rows[k] for k in keys], dtype=np.float32)

    encoders = {n: Lookup(n, n != "content") for n in ENCODERS}
    config = IcaiConfig(method="icai_improved_2", encoders=ENCODERS)
    started, cpu = time.perf_counter(), cpu_seconds()
    selection = select_triplets(pairs, encoders, config)
    wall, used = time.perf_counter() - started, cpu_seconds() - cpu
    print(
        f"  clustering + selection of {n_pairs} pairs x {len(ENCODERS)} encoders: "
        f"{wall:.1f} s wall, {used:.1f} CPU-s; {len(selection.triplets)} triplets "
        f"(top k {selection.top_k} of {len(selection.clusters)} clusters)"
    )
    total = embed_cpu / 2 + wall
    print(f"  estimated triplet stage on 2 free cores: {total:.0f} s ({total / 60:.1f} min)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=800)
    parser.add_argument("--embedder", choices=["onnx", "local"], default="onnx")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scale", type=int, default=0, help="pairs for part 2 (0: skip)")
    parser.add_argument("--embed-sample", type=int, default=2000)
    parser.add_argument("--skip-part1", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if not args.skip_part1:
        part1(args.pairs, args.embedder, args.concurrency)
    if args.scale:
        part2(args.scale, args.embedder, args.embed_sample)


if __name__ == "__main__":
    main()
