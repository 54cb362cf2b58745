"""The configured chat model and embedder, built from Django settings.

Everything pipeline code needs from settings passes through here, so gcai.core stays
free of Django: the settings become an :class:`LLMSettings`, and the database caches
are plugged in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from gcai.constitutions.llm_cache import DatabaseEmbeddingCache, DatabaseResponseCache
from gcai.core.embed import Embedder, build_embedder
from gcai.core.llm.base import ChatModel
from gcai.core.llm.factory import LLMSettings, build_chat_model
from gcai.core.llm.local import GEMMA_NAME, gemma_model_path
from gcai.core.llm.usage import UsageMeter


def llm_settings() -> LLMSettings:
    """The chat-model settings in force (defaults hold when a setting is absent)."""
    backend = getattr(settings, "GCAI_LLM_BACKEND", "local") or "local"
    model = getattr(settings, "GCAI_LLM_MODEL", "") or ""
    # For the local backend the model setting is only meaningful as a path to a GGUF
    # file; a model name like "smollm2-135m-instruct" means "the bundled one".
    model_path = model if backend == "local" and model.endswith(".gguf") else None
    if backend == "local" and model == GEMMA_NAME:
        model_path = str(gemma_model_path(Path(settings.VAR_DIR) / "models"))
    if model_path and not Path(model_path).is_file():
        raise ValueError(f"GCAI_LLM_MODEL points to a missing GGUF file: {model_path}")
    return LLMSettings(
        backend=backend,
        base_url=getattr(settings, "GCAI_LLM_BASE_URL", None) or None,
        api_key=getattr(settings, "OPENAI_API_KEY", "") or "",
        model=model or "gpt-4o-mini",
        timeout=float(getattr(settings, "GCAI_LLM_TIMEOUT", 60.0)),
        max_retries=int(getattr(settings, "GCAI_LLM_MAX_RETRIES", 5)),
        concurrency=int(getattr(settings, "GCAI_LLM_CONCURRENCY", 16)),
        prices=dict(getattr(settings, "GCAI_LLM_PRICES", {}) or {}),
        model_path=model_path,
    )


def chat_model_for(
    meter: UsageMeter | None = None, should_cancel: Callable[[], bool] | None = None
) -> ChatModel:
    """The configured ChatModel with the database response cache.

    ``meter`` collects the run's usage; ``should_cancel`` is polled from the calling
    thread only, so it may query the database.
    """
    return build_chat_model(
        llm_settings(), cache=DatabaseResponseCache(), meter=meter, should_cancel=should_cancel
    )


def embedder() -> Embedder:
    """The configured Embedder behind the database embedding cache."""
    kind = getattr(settings, "GCAI_EMBEDDINGS", "local") or "local"
    return build_embedder(
        kind,
        model=getattr(settings, "GCAI_EMBEDDING_MODEL", None) or None,
        # Embeddings usually live on the same OpenAI-compatible server as chat.
        base_url=getattr(settings, "GCAI_EMBEDDING_BASE_URL", None)
        or getattr(settings, "GCAI_LLM_BASE_URL", None)
        or None,
        api_key=getattr(settings, "OPENAI_API_KEY", None) or None,
        timeout=float(getattr(settings, "GCAI_LLM_TIMEOUT", 60.0)),
        max_retries=int(getattr(settings, "GCAI_LLM_MAX_RETRIES", 5)),
        max_tokens=getattr(settings, "GCAI_EMBEDDING_MAX_TOKENS", None),
        cache=DatabaseEmbeddingCache(),
    )


def fast_content_embedder(max_tokens: int) -> Embedder:
    """Improved 2's fast content encoder, behind the database embedding cache.

    The configured local model (the bundled MiniLM, or a sentence-transformer directory)
    through ONNX Runtime with int8 weights, reading ``max_tokens`` word pieces (see
    :mod:`gcai.core.fast_embed`). An embeddings endpoint (``GCAI_EMBEDDINGS=openai``) is
    the researcher's choice of model and is used as configured.
    """
    kind = getattr(settings, "GCAI_EMBEDDINGS", "local") or "local"
    if kind not in ("local", "onnx"):
        return embedder()
    return build_embedder(
        "onnx",
        model=getattr(settings, "GCAI_EMBEDDING_MODEL", None) or None,
        max_tokens=max_tokens,
        cache=DatabaseEmbeddingCache(),
    )


def configured_backend() -> str:
    """``local`` (the embedded model) or ``openai``, as configured now; stored with each job."""
    return str(getattr(settings, "GCAI_LLM_BACKEND", "local") or "local")


def embedded_model_of(*jobs: Any) -> str:
    """The embedded model's name if any of ``jobs`` (runs, evaluations) used it, else "".

    Pages built from the tiny offline model say so (see templates/_embedded_model.html):
    its principles and judgements show that the loop works, not research results.
    """
    for job in jobs:
        if job is not None and (job.config or {}).get("llm_backend") == "local":
            return job.llm_model or "the embedded model"
    return ""
