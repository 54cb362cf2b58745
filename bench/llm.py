"""LLM client throughput: N requests through OpenAIChatModel against the fake server.

The server answers every request after a fixed latency, so the ideal wall time is
N * latency / concurrency; the ratio to it shows the client's overhead. A second,
identical pass must be served entirely from the response cache (0 calls).

    .venv/bin/python bench/llm.py [-n 500] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gcai.core.llm.base import ChatRequest
from gcai.core.llm.cache import MemoryCache
from gcai.core.llm.openai_client import OpenAIChatModel
from gcai.core.llm.usage import UsageMeter
from gcai.core.types import Message
from tests.fakes import FakeOpenAIServer

SCHEMA = {
    "type": "object",
    "properties": {
        "principles": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["principles"],
}


def _requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            messages=[
                Message("system", "You explain human preferences as short principles."),
                Message("user", f"Pair {i}: why was response A preferred over response B?"),
            ],
            schema=SCHEMA,
        )
        for i in range(n)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="requests (default 500)")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency, s")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the SDK logs every request at INFO

    requests = _requests(args.n)
    cache, meter = MemoryCache(), UsageMeter()
    with FakeOpenAIServer(latency=args.latency) as server:
        model = OpenAIChatModel(
            model="bench-model",
            base_url=server.base_url,
            concurrency=args.concurrency,
            cache=cache,
            meter=meter,
        )
        started = time.perf_counter()
        first = model.complete_many(requests)
        wall = time.perf_counter() - started
        calls = server.chat_calls
        in_flight = server.max_in_flight

        started = time.perf_counter()
        second = model.complete_many(requests)
        cached_wall = time.perf_counter() - started
        second_calls = server.chat_calls - calls

    ideal = args.n * args.latency / args.concurrency
    failed = sum(not r.ok for r in first) + sum(not r.ok for r in second)
    snap = meter.snapshot()
    print(f"requests            {args.n}   (machine load average {os.getloadavg()[0]:.1f})")
    print(f"server latency      {args.latency:.3f} s   concurrency {args.concurrency}")
    print(f"pass 1 calls        {calls}")
    print(f"pass 1 wall time    {wall:.2f} s")
    print(f"ideal time          {ideal:.2f} s  (N * latency / concurrency)")
    print(f"ratio               {wall / ideal:.3f}x")
    print(f"achieved concurrency {in_flight} (max in flight at the server)")
    print(f"throughput          {args.n / wall:.1f} req/s")
    print(f"pass 2 calls        {second_calls}  (identical requests, response cache)")
    print(f"pass 2 wall time    {cached_wall:.3f} s, cached {sum(r.usage.cached for r in second)}")
    print(
        f"meter               calls={snap['calls']} cached_calls={snap['cached_calls']} "
        f"prompt_tokens={snap['prompt_tokens']} completion_tokens={snap['completion_tokens']} "
        f"errors={snap['errors']}"
    )
    print(f"failed requests     {failed}")
    ok = failed == 0 and second_calls == 0 and wall <= 1.25 * ideal
    print("PASS" if ok else "FAIL", "(target: within 1.25x of ideal, 0 calls on pass 2)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
