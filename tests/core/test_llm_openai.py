"""OpenAIChatModel against the fake OpenAI-compatible server: the real SDK path."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gcai.core.llm.base import (
    ChatRequest,
    LLMCancelled,
    LLMError,
    LLMOutputError,
    LLMTransportError,
)
from gcai.core.llm.cache import MemoryCache
from gcai.core.llm.factory import LLMSettings, build_chat_model
from gcai.core.llm.openai_client import OpenAIChatModel, OutputMode, response_format_for
from gcai.core.llm.retry import RetryPolicy
from gcai.core.llm.usage import UsageMeter
from gcai.core.types import Message
from tests.fakes import (
    FakeOpenAIServer,
    Fault,
    http_date,
    last_user_message,
    request_schema,
    system_message,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "principles": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["principles"],
}
ANSWER = {"principles": ["Select the response that is honest."]}
FAST = RetryPolicy(max_retries=3, backoff_base=0.01, backoff_max=0.05)


def ask(text="Why was A preferred?", schema=SCHEMA, **kw):
    return ChatRequest(messages=[Message("user", text)], schema=schema, **kw)


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=lambda req: ANSWER) as srv:
        yield srv


@pytest.fixture
def meter():
    return UsageMeter()


@pytest.fixture
def make_model(server, meter):
    def make(**kw):
        kw.setdefault("retry_policy", FAST)
        kw.setdefault("timeout", 5.0)
        kw.setdefault("base_url", server.base_url)
        return OpenAIChatModel(model="fake-model", meter=meter, **kw)

    return make


# -- happy paths ------------------------------------------------------------------------


def test_text_request_returns_content_and_token_usage(server, make_model, meter):
    server.responder = lambda req: f"echo: {last_user_message(req)}"
    result = make_model().complete(ask("hi", schema=None))
    assert result.text == "echo: hi"
    assert result.parsed is None
    assert result.usage.calls == 1
    assert result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens > 0
    assert "response_format" not in server.bodies()[0]
    assert meter.snapshot()["prompt_tokens"] == result.usage.prompt_tokens


def test_schema_request_uses_json_schema_structured_output(server, make_model):
    result = make_model().complete(ask(seed=7, max_tokens=50, temperature=0.3))
    assert result.parsed == ANSWER
    body = server.bodies()[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert body["seed"] == 7
    assert body["max_tokens"] == 50
    assert body["temperature"] == 0.3


def test_strict_mode_only_for_schemas_openai_accepts_as_strict():
    closed = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert response_format_for(closed, OutputMode.JSON_SCHEMA)["json_schema"]["strict"] is True
    assert response_format_for(SCHEMA, OutputMode.JSON_SCHEMA)["json_schema"]["strict"] is False
    assert response_format_for(SCHEMA, OutputMode.JSON_OBJECT) == {"type": "json_object"}
    assert response_format_for(SCHEMA, OutputMode.PROMPT) is None


def test_price_table_turns_tokens_into_cost(make_model, meter):
    model = make_model(prices={"fake": {"prompt": 1.0, "completion": 2.0}})
    result = model.complete(ask())
    expected = (result.usage.prompt_tokens * 1.0 + result.usage.completion_tokens * 2.0) / 1e6
    assert meter.snapshot()["cost_usd"] == pytest.approx(expected)


# -- transport faults -------------------------------------------------------------------


def test_rate_limit_is_retried_after_the_retry_after_delay(server, make_model, meter):
    server.inject(Fault.rate_limit(retry_after=0.4))
    started = time.monotonic()
    result = make_model().complete(ask())
    assert time.monotonic() - started >= 0.4
    assert result.parsed == ANSWER
    assert result.usage.calls == 2
    assert server.chat_calls == 2
    assert meter.snapshot()["calls"] == 2
    assert meter.snapshot()["errors"] == 0


def test_retry_after_as_http_date_is_honoured_but_capped(server, make_model):
    server.inject(Fault.rate_limit(retry_after=http_date(3600)))
    policy = RetryPolicy(max_retries=2, backoff_base=0.01, retry_after_cap=0.3)
    started = time.monotonic()
    make_model(retry_policy=policy).complete(ask())
    assert 0.3 <= time.monotonic() - started < 5
    assert server.chat_calls == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(server, make_model, status):
    server.inject(Fault.server_error(status), Fault.server_error(status))
    assert make_model().complete(ask()).usage.calls == 3


def test_timeout_is_retried(server, make_model):
    server.inject(Fault.slow(2.0))
    result = make_model(timeout=0.3).complete(ask())
    assert result.parsed == ANSWER
    assert result.usage.calls == 2


def test_dropped_connection_is_retried(server, make_model):
    server.inject(Fault.disconnect())
    assert make_model().complete(ask()).usage.calls == 2


def test_gives_up_after_max_retries_and_records_the_error(server, make_model, meter):
    server.inject(*[Fault.server_error() for _ in range(4)])
    with pytest.raises(LLMTransportError, match="4 attempts"):
        make_model().complete(ask())
    assert server.chat_calls == 4
    snap = meter.snapshot()
    assert snap["errors"] == 1
    assert snap["calls"] == 4


def test_client_errors_are_not_retried(server, make_model):
    server.responder = lambda req: Fault.bad_request("context length exceeded")
    with pytest.raises(LLMError, match="context length"):
        make_model().complete(ask(schema=None))
    assert server.chat_calls == 1


def test_max_tokens_becomes_max_completion_tokens_when_the_model_asks(server, make_model):
    def answer(req):
        if "max_tokens" in req:
            return Fault.bad_request(
                "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."
            )
        return ANSWER

    server.responder = answer
    model = make_model()
    assert model.complete(ask(max_tokens=20)).parsed == ANSWER
    assert model.complete(ask("again", max_tokens=20)).usage.calls == 1
    assert server.bodies()[-1]["max_completion_tokens"] == 20
    assert model.output_mode is OutputMode.JSON_SCHEMA


def test_a_crashing_responder_shows_up_as_a_server_error(server, make_model):
    def broken(req):
        raise KeyError("oops")

    server.responder = broken
    with pytest.raises(LLMTransportError, match="oops"):
        make_model(retry_policy=RetryPolicy(max_retries=0)).complete(ask())
    assert isinstance(server.errors[0], KeyError)


# -- output faults ----------------------------------------------------------------------


def test_invalid_json_gets_one_repair_round(server, make_model, meter):
    server.inject(Fault.invalid_json("Sure: {principles: nope"))
    result = make_model().complete(ask())
    assert result.parsed == ANSWER
    assert result.usage.calls == 2
    repair = server.bodies()[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure: {principles: nope"}
    assert "could not be used" in repair[-1]["content"]
    assert meter.snapshot()["errors"] == 0


def test_still_invalid_after_repair_raises_output_error_with_raw_text(server, make_model, meter):
    server.responder = lambda req: "I would rather not."
    with pytest.raises(LLMOutputError, match="after one repair") as info:
        make_model().complete(ask())
    assert info.value.raw == "I would rather not."
    assert server.chat_calls == 2
    assert meter.snapshot()["errors"] == 1


def test_schema_violation_is_repaired_too(server, make_model):
    server.inject(Fault.text('{"principles": []}'))
    assert make_model().complete(ask()).parsed == ANSWER
    assert "principles" in server.bodies()[1]["messages"][-1]["content"]


def test_truncated_json_is_an_output_error_without_repair(server, make_model):
    server.inject(Fault.truncated())
    with pytest.raises(LLMOutputError, match="max_tokens") as info:
        make_model().complete(ask())
    assert info.value.raw.startswith('{"principles"')
    assert server.chat_calls == 1


def test_length_finish_with_complete_json_is_accepted(server, make_model):
    server.inject(Fault.text(json.dumps(ANSWER), finish_reason="length"))
    assert make_model().complete(ask()).parsed == ANSWER


def test_empty_choices_is_an_output_error(server, make_model, meter):
    server.inject(Fault.empty_choices())
    with pytest.raises(LLMOutputError, match="no choices"):
        make_model().complete(ask())
    assert meter.snapshot()["errors"] == 1


# -- structured-output fallback ---------------------------------------------------------


def test_rejected_json_schema_falls_back_to_json_mode_for_the_client_lifetime(make_model):
    with FakeOpenAIServer(structured_output=False) as srv:
        model = make_model(base_url=srv.base_url)
        first = model.complete(ask())
        assert first.parsed == {"principles": ["example"]}  # default responder, schema-valid
        assert first.usage.calls == 2
        assert model.output_mode is OutputMode.JSON_OBJECT
        second = model.complete(ask("another pair"))
        assert second.usage.calls == 1
        bodies = srv.bodies()
        assert [b["response_format"]["type"] for b in bodies] == [
            "json_schema",
            "json_object",
            "json_object",
        ]
        assert request_schema(bodies[2]) == SCHEMA  # the schema travels in the system prompt
        assert "JSON schema" in system_message(bodies[2])


def test_falls_back_to_plain_prompting_when_json_mode_is_rejected_too(make_model):
    with FakeOpenAIServer(structured_output=False, json_mode=False) as srv:
        model = make_model(base_url=srv.base_url)
        request = ChatRequest(
            messages=[Message("system", "You write principles."), Message("user", "go")],
            schema=SCHEMA,
        )
        assert model.complete(request).usage.calls == 3
        assert model.output_mode is OutputMode.PROMPT
        assert model.complete(request).usage.calls == 1
        last = srv.bodies()[-1]
        assert "response_format" not in last
        assert last["messages"][0]["content"].startswith("You write principles.")
        assert request_schema(last) == SCHEMA


def test_an_unrelated_bad_request_does_not_cost_structured_output(server, make_model):
    server.inject(*[Fault.bad_request("prompt too long") for _ in range(3)])
    model = make_model()
    with pytest.raises(LLMError, match="prompt too long"):
        model.complete(ask())
    assert model.output_mode is OutputMode.JSON_SCHEMA
    model.complete(ask())
    assert server.bodies()[-1]["response_format"]["type"] == "json_schema"


# -- cache ------------------------------------------------------------------------------


def test_identical_second_pass_is_served_from_cache_with_zero_calls(server, make_model, meter):
    cache = MemoryCache()
    model = make_model(cache=cache)
    requests = [ask(f"pair {i}") for i in range(20)]
    first = model.complete_many(requests)
    assert server.chat_calls == 20
    assert not any(r.usage.cached for r in first)

    second = make_model(cache=cache).complete_many(requests)
    assert server.chat_calls == 20
    assert all(r.usage.cached and r.usage.calls == 0 for r in second)
    assert [r.parsed for r in second] == [r.parsed for r in first]
    assert model.complete(requests[0]).usage.cached
    snap = meter.snapshot()
    assert snap["cached_calls"] == 21
    assert snap["calls"] == 20


def test_failures_are_not_cached(server, make_model):
    cache = MemoryCache()
    server.inject(Fault.empty_choices())
    with pytest.raises(LLMOutputError):
        make_model(cache=cache).complete(ask())
    assert len(cache) == 0
    assert make_model(cache=cache).complete(ask()).parsed == ANSWER


def test_a_broken_cache_does_not_fail_requests(make_model):
    class Broken:
        def get(self, key):
            raise RuntimeError("db down")

        def set(self, key, value):
            raise RuntimeError("db down")

    assert make_model(cache=Broken()).complete(ask()).parsed == ANSWER


# -- complete_many ----------------------------------------------------------------------


def test_complete_many_keeps_input_order(server, make_model):
    def answer(req):
        n = int(last_user_message(req))
        time.sleep(0.002 * (n % 5))  # finish out of order
        return {"principles": [str(n)]}

    server.responder = answer
    results = make_model(concurrency=8).complete_many([ask(str(i)) for i in range(40)])
    assert [r.parsed["principles"][0] for r in results] == [str(i) for i in range(40)]


def test_complete_many_reports_per_item_errors_without_raising(server, make_model, meter):
    server.responder = lambda req: "nope" if req["messages"][0]["content"] == "3" else ANSWER
    results = make_model().complete_many([ask(str(i)) for i in range(6)])
    assert [r.ok for r in results] == [True, True, True, False, True, True]
    assert isinstance(results[3].error, LLMOutputError)
    assert results[3].text == "nope"
    assert meter.snapshot()["errors"] == 1


def test_concurrency_is_bounded(make_model):
    with FakeOpenAIServer(latency=0.05) as srv:
        model = make_model(base_url=srv.base_url, concurrency=4)
        results = model.complete_many([ask(str(i)) for i in range(24)])
        assert all(r.ok for r in results)
        assert srv.max_in_flight == 4


def test_concurrency_bound_holds_across_callers(make_model):
    with FakeOpenAIServer(latency=0.05) as srv:
        model = make_model(base_url=srv.base_url, concurrency=3)
        threads = [
            threading.Thread(
                target=model.complete_many, args=([ask(f"{t}-{i}") for i in range(6)],)
            )
            for t in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert srv.chat_calls == 18
        assert srv.max_in_flight <= 3


def test_cancellation_stops_new_work_and_marks_the_rest_cancelled(make_model):
    with FakeOpenAIServer(latency=0.05) as srv:
        model = make_model(
            base_url=srv.base_url,
            concurrency=2,
            should_cancel=lambda: srv.chat_calls >= 4,
            cancel_poll_s=0.01,
        )
        results = model.complete_many([ask(str(i)) for i in range(50)])
        done = [r for r in results if r.ok]
        cancelled = [r for r in results if isinstance(r.error, LLMCancelled)]
        assert len(done) + len(cancelled) == 50
        assert 4 <= len(done) <= 8
        assert srv.chat_calls == len(done)
        assert results[0].ok
        assert isinstance(results[-1].error, LLMCancelled)


def test_cancellation_interrupts_a_retry_wait(server, make_model):
    server.inject(Fault.rate_limit(retry_after=30))
    flag = threading.Event()
    policy = RetryPolicy(max_retries=3, retry_after_cap=60)
    model = make_model(should_cancel=flag.is_set, retry_policy=policy)
    threading.Timer(0.3, flag.set).start()
    started = time.monotonic()
    with pytest.raises(LLMCancelled):
        model.complete(ask())
    assert time.monotonic() - started < 5


def test_already_cancelled_makes_no_calls(server, make_model):
    model = make_model(should_cancel=lambda: True)
    results = model.complete_many([ask("1"), ask("2")])
    assert all(isinstance(r.error, LLMCancelled) for r in results)
    with pytest.raises(LLMCancelled):
        model.complete(ask())
    assert server.chat_calls == 0


# -- factory ------------------------------------------------------------------------------


def test_factory_builds_an_openai_client_wired_to_cache_and_meter(server):
    cache, meter = MemoryCache(), UsageMeter()
    settings = LLMSettings(backend="openai", base_url=server.base_url, model="m", concurrency=3)
    model = build_chat_model(settings, cache=cache, meter=meter)
    assert isinstance(model, OpenAIChatModel)
    assert model.concurrency == 3
    model.complete(ask())
    assert len(cache) == 1
    assert meter.snapshot()["calls"] == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"backend": "anthropic"}, "backend"),
        ({"concurrency": 0}, "concurrency"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_settings_reject_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        LLMSettings(**bad)


# -- cost per call ------------------------------------------------------------------------


class _CountingCache(MemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def set_many(self, entries):
        self.writes += 1
        super().set_many(entries)


def test_answers_reach_the_cache_in_groups_not_one_write_each(server, make_model):
    server.latency = 0.05
    cache = _CountingCache()
    results = make_model(cache=cache, concurrency=4).complete_many([ask(str(i)) for i in range(24)])
    assert all(r.ok for r in results)
    assert len(cache) == 24
    assert cache.writes <= 24 // 4 + 2


def test_models_on_one_server_share_one_sdk_client(server, make_model):
    # Building an SDK client loads the CA bundle: once per process, not once per batch.
    assert make_model()._client is make_model()._client
    assert make_model()._client is not make_model(timeout=7.0)._client
