"""Shared steps of every ChatModel: the repair round and cache entries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gcai.core.llm.base import ChatRequest, ChatResult, LLMOutputError, Usage
from gcai.core.llm.parsing import IdentityMemo, parse_output, schema_instruction
from gcai.core.quality import PRINCIPLE_FORMAT, PRINCIPLE_PATTERN

logger = logging.getLogger(__name__)

REPAIR_PROMPT = (
    "Your previous answer could not be used: {error}\n"
    "Reply again with only the corrected JSON value, conforming to the schema. "
    "No explanations, no code fences."
)

# (messages) -> (content, finish_reason)
Caller = Callable[[list[dict[str, Any]]], tuple[str, str | None]]


def parse_with_repair(
    text: str,
    finish_reason: str | None,
    schema: dict[str, Any],
    messages: list[dict[str, Any]],
    call: Caller,
) -> tuple[str, Any]:
    """Parse ``text`` against ``schema``; on failure ask the model once to fix its answer.

    ``messages`` are the ones that produced ``text``; ``call`` sends a new
    conversation. Returns ``(final_text, parsed)``. Raises :class:`LLMOutputError`
    (carrying the raw text) when the answer was cut off at ``max_tokens`` (a repair
    would be cut off too) or is still unusable after the repair.
    """
    try:
        return text, parse_output(text, schema)
    except LLMOutputError as first:
        if finish_reason == "length":
            raise LLMOutputError(
                "output cut off at max_tokens before the JSON was complete", raw=text
            ) from first
        logger.info("unusable JSON from the model, asking for a repair: %s", first)
        repair = [
            *messages,
            {"role": "assistant", "content": text},
            {"role": "user", "content": REPAIR_PROMPT.format(error=first)},
        ]
        text, finish_reason = call(repair)
        try:
            return text, parse_output(text, schema)
        except LLMOutputError as second:
            reason = "cut off at max_tokens" if finish_reason == "length" else str(second)
            raise LLMOutputError(
                f"unusable output after one repair attempt: {reason}", raw=text
            ) from second


def result_to_entry(model: str, result: ChatResult) -> dict[str, Any]:
    """The JSON-able dict a ResponseCache stores for a successful result."""
    return {
        "text": result.text,
        "parsed": result.parsed,
        "model": model,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
        },
    }


def entry_to_result(entry: dict[str, Any] | None) -> ChatResult | None:
    """A cache hit as a ChatResult: zero calls, zero tokens billed, ``usage.cached``."""
    if not entry or "text" not in entry:
        return None
    return ChatResult(text=entry["text"], parsed=entry.get("parsed"), usage=Usage(cached=True))


def with_schema_instruction(
    messages: list[dict[str, Any]], schema: dict[str, Any]
) -> list[dict[str, Any]]:
    """Put the schema into the system message (appending to an existing one)."""
    instruction = schema_instruction(schema)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        first["content"] = f"{first.get('content', '')}\n\n{instruction}".strip()
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def resolve_principle_format(schema: Any, *, constrain: bool) -> Any:
    """A copy of ``schema`` with the principle-string marker resolved.

    ``constrain=True`` (a grammar that understands ``pattern``, i.e. llama.cpp) turns
    every string of format :data:`~gcai.core.quality.PRINCIPLE_FORMAT` into
    :data:`~gcai.core.quality.PRINCIPLE_PATTERN`; ``constrain=False`` drops the marker, so
    a remote server never sees a format it does not know and validation stays lenient
    (the quality gate judges the wording before anything is published).
    """
    if isinstance(schema, list):
        return [resolve_principle_format(s, constrain=constrain) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: resolve_principle_format(v, constrain=constrain) for k, v in schema.items()}
    if out.get("format") == PRINCIPLE_FORMAT:
        del out["format"]
        if constrain:
            out.pop("maxLength", None)  # the pattern bounds the length itself
            out["pattern"] = PRINCIPLE_PATTERN
    return out


_UNCONSTRAINED = IdentityMemo()


def without_principle_format(request: ChatRequest) -> ChatRequest:
    """``request`` with the principle marker dropped from its schema (for remote servers)."""
    if request.schema is None:
        return request
    resolved = _UNCONSTRAINED.get(
        request.schema, lambda schema: resolve_principle_format(schema, constrain=False)
    )
    if resolved == request.schema:
        return request
    return replace(request, schema=resolved)
