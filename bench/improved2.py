"""Improved ICAI variant 2 on real AlpacaEval pairs: wall time per stage.

Every stage of ``icai_improved_2`` with the content, style and sentiment encoders on
``--pairs`` (default 800) real pairs from ``--data DIR`` (default
../shared/data/alpacaeval-reasons), the real OpenAI client against the fake server
(each answer after a random 0-50 ms, a scripted rule-following judge), concurrency 16.
The content encoder is the fast ONNX embedder at the preset's token cut (``--embedder
local``: the full torch model).

The triplet stage at full size (20,000 pairs, every response embedded, nothing
extrapolated) is ``bench/embed_scale.py``.

    .venv/bin/python bench/improved2.py --data DIR [--pairs 800] [--embedder onnx|local]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.realdata import add_data_argument, real_pairs
from gcai.core import icai, presets
from gcai.core.embed import Embedder, SentenceTransformerEmbedder
from gcai.core.encoders import build_encoders
from gcai.core.fast_embed import DEFAULT_MAX_TOKENS, OnnxMiniLMEmbedder
from gcai.core.icai import IcaiConfig
from gcai.core.llm.cache import MemoryCache
from gcai.core.llm.openai_client import OpenAIChatModel
from gcai.core.triplets import select_triplets, triplet_coverage
from tests.constitutions.judge_server import judge_responder
from tests.core.scripted import Judge, Rule
from tests.fakes import FakeOpenAIServer

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


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def content_embedder(kind: str) -> Embedder:
    tokens = presets.get("icai_improved_2").settings.get("fast_content_tokens")
    if kind == "onnx":
        return OnnxMiniLMEmbedder(max_tokens=tokens or DEFAULT_MAX_TOKENS)
    return SentenceTransformerEmbedder()


def part1(data: Path, n_pairs: int, kind: str, concurrency: int) -> None:
    pairs = real_pairs(data, n_pairs)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=800)
    parser.add_argument("--embedder", choices=["onnx", "local"], default="onnx")
    parser.add_argument("--concurrency", type=int, default=16)
    add_data_argument(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    part1(args.data, args.pairs, args.embedder, args.concurrency)


if __name__ == "__main__":
    main()
