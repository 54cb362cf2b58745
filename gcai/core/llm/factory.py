"""Build the configured ChatModel from plain settings (no Django here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gcai.core.llm.base import ChatModel
from gcai.core.llm.cache import ResponseCache
from gcai.core.llm.usage import UsageMeter

BACKENDS = ("openai", "local")


@dataclass(slots=True)
class LLMSettings:
    """Where chat requests go.

    ``backend="openai"`` covers every OpenAI-compatible server through ``base_url``
    (None means api.openai.com). ``backend="local"`` runs the bundled SmolLM2 in
    process; ``model_path`` may point it at another GGUF file.
    """

    backend: str = "local"
    base_url: str | None = None
    api_key: str = ""
    model: str = "gpt-4o-mini"
    timeout: float = 60.0
    max_retries: int = 5
    concurrency: int = 16
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    model_path: str | None = None
    n_ctx: int = 4096

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown LLM backend {self.backend!r}; expected one of {BACKENDS}")
        if self.concurrency < 1:
            raise ValueError("LLM concurrency must be at least 1")
        if self.max_retries < 0:
            raise ValueError("LLM max_retries cannot be negative")
        if self.timeout <= 0:
            raise ValueError("LLM timeout must be positive")


def build_chat_model(
    settings: LLMSettings,
    cache: ResponseCache | None = None,
    meter: UsageMeter | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> ChatModel:
    """Return the ChatModel ``settings`` describe, wired to ``cache``, ``meter`` and cancellation."""
    if settings.backend == "local":
        from gcai.core.llm.local import LocalChatModel

        return LocalChatModel(
            model_path=settings.model_path,
            n_ctx=settings.n_ctx,
            cache=cache,
            meter=meter,
            should_cancel=should_cancel,
        )
    from gcai.core.llm.openai_client import OpenAIChatModel

    return OpenAIChatModel(
        model=settings.model,
        base_url=settings.base_url or None,
        api_key=settings.api_key or None,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        concurrency=settings.concurrency,
        prices=settings.prices,
        cache=cache,
        meter=meter,
        should_cancel=should_cancel,
    )
