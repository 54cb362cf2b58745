"""Well-formed principles: the grammar pattern, the sentence check and the quality gate."""

from __future__ import annotations

import importlib.util
import json

import pytest

from gcai.core.cluster import SUMMARY_SCHEMA
from gcai.core.grounded import CONTEXTUAL_SCHEMA, GENERAL_SCHEMA
from gcai.core.icai import GENERATION_SCHEMA
from gcai.core.llm.local import grammar_schema
from gcai.core.llm.structured import resolve_principle_format
from gcai.core.quality import (
    PRINCIPLE_PATTERN,
    PrincipleInput,
    is_well_formed,
    matches_grammar,
    quality_check,
    sentence_problems,
)

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
GARBAGE = [
    "] } ```python 1. The person explained their judgement",
    "] } ```python3.x, Python version of this code is not available ... SAMSUNG-1082",
    "Select the response that is concise. 2. Select the response that is kind.",
    "Select the response that\nis concise.",
    "Select the response that is concise",
    "select the response that is concise.",
    "Be concise.",
]


def test_pattern_accepts_a_plain_principle_sentence():
    assert matches_grammar("Select the response that is concise.")
    assert matches_grammar("Select the response that explains, step by step, its user's options.")
    assert is_well_formed("Select the response that is concise.")


@pytest.mark.parametrize("text", GARBAGE)
def test_pattern_and_sentence_check_reject_debris_and_second_sentences(text):
    assert not matches_grammar(text)
    assert not is_well_formed(text)


def test_everything_the_grammar_allows_passes_the_sentence_check():
    samples = [
        "Select the response that is concise.",
        "Select the response that avoids jargon, uses plain words, and stays polite.",
        "Select the response that " + " ".join(["word"] * 40) + ".",
    ]
    for text in samples:
        assert matches_grammar(text)
        assert sentence_problems(text) == []


def test_sentence_problems_say_what_is_wrong():
    problems = sentence_problems("] } ```python 1. The person explained their judgement")
    assert any("Select the response that" in p for p in problems)
    assert "contains code or markup characters" in problems
    assert "does not end with a full stop" in problems


@pytest.mark.parametrize(
    "schema", [GENERATION_SCHEMA, CONTEXTUAL_SCHEMA, GENERAL_SCHEMA, SUMMARY_SCHEMA]
)
def test_every_principle_schema_gets_the_pattern_in_the_grammar_only(schema):
    constrained = json.dumps(grammar_schema(schema))
    assert json.dumps(PRINCIPLE_PATTERN)[1:-1] in constrained
    remote = json.dumps(resolve_principle_format(schema, constrain=False))
    assert "pattern" not in remote
    assert "gcai-principle" not in remote


@pytest.mark.skipif(not HAS_LLAMA, reason="needs the `local` extra")
def test_llama_cpp_turns_the_principle_schema_into_a_grammar_with_the_prefix():
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = json_schema_to_gbnf(json.dumps(grammar_schema(CONTEXTUAL_SCHEMA)))
    assert '"Select the response that"' in grammar
    assert "\\." not in grammar  # llama.cpp's parser rejects this escape


# --------------------------------------------------------------------------- the gate


def _inputs(*texts: str, evidence: int = 2) -> list[PrincipleInput]:
    return [PrincipleInput(i, t, evidence) for i, t in enumerate(texts, 1)]


def test_gate_passes_distinct_well_formed_principles_with_evidence():
    assert (
        quality_check(
            _inputs(
                "Select the response that is concise.",
                "Select the response that respects the user's autonomy.",
            )
        )
        == []
    )


def test_gate_flags_a_malformed_principle():
    flags = quality_check(_inputs("] } ```python 1. The person explained their judgement"))
    assert [(f.position, f.kind) for f in flags] == [(1, "malformed")]


def test_gate_flags_exact_and_near_duplicates():
    flags = quality_check(
        _inputs(
            "Select the response that is concise.",
            "Select the response that is CONCISE .",
            "Select the response that is clear and concise.",
            "Select the response that is concise and clear.",
            "Select the response that is not concise.",
        )
    )
    dupes = [(f.position, f.message) for f in flags if f.kind == "duplicate"]
    assert dupes[0] == (2, "Same text as principle 1")
    assert dupes[1][0] == 4
    assert "Nearly the same as principle 3" in dupes[1][1]
    assert len(dupes) == 2


def test_gate_flags_principles_without_evidence():
    flags = quality_check(
        [
            PrincipleInput(1, "Select the response that is concise.", 0),
            PrincipleInput(2, "Select the response that respects privacy.", 3),
        ]
    )
    assert [(f.position, f.kind) for f in flags] == [(1, "no_evidence")]
