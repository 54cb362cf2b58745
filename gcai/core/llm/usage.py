"""Per-run token and cost accounting shared by every ChatModel."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from gcai.core.llm.base import Usage

# {model: {"prompt": USD per 1M prompt tokens, "completion": USD per 1M completion tokens}}
PriceTable = Mapping[str, Mapping[str, float]]

_COUNTERS = (
    "requests",
    "calls",
    "cached_calls",
    "prompt_tokens",
    "completion_tokens",
    "errors",
)


def price_for(prices: PriceTable | None, model: str) -> Mapping[str, float] | None:
    """Look up a model's prices: exact name, else the longest matching prefix, else ``"*"``.

    Prefix matching lets ``"gpt-4o"`` price dated snapshots such as ``"gpt-4o-2024-08-06"``.
    """
    if not prices:
        return None
    if model in prices:
        return prices[model]
    prefixes = [name for name in prices if name != "*" and model.startswith(name)]
    if prefixes:
        return prices[max(prefixes, key=len)]
    return prices.get("*")


def estimate_cost(
    prices: PriceTable | None, model: str, prompt_tokens: int, completion_tokens: int
) -> float:
    """Estimated USD cost of the given token counts (0.0 for unpriced models)."""
    price = price_for(prices, model)
    if price is None:
        return 0.0
    return (
        prompt_tokens * float(price.get("prompt", 0.0))
        + completion_tokens * float(price.get("completion", 0.0))
    ) / 1_000_000


class UsageMeter:
    """Thread-safe running totals of model use for one pipeline run.

    ``requests`` counts logical requests, ``calls`` the model invocations actually
    made (retries and repair attempts included), ``cached_calls`` the requests served
    from the response cache, ``errors`` the requests that ended in an error.
    """

    def __init__(self, prices: PriceTable | None = None) -> None:
        self.prices: dict[str, Mapping[str, float]] = dict(prices or {})
        self._lock = threading.Lock()
        self._totals: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._cost = 0.0
        self._by_model: dict[str, dict[str, float]] = {}

    def record(
        self,
        model: str,
        usage: Usage,
        *,
        error: bool = False,
        cost: float | None = None,
    ) -> None:
        """Add one finished request. ``cost`` overrides the meter's own price table."""
        if cost is None:
            cost = (
                0.0
                if usage.cached
                else estimate_cost(self.prices, model, usage.prompt_tokens, usage.completion_tokens)
            )
        with self._lock:
            t = self._totals
            t["requests"] += 1
            t["calls"] += usage.calls
            t["cached_calls"] += int(usage.cached)
            t["prompt_tokens"] += usage.prompt_tokens
            t["completion_tokens"] += usage.completion_tokens
            t["errors"] += int(error)
            self._cost += cost
            m = self._by_model.setdefault(model, {k: 0 for k in (*_COUNTERS, "cost_usd")})
            m["requests"] += 1
            m["calls"] += usage.calls
            m["cached_calls"] += int(usage.cached)
            m["prompt_tokens"] += usage.prompt_tokens
            m["completion_tokens"] += usage.completion_tokens
            m["errors"] += int(error)
            m["cost_usd"] += cost

    def snapshot(self) -> dict[str, Any]:
        """Totals as a JSON-able dict (safe to store on a run or return from a task)."""
        with self._lock:
            snap: dict[str, Any] = dict(self._totals)
            snap["cost_usd"] = round(self._cost, 8)
            snap["by_model"] = {k: dict(v) for k, v in self._by_model.items()}
        return snap

    def merge(self, snapshot: Mapping[str, Any]) -> None:
        """Add another meter's :meth:`snapshot` (e.g. from a Celery chord member)."""
        with self._lock:
            for k in _COUNTERS:
                self._totals[k] += int(snapshot.get(k, 0))
            self._cost += float(snapshot.get("cost_usd", 0.0))
            for model, values in (snapshot.get("by_model") or {}).items():
                m = self._by_model.setdefault(model, {k: 0 for k in (*_COUNTERS, "cost_usd")})
                for k, v in values.items():
                    m[k] = m.get(k, 0) + v

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._totals = dict.fromkeys(_COUNTERS, 0)
            self._cost = 0.0
            self._by_model = {}
