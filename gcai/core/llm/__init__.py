"""LLM access for the pipelines: one ChatModel interface, several backends.

Importing this package is cheap: the openai SDK and llama.cpp load only when a
client is built.
"""

from gcai.core.llm.base import (
    ChatModel,
    ChatRequest,
    ChatResult,
    LLMCancelled,
    LLMError,
    LLMOutputError,
    LLMTransportError,
    Usage,
)
from gcai.core.llm.cache import MemoryCache, ResponseCache, cache_key
from gcai.core.llm.factory import LLMSettings, build_chat_model
from gcai.core.llm.parsing import extract_json, parse_output, validate
from gcai.core.llm.usage import UsageMeter

__all__ = [
    "ChatModel",
    "ChatRequest",
    "ChatResult",
    "LLMCancelled",
    "LLMError",
    "LLMOutputError",
    "LLMSettings",
    "LLMTransportError",
    "MemoryCache",
    "ResponseCache",
    "Usage",
    "UsageMeter",
    "build_chat_model",
    "cache_key",
    "extract_json",
    "parse_output",
    "validate",
]
