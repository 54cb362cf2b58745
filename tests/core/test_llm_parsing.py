"""Tolerant JSON extraction and schema validation of model output."""

from __future__ import annotations

import pytest

from gcai.core.llm.base import LLMOutputError
from gcai.core.llm.parsing import (
    extract_json,
    parse_output,
    schema_instruction,
    validate,
)

PRINCIPLES = {
    "type": "object",
    "properties": {
        "principles": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": 3,
        },
        "verdict": {"type": "string", "enum": ["a", "b", "tie"]},
        "confidence": {"type": "number"},
        "count": {"type": "integer"},
        "applies": {"type": "boolean"},
    },
    "required": ["principles", "verdict"],
}
GOOD = {"principles": ["Select the response that is honest."], "verdict": "a"}


@pytest.mark.parametrize(
    "text",
    [
        '{"principles": ["Select the response that is honest."], "verdict": "a"}',
        '```json\n{"principles": ["Select the response that is honest."], "verdict": "a"}\n```',
        '```\n{"principles": ["Select the response that is honest."], "verdict": "a"}\n```',
        'Sure! Here is my answer:\n{"principles": ["Select the response that is honest."],'
        ' "verdict": "a"}\nLet me know if you need anything else.',
        '{"principles": ["Select the response that is honest."], "verdict": "a"} trailing {',
        '{"principles": ["Select the response that is honest.",], "verdict": "a",}',
        "<think>The user wants {json}. Let me think.</think>\n"
        '{"principles": ["Select the response that is honest."], "verdict": "a"}',
        '  \n\n{"principles": ["Select the response that is honest."], "verdict": "a"}\n\n',
    ],
    ids=["bare", "json-fence", "plain-fence", "prose", "trailing", "commas", "think", "spaces"],
)
def test_extract_json_digs_the_answer_out_of_common_model_wrappings(text):
    assert extract_json(text, PRINCIPLES) == GOOD
    assert extract_json(text) == GOOD


def test_extract_json_with_schema_skips_a_stray_object_in_the_prose():
    text = 'Rule: {"x": 1} applies. Answer: {"principles": ["Be kind."], "verdict": "tie"}'
    assert extract_json(text) == {"x": 1}
    assert extract_json(text, PRINCIPLES) == {"principles": ["Be kind."], "verdict": "tie"}


def test_extract_json_returns_arrays_and_keeps_commas_inside_strings():
    assert extract_json('Result: ["a, ]", "b"]') == ["a, ]", "b"]
    assert extract_json('{"t": "x,}"}') == {"t": "x,}"}


@pytest.mark.parametrize("text", ["", "   ", "no json here", '{"principles": ["cut off'])
def test_extract_json_raises_when_there_is_no_json(text):
    with pytest.raises(ValueError, match="no JSON"):
        extract_json(text)


def test_parse_output_raises_output_error_carrying_the_raw_text():
    with pytest.raises(LLMOutputError) as info:
        parse_output("I cannot comply.", PRINCIPLES)
    assert info.value.raw == "I cannot comply."


def test_parse_output_reports_schema_violations():
    with pytest.raises(LLMOutputError, match="verdict") as info:
        parse_output('{"principles": ["x"], "verdict": "maybe"}', PRINCIPLES)
    assert "maybe" in info.value.raw


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (GOOD, True),
        ({**GOOD, "confidence": 0.5, "count": 2, "applies": False}, True),
        ({**GOOD, "count": 2.0}, True),  # integral floats count as integers in JSON Schema
        ({"verdict": "a"}, False),  # required
        ({**GOOD, "verdict": "c"}, False),  # enum
        ({**GOOD, "principles": []}, False),  # minItems
        ({**GOOD, "principles": ["a", "b", "c", "d"]}, False),  # maxItems
        ({**GOOD, "principles": [1]}, False),  # items type
        ({**GOOD, "count": 1.5}, False),  # integer
        ({**GOOD, "count": True}, False),  # booleans are not integers
        ({**GOOD, "confidence": "high"}, False),  # number
        ({**GOOD, "applies": "yes"}, False),  # boolean
        (["not", "an", "object"], False),
    ],
)
def test_validator_covers_the_schema_subset_we_use(value, ok):
    assert (validate(value, PRINCIPLES) == []) is ok


def test_validator_supports_closed_objects_lengths_ranges_and_any_of():
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string", "minLength": 2, "maxLength": 3},
            "n": {"type": "number", "minimum": 0, "maximum": 1},
            "v": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "additionalProperties": False,
    }
    assert validate({"s": "ab", "n": 0.5, "v": None}, schema) == []
    errors = validate({"s": "a", "n": 2, "v": 3, "extra": 1}, schema)
    assert len(errors) == 4
    assert any("$['s']" in e for e in errors)


def test_schema_instruction_embeds_the_schema():
    text = schema_instruction(PRINCIPLES)
    assert '"principles"' in text
    assert "JSON" in text


def test_raw_newlines_inside_strings_are_accepted():
    from gcai.core.llm.parsing import parse_output

    raw = '{"principles": ["Select the response that is\nbrief."]}'
    schema = {
        "type": "object",
        "properties": {"principles": {"type": "array", "items": {"type": "string"}}},
    }
    assert parse_output(raw, schema) == {"principles": ["Select the response that is\nbrief."]}


@pytest.mark.parametrize(
    "text",
    [
        "{'principles': ['Select the response that is honest.'], 'verdict': 'a'}",
        '{"principles": ["Select the response that is honest."] "verdict": "a"}',
        'Here: {"principles": ["Select the response that is honest.",], "verdict": "a",} ok?',
    ],
    ids=["single-quotes", "missing-comma", "commas-in-prose"],
)
def test_syntax_slips_are_repaired(text):
    assert extract_json(text, PRINCIPLES) == GOOD


@pytest.mark.parametrize(
    "text",
    ['{"principles": ["Select the response', 'Answer: {"principles": ["a", "b"], "verdict": "a"'],
)
def test_an_answer_cut_off_midway_is_not_completed(text):
    # A silently shortened answer would pass as whole; the caller asks again instead.
    with pytest.raises(LLMOutputError):
        parse_output(text, PRINCIPLES)


def test_answer_payload_prefers_the_clients_parse_then_json_in_text_then_text():
    from gcai.core.llm.parsing import answer_payload

    assert answer_payload({"choice": "A"}, "ignored") == {"choice": "A"}
    assert answer_payload(None, 'Sure: ```json\n{"choice": "B",}\n```') == {"choice": "B"}
    assert answer_payload(None, "  Response A  ") == "Response A"
    assert answer_payload(None, "   ") is None
    assert answer_payload(None, None) is None
