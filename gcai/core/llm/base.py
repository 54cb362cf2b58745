"""The one interface every LLM call goes through.

Pipelines depend on :class:`ChatModel` only; the OpenAI-compatible client, the
embedded local model and test fakes all implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gcai.core.types import Message


class LLMError(Exception):
    """Base class for failures a pipeline records instead of crashing on."""


class LLMTransportError(LLMError):
    """The server could not be reached or kept failing after all retries."""


class LLMOutputError(LLMError):
    """The model answered but the answer was unusable (malformed, truncated, empty)."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class LLMCancelled(LLMError):
    """The caller cancelled the request (e.g. the run was cancelled)."""


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    calls: int = 0  # HTTP/model invocations actually made (retries included)


@dataclass(slots=True)
class ChatRequest:
    messages: Sequence[Message]
    schema: dict[str, Any] | None = None  # JSON schema the answer must satisfy
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int | None = None
    # Free-form tag for accounting/debugging ("icai.generate", ...); not part of the cache key.
    purpose: str = ""


@dataclass(slots=True)
class ChatResult:
    text: str
    parsed: Any = None  # the JSON object when a schema was given
    usage: Usage = field(default_factory=Usage)
    error: LLMError | None = None  # set instead of raising by ChatModel.complete_many

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class ChatModel(Protocol):
    """Messages (+ optional JSON schema) in; text, parsed object and usage out."""

    name: str

    def complete(self, request: ChatRequest) -> ChatResult:
        """One request. Raises :class:`LLMError` subclasses on failure."""
        ...

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Many requests with bounded concurrency; results in input order.

        Never raises for a single failed request: its ChatResult carries ``error``.
        """
        ...
