"""Retry policy for OpenAI-compatible HTTP calls (chat and embeddings), on tenacity.

Our own policy instead of the SDK's so that every attempt is counted, cancellation is
checked before each attempt and during every wait, a server's ``Retry-After`` is
honoured (capped, with a little jitter), and the backoff is the same for chat and
embeddings. tenacity runs the loop; this module decides what to retry and how long to wait.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import tenacity

from gcai.core.llm.base import LLMCancelled, LLMTransportError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Statuses worth retrying: rate limits, request timeout/conflict (transient on most
# gateways) and every server-side error.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` wins when the server sends it."""

    max_retries: int = 5
    backoff_base: float = 0.5  # seconds; attempt n sleeps uniform(0, base * 2**n)
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0  # never trust a server to park us longer than this

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.retry_after_cap)
            # A little jitter so many workers told "retry in 2 s" do not return in lockstep.
            return wait + random.uniform(0, min(wait * 0.1, 1.0))
        backoff = tenacity.wait_random_exponential(
            multiplier=self.backoff_base, max=self.backoff_max
        )
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = attempt + 1
        return backoff(state)

    def wait(self, state: tenacity.RetryCallState) -> float:
        """tenacity's wait: :meth:`delay` for the failure that just happened."""
        assert state.outcome is not None
        exc = state.outcome.exception()
        retry_after = retry_after_from(exc) if exc is not None else None
        return self.delay(state.attempt_number - 1, retry_after)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP date. ``None`` if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max((when - now).total_seconds(), 0.0)


def retry_after_from(exc: BaseException) -> float | None:
    """Retry delay the server asked for in the error response, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def is_retryable(exc: BaseException) -> bool:
    """True for 429, 408/409, 5xx, connection errors and timeouts from the openai SDK."""
    import openai  # lazy: importing the SDK costs ~0.5 s

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500
    return False


def sleep_unless_cancelled(
    seconds: float, cancelled: Callable[[], bool] | None, tick: float = 0.1
) -> bool:
    """Sleep ``seconds`` in short ticks; return True (early) if ``cancelled()`` turns true."""
    deadline = time.monotonic() + seconds
    while True:
        if cancelled is not None and cancelled():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(tick, left))


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    cancelled: Callable[[], bool] | None = None,
    on_attempt: Callable[[], None] | None = None,
    what: str = "request",
) -> T:
    """Call ``fn`` until it succeeds, retrying transient failures per ``policy``.

    Non-retryable exceptions propagate unchanged (the caller decides, e.g. a 400).
    Raises :class:`LLMTransportError` once retries are exhausted and
    :class:`LLMCancelled` when ``cancelled()`` becomes true before an attempt or while
    waiting for the next one.
    """
    failures: list[BaseException] = []

    def before(state: tenacity.RetryCallState) -> None:
        if cancelled is not None and cancelled():
            raise LLMCancelled(f"{what} cancelled")
        if on_attempt is not None:
            on_attempt()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        assert state.outcome is not None
        exc = state.outcome.exception()
        assert exc is not None
        failures.append(exc)
        logger.info(
            "%s failed (%s); retry %d/%d in %.2fs",
            what,
            type(exc).__name__,
            state.attempt_number,
            policy.max_retries,
            state.upcoming_sleep,
        )

    def sleep(seconds: float) -> None:
        if sleep_unless_cancelled(seconds, cancelled):
            raise LLMCancelled(f"{what} cancelled while waiting to retry") from failures[-1]

    def give_up(state: tenacity.RetryCallState) -> T:
        assert state.outcome is not None
        exc = state.outcome.exception()
        raise LLMTransportError(
            f"{what} failed after {state.attempt_number} attempts: {exc}"
        ) from exc

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_retries + 1),
        wait=policy.wait,
        retry=tenacity.retry_if_exception(is_retryable),
        before=before,
        before_sleep=before_sleep,
        sleep=sleep,
        retry_error_callback=give_up,
    )
    return retrying(fn)
