"""Response-cache keys, the in-memory cache, usage metering and retry timing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from gcai.core.llm.base import ChatRequest, Usage
from gcai.core.llm.cache import MemoryCache, cache_key
from gcai.core.llm.retry import RetryPolicy, parse_retry_after
from gcai.core.llm.usage import UsageMeter, estimate_cost, price_for
from gcai.core.types import Message

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def _request(**overrides):
    fields = {
        "messages": [Message("system", "sys"), Message("user", "hello")],
        "schema": SCHEMA,
        "temperature": 0.0,
        "seed": 1,
        "max_tokens": 100,
    }
    fields.update(overrides)
    return ChatRequest(**fields)


def test_cache_key_is_a_full_sha256_and_stable():
    key = cache_key("m", _request())
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key == cache_key("m", _request())


def test_cache_key_ignores_dict_order_message_type_and_purpose():
    reordered = {"required": ["a"], "properties": {"a": {"type": "string"}}, "type": "object"}
    as_dicts = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello"}]
    base = cache_key("m", _request())
    assert cache_key("m", _request(schema=reordered)) == base
    assert cache_key("m", _request(messages=as_dicts)) == base
    assert cache_key("m", _request(purpose="icai.generate")) == base


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [Message("user", "hello")]},
        {"schema": None},
        {"temperature": 0.7},
        {"seed": 2},
        {"max_tokens": 101},
    ],
)
def test_cache_key_changes_with_everything_that_shapes_the_answer(change):
    assert cache_key("m", _request(**change)) != cache_key("m", _request())


def test_cache_key_depends_on_the_model():
    assert cache_key("m1", _request()) != cache_key("m2", _request())


def test_memory_cache_round_trips_copies():
    cache = MemoryCache()
    assert cache.get("k") is None
    value = {"text": "t", "parsed": {"a": [1]}}
    cache.set("k", value)
    value["parsed"]["a"].append(2)
    got = cache.get("k")
    assert got == {"text": "t", "parsed": {"a": [1]}}
    got["parsed"]["a"].append(3)
    assert cache.get("k")["parsed"] == {"a": [1]}
    assert len(cache) == 1


PRICES = {
    "gpt-4o": {"prompt": 2.5, "completion": 10.0},
    "gpt-4o-mini": {"prompt": 0.15, "completion": 0.6},
}


def test_price_lookup_prefers_exact_then_longest_prefix_then_default():
    assert price_for(PRICES, "gpt-4o-mini")["prompt"] == 0.15
    assert price_for(PRICES, "gpt-4o-mini-2024-07-18")["prompt"] == 0.15
    assert price_for(PRICES, "gpt-4o-2024-08-06")["prompt"] == 2.5
    assert price_for(PRICES, "llama") is None
    assert price_for({**PRICES, "*": {"prompt": 1}}, "llama") == {"prompt": 1}
    assert estimate_cost(PRICES, "gpt-4o", 1_000_000, 500_000) == pytest.approx(7.5)
    assert estimate_cost(None, "gpt-4o", 10, 10) == 0.0


def test_usage_meter_sums_calls_hits_tokens_errors_and_cost():
    meter = UsageMeter(prices=PRICES)
    meter.record("gpt-4o", Usage(prompt_tokens=1000, completion_tokens=100, calls=2))
    meter.record("gpt-4o", Usage(cached=True))
    meter.record("gpt-4o", Usage(prompt_tokens=10, calls=3), error=True)
    meter.record("other", Usage(prompt_tokens=5, completion_tokens=5, calls=1), cost=1.25)
    snap = meter.snapshot()
    assert snap["requests"] == 4
    assert snap["calls"] == 6
    assert snap["cached_calls"] == 1
    assert snap["prompt_tokens"] == 1015
    assert snap["completion_tokens"] == 105
    assert snap["errors"] == 1
    expected = (1010 * 2.5 + 100 * 10.0) / 1e6 + 1.25
    assert snap["cost_usd"] == pytest.approx(expected)
    assert snap["by_model"]["other"]["cost_usd"] == 1.25
    assert snap["by_model"]["gpt-4o"]["calls"] == 5


def test_usage_meter_is_thread_safe_and_mergeable():
    meter = UsageMeter()

    def work():
        for _ in range(1000):
            meter.record("m", Usage(prompt_tokens=1, completion_tokens=2, calls=1))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = meter.snapshot()
    assert snap["calls"] == 8000
    assert snap["completion_tokens"] == 16000

    total = UsageMeter()
    total.merge(snap)
    total.merge(snap)
    assert total.snapshot()["prompt_tokens"] == 16000
    assert total.snapshot()["by_model"]["m"]["requests"] == 16000
    total.reset()
    assert total.snapshot()["calls"] == 0


def test_parse_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_exponential_and_retry_after_is_capped():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0, retry_after_cap=10.0)
    for attempt in range(6):
        delay = policy.delay(attempt)
        assert 0.0 <= delay <= min(5.0, 2**attempt)
    assert 2.0 <= policy.delay(0, retry_after=2.0) <= 2.2
    assert 10.0 <= policy.delay(0, retry_after=3600) <= 11.0
