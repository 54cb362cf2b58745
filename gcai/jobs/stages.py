"""A job is a list of stages. A stage is *whole* (``compute(ctx) -> dict``) or *batched*
(``items(ctx)`` cut into batches, ``compute_batch(ctx, items) -> dict`` per batch,
``merge(ctx, parts) -> dict`` once all are stored). ``ctx`` is whatever the job kind's
``inputs`` builds (a run's inputs, an evaluation's, a steering run's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_BATCH_SIZE = 25


class StageError(Exception):
    """A stage cannot proceed; the job is marked failed with this message."""


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    # Whole stage: compute(ctx) -> dict. Batched: items(ctx) -> list, compute_batch(ctx,
    # items) -> dict, merge(ctx, [dict]) -> dict.
    compute: Callable[[Any], dict[str, Any]] | None = None
    items: Callable[[Any], Sequence[Any]] | None = None
    compute_batch: Callable[[Any, Sequence[Any]], dict[str, Any]] | None = None
    merge: Callable[[Any, list[dict[str, Any]]], dict[str, Any]] | None = None

    @property
    def batched(self) -> bool:
        return self.items is not None


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def concatenate(key: str) -> Callable[[Any, list[dict[str, Any]]], dict[str, Any]]:
    """A batched stage's ``merge`` for outputs shaped ``{key: [rows]}``: the batches' rows,
    in batch order."""

    def merge(ctx: Any, parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {key: [row for part in parts for row in part[key]]}

    return merge
