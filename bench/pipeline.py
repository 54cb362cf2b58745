"""ICAI pipeline cost and speed, and Improved-2 embedding + clustering time.

Part 1: 1,000 synthetic pairs through every ICAI stage with default settings, the real
OpenAI client against the fake server at a fixed latency (default 200 ms) and the
default concurrency (16). Prints LLM calls per pair per stage and each stage's wall
time against the ideal calls x latency / concurrency.

Part 2: Improved-2's difference clustering for 5,000 pairs with the bundled MiniLM
encoder on this machine (embedding both responses of every pair, clustering the
differences, picking triplets).

    .venv/bin/python bench/pipeline.py [--pairs 1000] [--latency 0.2] [--improved2-pairs 5000]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gcai.core import icai
from gcai.core.embed import OpenAIEmbedder
from gcai.core.icai import IcaiConfig
from gcai.core.llm.cache import MemoryCache
from gcai.core.llm.openai_client import OpenAIChatModel
from gcai.core.types import Pair, Preference
from tests.constitutions.judge_server import judge_responder, purpose_of
from tests.core.scripted import ORTHOGONAL_RULES, Judge
from tests.fakes import FakeOpenAIServer
from tests.fakes.openai_server import last_user_message

TOPICS = [
    ("Please write a funny short story about a human and their pet.", "cat", "dog"),
    ("Should I pick this blue t-shirt or the green one?", "blue", "green"),
    ("Which ice cream flavor should I pick?", "lemon", "raspberry"),
]


def synthetic_pairs(n: int, seed: int = 0) -> list[Pair]:
    """Pairs in the style of ICAI's orthogonal synthetic data (the liked option wins)."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        prompt, liked, other = TOPICS[i % len(TOPICS)]
        filler = " ".join(
            rng.choice(["quite", "really", "simply", "honestly", "truly"]) for _ in range(6)
        )
        good = f"I would go with the {liked} one, {filler}. Variant {i}."
        bad = f"I would go with the {other} one, {filler}. Variant {i}."
        a_is_good = rng.random() < 0.5
        pairs.append(
            Pair(
                id=f"p{i:05d}",
                prompt=prompt,
                response_a=good if a_is_good else bad,
                response_b=bad if a_is_good else good,
                preferred=Preference.A if a_is_good else Preference.B,
            )
        )
    return pairs


def part1(n_pairs: int, latency: float, concurrency: int) -> None:
    pairs = synthetic_pairs(n_pairs)
    config = IcaiConfig()
    responder = judge_responder(Judge(ORTHOGONAL_RULES))
    with FakeOpenAIServer(responder=responder, latency=latency) as server:
        model = OpenAIChatModel(
            model="fake-judge",
            base_url=server.base_url,
            api_key="x",
            concurrency=concurrency,
            cache=MemoryCache(),
        )
        # Embeddings without latency: this part measures the LLM-bound stages.
        embedder = OpenAIEmbedder(model="fake-embed", base_url=server.base_url, api_key="x")
        print(
            f"ICAI, {n_pairs} pairs, default settings, latency {latency * 1000:.0f} ms, concurrency {concurrency}"
        )
        print(f"{'stage':<16}{'calls':>8}{'per pair':>10}{'wall s':>9}{'ideal s':>9}{'ratio':>7}")
        total_calls, total_wall = 0, 0.0

        def stage(name, fn):
            nonlocal total_calls, total_wall
            before = len(server.requests)
            started = time.perf_counter()
            out = fn()
            wall = time.perf_counter() - started
            chat = [r for r in server.requests[before:] if r.path.endswith("/chat/completions")]
            calls = len(chat)
            ideal = calls * latency / concurrency
            ratio = f"{wall / ideal:.2f}" if ideal else "-"
            print(
                f"{name:<16}{calls:>8}{calls / n_pairs:>10.2f}{wall:>9.1f}{ideal:>9.1f}{ratio:>7}"
            )
            total_calls += calls
            total_wall += wall
            return out, Counter(purpose_of(last_user_message(r.body)) for r in chat)

        proposals, _ = stage(
            "generate", lambda: icai.generate(icai.generation_units(pairs, config), model, config)
        )
        clusters, _ = stage(
            "cluster",
            lambda: icai.cluster_principles(proposals, embedder, config, n_pairs=len(pairs)),
        )
        reps, _ = stage(
            "representatives", lambda: icai.select_representatives(clusters, model, config)
        )
        votes, _ = stage("vote", lambda: icai.vote(pairs, reps, model, config))
        filtered, _ = stage("filter", lambda: icai.filter_principles(reps, votes, embedder, config))
        ideal = total_calls * latency / concurrency
        print(
            f"{'total':<16}{total_calls:>8}{total_calls / n_pairs:>10.2f}{total_wall:>9.1f}{ideal:>9.1f}{total_wall / ideal:>7.2f}"
        )
        print(
            f"candidates voted on: {len(reps.candidates)}; final principles: {len(filtered.principles)}"
        )
        for p in filtered.principles:
            print(f"  - {p.text}  (for {p.stats.get('for')}, against {p.stats.get('against')})")
        print(f"max requests in flight seen by the server: {server.max_in_flight}")


def part2(n_pairs: int) -> None:
    from gcai.core.embed import SentenceTransformerEmbedder

    pairs = synthetic_pairs(n_pairs, seed=1)
    config = IcaiConfig(method="icai_improved_2")
    encoder = SentenceTransformerEmbedder()
    encoder.embed(["warm-up"])  # load the model outside the timing
    started = time.perf_counter()
    selection = icai.select_triplets(pairs, {"content": encoder}, config)
    wall = time.perf_counter() - started
    selected = [t for t in selection.triplets if t.status == "selected"]
    print(
        f"\nImproved 2: {n_pairs} pairs ({2 * n_pairs} responses) embedded with MiniLM and "
        f"difference-clustered in {wall:.1f} s ({2 * n_pairs / wall:.0f} responses/s); "
        f"{len(selection.triplets)} clusters, {len(selected)} triplets selected"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--improved2-pairs", type=int, default=5000)
    parser.add_argument("--skip-part1", action="store_true")
    parser.add_argument("--skip-part2", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if not args.skip_part1:
        part1(args.pairs, args.latency, args.concurrency)
    if not args.skip_part2:
        part2(args.improved2_pairs)


if __name__ == "__main__":
    main()
