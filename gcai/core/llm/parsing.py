"""Tolerant JSON extraction and minimal JSON-schema validation for model output.

Models wrap JSON in code fences, put prose around it, add trailing commas or think
aloud first. :func:`extract_json` digs the JSON value out of all that;
:func:`validate` checks it against the schema the request asked for;
:func:`parse_output` does both and raises :class:`LLMOutputError` with the raw text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from gcai.core.llm.base import LLMOutputError

try:  # jsonschema comes with drf-spectacular; the fallback keeps gcai.core standalone.
    import jsonschema as _jsonschema
except ImportError:  # pragma: no cover - exercised through validate_minimal directly
    _jsonschema = None  # type: ignore[assignment]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\r?\n?(.*?)```", re.DOTALL)
# Reasoning models served through vLLM/Ollama often emit their chain of thought first.
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MAX_CANDIDATES = 50


def _strip_trailing_commas(text: str) -> str:
    """Drop commas directly before ``}`` or ``]`` (outside strings), a common model slip."""
    out: list[str] = []
    in_string = False
    escaped = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1
                continue
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _decode_prefix(text: str) -> Any:
    """Decode the JSON value that starts ``text``, ignoring whatever follows it."""
    decoder = json.JSONDecoder(strict=False)
    try:
        value, _ = decoder.raw_decode(text)
        return value
    except json.JSONDecodeError:
        value, _ = decoder.raw_decode(_strip_trailing_commas(text))
        return value


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
    yield _attempt(lambda t: _loads(_strip_trailing_commas(t)), text)
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
    trailing text, and trailing commas. With a ``schema`` the first candidate that
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


def validate(value: Any, schema: dict[str, Any]) -> list[str]:
    """Validate ``value`` against ``schema``; return human-readable errors (empty if valid).

    Uses ``jsonschema`` when installed, else :func:`validate_minimal`.
    """
    if _jsonschema is None:
        return validate_minimal(value, schema)
    validator_cls = _jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{_path(list(e.absolute_path))}: {e.message}" for e in errors[:10]]


def _path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in parts)


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    # bool is an int subclass in Python; JSON keeps them apart.
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate_minimal(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Validate the JSON-schema subset GCAI prompts use, without third-party packages.

    Supported: ``type`` (single or list), ``enum``, ``const``, ``properties``,
    ``required``, ``additionalProperties: false``, ``items``, ``minItems``,
    ``maxItems``, ``minLength``, ``maxLength``, ``minimum``, ``maximum``, ``anyOf``.
    """
    errors: list[str] = []
    if "anyOf" in schema:
        options = schema["anyOf"]
        if not any(not validate_minimal(value, s, path) for s in options):
            errors.append(f"{path}: does not match any allowed alternative")
        return errors
    expected = schema.get("type")
    if expected is not None:
        kinds = expected if isinstance(expected, list) else [expected]
        if not any(_TYPES.get(k, lambda v: True)(value) for k in kinds):
            return [f"{path}: expected {' or '.join(kinds)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required property {key!r}")
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key in value:
                errors.extend(validate_minimal(value[key], sub, f"{path}[{key!r}]"))
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(props))
            if extra:
                errors.append(f"{path}: unexpected properties {extra!r}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: needs at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: allows at most {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                errors.extend(validate_minimal(item, items, f"{path}[{i}]"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: below minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: above maximum {schema['maximum']}")
    return errors


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
