"""Response cache: re-running a finished run must cost zero model calls.

The key is a full SHA-256 over everything that determines the answer, so a hit is
only ever returned for an identical request to the same model.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, Protocol, runtime_checkable

from gcai.core.llm.base import ChatRequest


@runtime_checkable
class ResponseCache(Protocol):
    """Stores one JSON-able dict per request key (see :func:`cache_key`)."""

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the stored entry, or ``None`` on a miss."""
        ...

    def set(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key`` (overwriting is allowed)."""
        ...


# A cache may also offer ``get_many(keys) -> {key: entry}`` and ``set_many({key: entry})``;
# clients use them when present (one round trip for a batch instead of one per request).


def _message_dict(message: Any) -> dict[str, Any]:
    if is_dataclass(message) and not isinstance(message, type):
        return asdict(message)
    if isinstance(message, dict):
        return dict(message)
    return {"role": message.role, "content": message.content}


def canonical_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Messages as plain ``{"role", "content"}`` dicts (accepts Message or dicts)."""
    return [_message_dict(m) for m in messages]


def cache_key(model: str, request: ChatRequest) -> str:
    """Full SHA-256 hex of the canonical JSON of everything that shapes the answer.

    ``purpose`` is deliberately left out: it is an accounting tag, and two stages
    asking the identical question may share the answer.
    """
    payload = {
        "model": model,
        "messages": canonical_messages(request.messages),
        "schema": request.schema,
        "temperature": request.temperature,
        "seed": request.seed,
        "max_tokens": request.max_tokens,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class MemoryCache:
    """Thread-safe in-process cache (tests, benchmarks, one-off scripts)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the entry for ``key`` or ``None``."""
        with self._lock:
            value = self._data.get(key)
        # Copy so callers cannot mutate what later hits will see.
        return json.loads(json.dumps(value)) if value is not None else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        """Store a JSON round-tripped copy of ``value``."""
        copy = json.loads(json.dumps(value))
        with self._lock:
            self._data[key] = copy

    def set_many(self, entries: dict[str, dict[str, Any]]) -> None:
        """Store several entries at once."""
        copies = {k: json.loads(json.dumps(v)) for k, v in entries.items()}
        with self._lock:
            self._data.update(copies)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
