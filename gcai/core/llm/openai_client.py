"""ChatModel over any OpenAI-compatible server (OpenAI, Azure, vLLM, Ollama, LM Studio...).

Structured output degrades gracefully: JSON-schema ``response_format`` where the server
supports it; if the server rejects it (400/422) the client switches, for the rest of
its life, to ``json_object`` and then to plain prompting with the schema in the system
message. Whatever the mode, the answer is parsed tolerantly, validated, and repaired
once by sending the bad output back; a request that still fails raises
:class:`LLMOutputError` carrying the raw text.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from enum import StrEnum
from typing import Any

from openai.types.chat import ChatCompletion

from gcai.core.llm.base import (
    ChatRequest,
    ChatResult,
    LLMCancelled,
    LLMError,
    LLMOutputError,
    LLMTransportError,
    Usage,
)
from gcai.core.llm.cache import ResponseCache, cache_key, canonical_messages
from gcai.core.llm.retry import RetryPolicy, call_with_retries
from gcai.core.llm.sdk import shared_openai_client, shared_slots
from gcai.core.llm.structured import (
    entry_to_result,
    parse_with_repair,
    result_to_entry,
    with_schema_instruction,
    without_principle_format,
)
from gcai.core.llm.usage import PriceTable, UsageMeter, estimate_cost

logger = logging.getLogger(__name__)

CancelCheck = Callable[[], bool]


class OutputMode(StrEnum):
    """How a schema is enforced, from strongest to weakest."""

    JSON_SCHEMA = "json_schema"  # response_format json_schema (constrained decoding)
    JSON_OBJECT = "json_object"  # JSON mode + schema in the system message
    PROMPT = "prompt"  # schema in the system message only

    def weaker(self) -> OutputMode | None:
        order = list(OutputMode)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None


def _strict_compatible(schema: Any) -> bool:
    """OpenAI strict mode needs closed objects with every property required."""
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", [])) != set(props):
            return False
    children: list[Any] = list(schema.get("properties", {}).values())
    if isinstance(schema.get("items"), dict):
        children.append(schema["items"])
    children.extend(schema.get("anyOf", []))
    return all(_strict_compatible(c) for c in children)


def _schema_name(schema: dict[str, Any]) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(schema.get("title") or "response"))
    return name[:64] or "response"


def response_format_for(schema: dict[str, Any], mode: OutputMode) -> dict[str, Any] | None:
    """The ``response_format`` argument for ``mode`` (``None`` for plain prompting)."""
    if mode is OutputMode.JSON_SCHEMA:
        return {
            "type": "json_schema",
            "json_schema": {
                "name": _schema_name(schema),
                "schema": schema,
                "strict": schema.get("type") == "object" and _strict_compatible(schema),
            },
        }
    if mode is OutputMode.JSON_OBJECT:
        return {"type": "json_object"}
    return None


class _RateLimitedCheck:
    """Calls a possibly expensive ``should_cancel`` (often a DB query) at most every ``interval``."""

    def __init__(self, check: CancelCheck | None, interval: float) -> None:
        self._check = check
        self._interval = interval
        self._last = float("-inf")
        self._cancelled = False

    def __call__(self) -> bool:
        if self._check is None or self._cancelled:
            return self._cancelled
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._cancelled = bool(self._check())
        return self._cancelled


class OpenAIChatModel:
    """:class:`~gcai.core.llm.base.ChatModel` on the official ``openai`` SDK.

    ``should_cancel`` is only ever called from the thread that called :meth:`complete`
    or :meth:`complete_many` (worker threads see a flag), so it may safely touch the
    database.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        concurrency: int = 16,
        prices: PriceTable | None = None,
        cache: ResponseCache | None = None,
        meter: UsageMeter | None = None,
        should_cancel: CancelCheck | None = None,
        retry_policy: RetryPolicy | None = None,
        output_mode: OutputMode = OutputMode.JSON_SCHEMA,
        cancel_poll_s: float = 0.5,
        cache_flush_s: float = 0.25,
        client: Any = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = model
        self.base_url = base_url
        self.timeout = timeout
        self.concurrency = concurrency
        self.prices = dict(prices or {})
        self.cache = cache
        self.meter = meter
        self.should_cancel = should_cancel
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self.cancel_poll_s = cancel_poll_s
        # At most this long between an answer arriving and its cache write (a worker
        # killed in between asks that question again on resume).
        self.cache_flush_s = cache_flush_s
        self._mode = OutputMode(output_mode)
        self._max_tokens_param = "max_tokens"
        self._mode_lock = threading.Lock()
        if client is None:
            client = shared_openai_client(base_url=base_url, api_key=api_key, timeout=timeout)
            # One budget of in-flight calls per process and server, shared by every model
            # built on it: in a worker running several batches at once (a threads pool),
            # one batch's slow last calls leave slots that the other batches fill.
            self._slots = shared_slots(base_url=base_url, concurrency=concurrency)
        else:
            self._slots = threading.BoundedSemaphore(concurrency)
        self._client = client

    # -- public API -----------------------------------------------------------------

    @property
    def output_mode(self) -> OutputMode:
        """The structured-output mode currently in use (it only ever weakens)."""
        return self._mode

    def complete(self, request: ChatRequest) -> ChatResult:
        """Answer one request (cache first). Raises :class:`LLMError` subclasses."""
        request = without_principle_format(request)
        key = cache_key(self.name, request)
        hit = self._cache_get(key)
        if hit is not None:
            self._record(hit.usage)
            return hit
        check = _RateLimitedCheck(self.should_cancel, 0.0)
        result = self._run(request, check)
        self._finish(key, result)
        if result.error is not None:
            raise result.error
        return result

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Answer many requests with at most ``concurrency`` in flight; results in order.

        Cache lookups, cache writes and ``should_cancel`` run in the calling thread.
        On cancellation no new request starts; those not started (or waiting to
        retry) come back with :class:`LLMCancelled` in ``error``.
        """
        requests = [without_principle_format(r) for r in requests]
        n = len(requests)
        results: list[ChatResult | None] = [None] * n
        keys = [cache_key(self.name, r) for r in requests]
        for i, hit in enumerate(self._cache_get_many(keys)):
            if hit is not None:
                results[i] = hit
                self._record(hit.usage)
        todo = deque(i for i in range(n) if results[i] is None)
        cancelled = threading.Event()
        poll = _RateLimitedCheck(self.should_cancel, self.cancel_poll_s)

        if todo:
            workers = min(self.concurrency, len(todo))
            # Answers reach the cache in small groups (one INSERT each) rather than one
            # by one: a write per answer, done here between submissions, kept slots idle.
            unsaved: dict[str, ChatResult] = {}
            last_save = time.monotonic()
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gcai-llm") as pool:
                running: dict[Future[ChatResult], int] = {}
                while todo or running:
                    if not cancelled.is_set() and poll():
                        cancelled.set()
                    while todo and not cancelled.is_set() and len(running) < workers:
                        i = todo.popleft()
                        running[pool.submit(self._run, requests[i], cancelled.is_set)] = i
                    if unsaved and (
                        len(unsaved) >= workers
                        or not running
                        or time.monotonic() - last_save >= self.cache_flush_s
                    ):
                        self._cache_set_many(unsaved)
                        unsaved, last_save = {}, time.monotonic()
                    if not running:
                        break
                    done, _ = wait(running, timeout=self.cancel_poll_s, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = running.pop(future)
                        result = future.result()  # _run never raises
                        results[i] = result
                        self._account(result)
                        if result.ok:
                            unsaved[keys[i]] = result
            if unsaved:
                self._cache_set_many(unsaved)
        for i in todo:
            results[i] = ChatResult(text="", error=LLMCancelled("cancelled before it started"))
        return [r for r in results if r is not None]

    # -- one request ----------------------------------------------------------------

    def _run(self, request: ChatRequest, cancelled: CancelCheck) -> ChatResult:
        """Produce a ChatResult, putting any failure into ``error`` instead of raising."""
        usage = Usage()
        started = time.monotonic()
        try:
            result = self._generate(request, usage, cancelled)
        except LLMError as exc:
            result = ChatResult(text=getattr(exc, "raw", ""), usage=usage, error=exc)
        except Exception as exc:  # a bug or an SDK surprise must not kill a whole batch
            logger.exception("unexpected error during an LLM request")
            result = ChatResult(
                text="", usage=usage, error=LLMError(f"unexpected {type(exc).__name__}: {exc}")
            )
        usage.latency_s = time.monotonic() - started
        return result

    def _generate(self, request: ChatRequest, usage: Usage, cancelled: CancelCheck) -> ChatResult:
        messages = canonical_messages(request.messages)
        schema = request.schema
        if schema is None:
            text, _ = self._create(messages, request, None, usage, cancelled)
            return ChatResult(text=text, usage=usage)

        text, finish, mode = self._create_structured(messages, request, usage, cancelled)

        def call(conversation: list[dict[str, Any]]) -> tuple[str, str | None]:
            return self._create(conversation, request, mode, usage, cancelled, schema=schema)

        sent = self._mode_messages(messages, schema, mode)
        text, parsed = parse_with_repair(text, finish, schema, sent, call)
        return ChatResult(text=text, parsed=parsed, usage=usage)

    @staticmethod
    def _mode_messages(
        messages: list[dict[str, Any]], schema: dict[str, Any], mode: OutputMode
    ) -> list[dict[str, Any]]:
        if mode is OutputMode.JSON_SCHEMA:
            return messages
        return with_schema_instruction(messages, schema)

    def _create_structured(
        self,
        messages: list[dict[str, Any]],
        request: ChatRequest,
        usage: Usage,
        cancelled: CancelCheck,
    ) -> tuple[str, str | None, OutputMode]:
        """Call in the current mode, weakening it if the server rejects the format."""
        import openai

        assert request.schema is not None
        mode: OutputMode | None = self._mode
        rejection: Exception | None = None
        while mode is not None:
            try:
                text, finish = self._create(
                    self._mode_messages(messages, request.schema, mode),
                    request,
                    mode,
                    usage,
                    cancelled,
                    schema=request.schema,
                    raise_bad_request=True,
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                rejection = rejection or exc
                logger.warning(
                    "%s rejected response_format mode %s (%s); trying a weaker mode",
                    self.base_url or "server",
                    mode.value,
                    exc,
                )
                mode = mode.weaker()
                continue
            # Only downgrade for good once a weaker mode actually worked, so one 400 about
            # something else (say, an over-long prompt) cannot cost us structured output.
            self._downgrade(mode)
            return text, finish, mode
        raise LLMError(f"server rejected the request: {rejection}")

    def _downgrade(self, mode: OutputMode) -> None:
        order = list(OutputMode)
        with self._mode_lock:
            if order.index(mode) > order.index(self._mode):
                logger.warning("%s: structured output now uses mode %s", self.name, mode.value)
                self._mode = mode

    def _create(
        self,
        messages: list[dict[str, Any]],
        request: ChatRequest,
        mode: OutputMode | None,
        usage: Usage,
        cancelled: CancelCheck,
        *,
        schema: dict[str, Any] | None = None,
        raise_bad_request: bool = False,
    ) -> tuple[str, str | None]:
        """One chat completion with retries; returns (content, finish_reason)."""
        import openai

        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.max_tokens is not None:
            kwargs[self._max_tokens_param] = request.max_tokens
        if schema is not None and mode is not None:
            response_format = response_format_for(schema, mode)
            if response_format is not None:
                kwargs["response_format"] = response_format

        def attempt() -> Any:
            with self._slots:
                # The SDK's ``chat.completions.create`` walks the whole request through its
                # TypedDict transform, which is a no-op for plain JSON like ours but costs
                # about 0.3 ms of CPU per call; ``post`` is the SDK's documented way to
                # send a body as is, with the same retries, errors and response parsing.
                return self._client.post("/chat/completions", body=kwargs, cast_to=ChatCompletion)

        def count() -> None:
            usage.calls += 1

        def call() -> Any:
            return call_with_retries(
                attempt,
                policy=self.retry_policy,
                cancelled=cancelled,
                on_attempt=count,
                what=f"chat completion ({self.name})",
            )

        try:
            try:
                response = call()
            except openai.BadRequestError as exc:
                # Newer OpenAI models refuse `max_tokens` and name its replacement.
                if "max_tokens" not in kwargs or "max_completion_tokens" not in str(exc):
                    raise
                self._max_tokens_param = "max_completion_tokens"
                kwargs["max_completion_tokens"] = kwargs.pop("max_tokens")
                response = call()
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            if raise_bad_request:
                raise
            raise LLMError(f"server rejected the request: {exc}") from exc
        except openai.APIError as exc:  # 401, 403, 404...: retrying cannot help
            raise LLMTransportError(f"chat completion failed: {exc}") from exc

        if response.usage is not None:
            usage.prompt_tokens += response.usage.prompt_tokens or 0
            usage.completion_tokens += response.usage.completion_tokens or 0
        if not response.choices:
            raise LLMOutputError("the server returned no choices")
        choice = response.choices[0]
        message = choice.message
        refusal = getattr(message, "refusal", None)
        if refusal:
            raise LLMOutputError(f"the model refused: {refusal}", raw=refusal)
        return message.content or "", choice.finish_reason

    # -- cache and accounting -----------------------------------------------------------

    def _cache_get(self, key: str) -> ChatResult | None:
        if self.cache is None:
            return None
        try:
            entry = self.cache.get(key)
        except Exception:  # the cache is an optimisation; never fail a request over it
            logger.warning("response cache read failed", exc_info=True)
            return None
        return entry_to_result(entry)

    def _cache_get_many(self, keys: list[str]) -> list[ChatResult | None]:
        if self.cache is None:
            return [None] * len(keys)
        get_many = getattr(self.cache, "get_many", None)
        if get_many is None:
            return [self._cache_get(k) for k in keys]
        try:
            found = get_many(keys)
        except Exception:
            logger.warning("response cache read failed", exc_info=True)
            return [None] * len(keys)
        return [entry_to_result(found.get(k)) for k in keys]

    def _finish(self, key: str, result: ChatResult) -> None:
        """Store a successful result and account for the request, from the caller's thread."""
        if result.ok:
            self._cache_set_many({key: result})
        self._account(result)

    def _account(self, result: ChatResult) -> None:
        cancelled = isinstance(result.error, LLMCancelled)
        self._record(result.usage, error=result.error is not None and not cancelled)

    def _cache_set_many(self, results: dict[str, ChatResult]) -> None:
        if self.cache is None or not results:
            return
        entries = {key: result_to_entry(self.name, r) for key, r in results.items()}
        try:
            set_many = getattr(self.cache, "set_many", None)
            if set_many is not None:
                set_many(entries)
            else:
                for key, entry in entries.items():
                    self.cache.set(key, entry)
        except Exception:  # the cache is an optimisation; never fail a request over it
            logger.warning("response cache write failed", exc_info=True)

    def _record(self, usage: Usage, *, error: bool = False) -> None:
        if self.meter is None:
            return
        cost = (
            None
            if not self.prices
            else estimate_cost(self.prices, self.name, usage.prompt_tokens, usage.completion_tokens)
        )
        self.meter.record(self.name, usage, error=error, cost=cost)
