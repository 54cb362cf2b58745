"""Database-backed caches for LLM answers and embeddings (adapters for gcai.core).

Keys are SHA-256 hex digests computed in gcai.core, so rows are shared by every run
and every worker: re-running a finished run costs zero model calls. Writes ignore
conflicts because two workers may answer the same request at the same time, and
identical keys mean identical requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from gcai.constitutions.models import EmbeddingCacheEntry, LLMCacheEntry

# Stay well under SQLite's bound-parameter limit on older builds (999).
_CHUNK = 500


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


class DatabaseResponseCache:
    """:class:`gcai.core.llm.cache.ResponseCache` on ``LLMCacheEntry`` rows."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or ``None``."""
        return LLMCacheEntry.objects.filter(pk=key).values_list("response", flat=True).first()

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Responses found for ``keys``, in as few queries as the chunking allows."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            found.update(LLMCacheEntry.objects.filter(pk__in=chunk).values_list("key", "response"))
        return found

    def set(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value``; an existing row for ``key`` is kept."""
        self.set_many({key: value})

    def set_many(self, entries: Mapping[str, dict[str, Any]]) -> None:
        """Store several responses in one statement; existing rows are kept.

        A plain multi-row INSERT rather than ``bulk_create``: on PostgreSQL Django sends
        bulk rows as arrays (UNNEST), and escaping every quote of every JSON answer into
        an array literal cost milliseconds of CPU per answer.
        """
        if not entries:
            return
        now = timezone.now()
        rows = [
            (key, str(value.get("model", ""))[:200], json.dumps(value), now)
            for key, value in entries.items()
        ]
        qn = connection.ops.quote_name
        columns = ", ".join(qn(c) for c in ("key", "model", "response", "created_at"))
        sql = (
            f"INSERT INTO {qn(LLMCacheEntry._meta.db_table)} ({columns}) "
            f"VALUES (%s, %s, %s, %s) ON CONFLICT ({qn('key')}) DO NOTHING"
        )
        outermost = not connection.in_atomic_block
        with transaction.atomic(), connection.cursor() as cursor:
            if outermost and connection.vendor == "postgresql":
                # A cache row lost to a server crash only costs a repeated call; not
                # waiting for the WAL flush keeps the LLM slots busy.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.executemany(sql, rows)


class DatabaseEmbeddingCache:
    """:class:`gcai.core.embed.EmbeddingCache` on ``EmbeddingCacheEntry`` rows (float32 bytes)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors found for ``keys``; rows whose byte length disagrees with ``dim`` are skipped."""
        found: dict[str, np.ndarray] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            rows = EmbeddingCacheEntry.objects.filter(pk__in=chunk).values_list(
                "key", "dim", "vector"
            )
            for key, dim, blob in rows:
                # PostgreSQL hands back a memoryview, SQLite bytes.
                vector = np.frombuffer(bytes(blob), dtype="<f4")
                if vector.shape[0] == dim:
                    found[key] = vector.astype(np.float32)
        return found

    def set_many(self, items: Mapping[str, np.ndarray], *, model: str = "") -> None:
        """Store vectors as little-endian float32; existing keys are kept."""
        entries = []
        for key, vector in items.items():
            arr = np.asarray(vector, dtype="<f4").ravel()
            entries.append(
                EmbeddingCacheEntry(
                    key=key, model=model[:200], dim=int(arr.shape[0]), vector=arr.tobytes()
                )
            )
        EmbeddingCacheEntry.objects.bulk_create(entries, ignore_conflicts=True, batch_size=_CHUNK)
