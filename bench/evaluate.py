"""Evaluation throughput: N held-out pairs judged in both orders (plus the per-principle
analysis) through OpenAIChatModel against the fake server, batch by batch as the
Celery batches do.

Every pair costs four requests (two orders x verdict and analysis), so the ideal wall
time is 4 * N * latency / concurrency. A second identical pass (a resumed or repeated
evaluation) must cost zero calls.

    .venv/bin/python bench/evaluate.py [-n 400] [--latency 0.1] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gcai.core.evaluate import EvalConfig, compute_metrics, judge_pairs
from gcai.core.llm.cache import MemoryCache
from gcai.core.llm.openai_client import OpenAIChatModel
from gcai.core.types import Pair, Preference
from tests.core.eval_fakes import as_responder, contains, rule_judge
from tests.fakes import FakeOpenAIServer

PLEASE = "Select the response that says please."


def polite_pairs(n: int) -> list[Pair]:
    pairs = []
    for i in range(n):
        polite, rude = f"Could you please hand it over? ({i})", f"Hand it over now. ({i})"
        first = i % 2 == 0
        pairs.append(
            Pair(
                id=str(i),
                prompt=f"Ask for item {i}.",
                response_a=polite if first else rude,
                response_b=rude if first else polite,
                preferred=Preference.A if first else Preference.B,
            )
        )
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="pairs (default 400)")
    parser.add_argument("--latency", type=float, default=0.1, help="server seconds per request")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=25, help="pairs per batch")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)

    pairs = polite_pairs(args.n)
    config = EvalConfig(batch_size=args.batch_size)
    responder = as_responder(rule_judge({PLEASE: contains("please")}))
    with FakeOpenAIServer(responder=responder, latency=args.latency) as server:
        model = OpenAIChatModel(
            model="fake-judge",
            base_url=server.base_url,
            concurrency=args.concurrency,
            cache=MemoryCache(),
        )
        started = time.perf_counter()
        judgements = judge_pairs(model, [PLEASE], pairs, config)
        wall = time.perf_counter() - started
        calls = server.chat_calls

        started = time.perf_counter()
        again = judge_pairs(model, [PLEASE], pairs, config)
        cached_wall = time.perf_counter() - started
        second_calls = server.chat_calls - calls

    metrics = compute_metrics(judgements, principles=[PLEASE])
    requests = 4 * args.n
    ideal = requests * args.latency / args.concurrency
    print(f"pairs               {args.n} in batches of {args.batch_size}")
    print(f"requests            {requests} (2 orders x verdict + principle analysis)")
    print(f"server latency      {args.latency:.3f} s   concurrency {args.concurrency}")
    print(f"pass 1 calls        {calls}")
    print(f"pass 1 wall time    {wall:.2f} s   ideal {ideal:.2f} s   ratio {wall / ideal:.2f}x")
    print(f"throughput          {args.n / wall:.1f} pairs/s")
    print(f"pass 2 calls        {second_calls}  wall {cached_wall:.2f} s (response cache)")
    print(f"accuracy            {metrics.accuracy.value:.3f} on {metrics.n_scored} pairs")
    # Batches wait for their slowest request, so some idle time per batch is expected.
    ok = calls == requests and second_calls == 0 and again == judgements
    ok = ok and metrics.accuracy.value == 1.0
    print("PASS" if ok else "FAIL", "(every request once, 0 calls on pass 2, planted rule found)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
