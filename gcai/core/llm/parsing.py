"""Tolerant JSON extraction and JSON-schema validation for model output.

Models wrap JSON in code fences, put prose around it, add trailing commas, quote with
single quotes or think aloud first. :func:`extract_json` digs the JSON value out of all
that (json-repair fixes the syntax slips); :func:`validate` checks it against the schema
the request asked for (jsonschema); :func:`parse_output` does both and raises
:class:`LLMOutputError` with the raw text.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import json_repair
import jsonschema

from gcai.core.llm.base import LLMOutputError

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\r?\n?(.*?)```", re.DOTALL)
# Reasoning models served through vLLM/Ollama often emit their chain of thought first.
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MAX_CANDIDATES = 50


_CLOSING = {"{": "}", "[": "]"}


class IdentityMemo:
    """Values derived from a schema object, remembered per object (not per content).

    Request schemas are built once per batch and shared by its requests; deriving a
    validator or a resolved copy again for each request cost measurable CPU per call.
    The memo holds the object itself, so its id cannot be reused while remembered.
    """

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any, derive: Callable[[Any], Any]) -> Any:
        with self._lock:
            hit = self._items.get(id(key))
            if hit is not None and hit[0] is key:
                self._items.move_to_end(id(key))
                return hit[1]
        value = derive(key)
        with self._lock:
            self._items[id(key)] = (key, value)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


def _validator(schema: dict[str, Any]) -> Any:
    return jsonschema.validators.validator_for(schema)(schema)


_VALIDATORS = IdentityMemo()


def _repair(text: str) -> Any:
    """The JSON value in ``text`` with its syntax slips fixed (trailing commas, single
    quotes, missing commas...). Raises ``json.JSONDecodeError`` when there is none.

    Only a value that reaches its closing bracket is repaired: an answer cut off midway
    (at ``max_tokens``, say) would otherwise come back silently shortened, where the
    caller's repair round or error is the honest outcome.
    """
    text = text.strip()
    if not text or text[0] not in _CLOSING or not text.endswith(_CLOSING[text[0]]):
        raise json.JSONDecodeError("not a complete JSON object or array", text, 0)
    try:
        value = json_repair.loads(text)
    except Exception as exc:  # the repairer is best effort; never let it crash a parse
        raise json.JSONDecodeError(f"json-repair failed: {exc}", text, 0) from exc
    if not isinstance(value, dict | list):
        raise json.JSONDecodeError("json-repair found no JSON value", text, 0)
    return value


def _decode_prefix(text: str) -> Any:
    """Decode the JSON value that starts ``text``, ignoring whatever follows it."""
    try:
        value, _ = json.JSONDecoder(strict=False).raw_decode(text)
        return value
    except json.JSONDecodeError:
        # Repair up to the last bracket that could close the value: prose may follow.
        end = text.rfind(_CLOSING.get(text[:1], "\0"))
        return _repair(text[: end + 1] if end > 0 else "")


def _loads(text: str) -> Any:
    # strict=False accepts raw control characters (newlines, tabs) inside strings, which
    # small models often emit; the value is otherwise standard JSON.
    return json.loads(text, strict=False)


class _Missing:
    pass


_MISSING: Any = _Missing()


def _attempt(decode: Any, text: str) -> Any:
    """``decode(text)``, or the _MISSING sentinel if it is not JSON."""
    try:
        return decode(text)
    except json.JSONDecodeError:
        return _MISSING


def _candidates(text: str) -> Iterator[Any]:
    """Yield every JSON value found in ``text``, most likely first (may repeat values)."""
    text = _THINK.sub("", text).strip()
    if not text:
        return
    # 1. The whole answer is JSON (the structured-output case).
    yield _attempt(_loads, text)
    yield _attempt(_repair, text)
    # 2. Fenced blocks, ```json first.
    fences = sorted(_FENCE.findall(text), key=lambda m: m[0].lower() != "json")
    for _, body in fences:
        if body.strip():
            yield _attempt(_decode_prefix, body.strip())
    # 3. Any object or array embedded in prose, scanning left to right.
    for tried, match in enumerate(re.finditer(r"[{\[]", text)):
        if tried >= _MAX_CANDIDATES:
            break
        yield _attempt(_decode_prefix, text[match.start() :])


def extract_json(text: str, schema: dict[str, Any] | None = None) -> Any:
    """Return the JSON value embedded in a model answer.

    Accepts bare JSON, JSON in code fences, JSON surrounded by prose or followed by
    trailing text, and syntax slips such as trailing commas or single quotes. With a ``schema`` the first candidate that
    validates wins (prose often contains a stray ``{...}`` before the real answer);
    otherwise the first candidate that decodes.

    Raises ``ValueError`` when no JSON value can be found.
    """
    first: Any = _MISSING
    for value in _candidates(text):
        if value is _MISSING:
            continue
        if schema is None:
            return value
        if first is _MISSING:
            first = value
        if not validate(value, schema):
            return value
    if first is _MISSING:
        raise ValueError("no JSON value found in the model output")
    return first


def answer_payload(parsed: Any, text: str | None) -> Any:
    """What a model answered: the client's schema-checked parse when there is one, else
    the JSON value in the text (:func:`extract_json`), else the stripped text itself
    (``None`` for an empty answer). The one fallback every answer reader uses, for
    requests sent without a schema and for clients that only return text.
    """
    if parsed is not None:
        return parsed
    stripped = (text or "").strip()
    if not stripped:
        return None
    try:
        return extract_json(stripped)
    except ValueError:
        return stripped


def validate(value: Any, schema: dict[str, Any]) -> list[str]:
    """Validate ``value`` against ``schema`` (jsonschema, the schema's own draft or the
    latest); return up to ten human-readable errors (empty if valid)."""
    validator = _VALIDATORS.get(schema, _validator)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{_path(list(e.absolute_path))}: {e.message}" for e in errors[:10]]


def _path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in parts)


def parse_output(text: str, schema: dict[str, Any]) -> Any:
    """Extract and validate the JSON answer; raise :class:`LLMOutputError` if unusable."""
    try:
        value = extract_json(text, schema)
    except ValueError as exc:
        raise LLMOutputError(f"model output is not JSON: {exc}", raw=text) from exc
    errors = validate(value, schema)
    if errors:
        raise LLMOutputError(
            "model output does not match the schema: " + "; ".join(errors), raw=text
        )
    return value


def schema_instruction(schema: dict[str, Any]) -> str:
    """System-prompt text asking for schema-conforming JSON (servers without json_schema)."""
    return (
        "Respond with a single JSON value and nothing else (no prose, no code fences). "
        "It must conform to this JSON schema:\n"
        + json.dumps(schema, ensure_ascii=False, sort_keys=True)
    )
