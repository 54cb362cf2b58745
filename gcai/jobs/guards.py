"""What pipeline runs and evaluations share while they call the LLM.

Both are :class:`~gcai.constitutions.models.Job` rows: a cancel flag polled from the
database, LLM usage summed onto the row, and a guard that turns "cancelled" and "the
server failed every retry" into job-level outcomes instead of per-item error records.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.models import F, Model

from gcai.core.llm.base import LLMCancelled, LLMTransportError
from gcai.core.llm.cache import cache_key
from gcai.core.llm.usage import UsageMeter


class JobCancelled(Exception):
    """The job was cancelled while it waited for the LLM."""


class LLMUnavailable(Exception):
    """The LLM server kept failing after all retries."""


class CancelCheck:
    """Polls the database at most once a second so a cancel reaches in-flight LLM work."""

    def __init__(self, model: type[Model], pk: int) -> None:
        self.model = model
        self.pk = pk
        self._checked = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._checked > 1.0:
            self._checked = now
            self._cancelled = self.model.objects.filter(pk=self.pk, cancel_requested=True).exists()
        return self._cancelled


class GuardedModel:
    """A ChatModel wrapper for jobs.

    A malformed answer is data (recorded per item by the stage); a server that failed
    every retry is not: carrying on would store a batch of error records that a resume
    never retries. Raising instead keeps the answered calls in the response cache.
    Identical questions in one batch (duplicate pairs are common in real data) are asked
    once; the cache would only catch them after the first answer lands.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "model")

    def complete(self, request):
        return self.inner.complete(request)

    def complete_many(self, requests):
        keys = [cache_key(self.name, r) for r in requests]
        first: dict[str, int] = {}
        unique = []
        for request, key in zip(requests, keys, strict=True):
            if key not in first:
                first[key] = len(unique)
                unique.append(request)
        answered = self.inner.complete_many(unique)
        results = [answered[first[key]] for key in keys]
        errors = [r.error for r in results if r.error is not None]
        if any(isinstance(e, LLMCancelled) for e in errors):
            raise JobCancelled()
        transport = [e for e in errors if isinstance(e, LLMTransportError)]
        if transport:
            raise LLMUnavailable(
                f"LLM server failed after retries on {len(transport)} request(s): {transport[0]}"
            )
        return results


def record_usage(model: type[Model], pk: int, meter: UsageMeter) -> None:
    """Add the meter's totals to the job row (atomic F() update) and reset the meter."""
    snap = meter.snapshot()
    if not snap["requests"] and not snap["calls"]:
        return
    model.objects.filter(pk=pk).update(
        llm_calls=F("llm_calls") + snap["calls"],
        llm_cached_calls=F("llm_cached_calls") + snap["cached_calls"],
        llm_errors=F("llm_errors") + snap["errors"],
        prompt_tokens=F("prompt_tokens") + snap["prompt_tokens"],
        completion_tokens=F("completion_tokens") + snap["completion_tokens"],
        cost_usd=F("cost_usd") + snap["cost_usd"],
    )
    meter.reset()
