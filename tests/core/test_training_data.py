"""Rows in TRL's formats, conditioned on a constitution as configured."""

from __future__ import annotations

import pytest

from gcai.core.training_data import (
    GENERATION_FORM,
    ExportPair,
    ExportSettings,
    RewordRule,
    constitution_block,
    rows_for,
)

PRINCIPLES = ["Select the response that is honest.", "select the response that is brief."]
PAIR = ExportPair(prompt="Q?", response_a="long answer", response_b="short", label="b")


def test_rewording_turns_selection_form_into_generation_form():
    rule = RewordRule()
    assert rule.apply("Select the response that is honest.") == (f"{GENERATION_FORM} is honest.")
    assert rule.apply("Prefer honesty.") == "Prefer honesty."
    edited = RewordRule("select the response that", "Write a response that")
    assert edited.apply(PRINCIPLES[1]) == "Write a response that is brief."


def test_dpo_conversational_puts_the_constitution_in_the_user_turn():
    (row,) = rows_for(PAIR, PRINCIPLES, ExportSettings())
    assert row["chosen"] == [{"role": "assistant", "content": "short"}]
    assert row["rejected"] == [{"role": "assistant", "content": "long answer"}]
    (turn,) = row["prompt"]
    assert turn["role"] == "user"
    assert turn["content"].endswith("\n\nQ?")
    assert f"1. {GENERATION_FORM} is honest." in turn["content"]


def test_system_placement_and_no_rewording():
    (row,) = rows_for(PAIR, PRINCIPLES, ExportSettings(placement="system", reword=False))
    assert row["prompt"][0]["role"] == "system"
    assert "2. select the response that is brief." in row["prompt"][0]["content"]
    assert row["prompt"][1] == {"role": "user", "content": "Q?"}


def test_standard_strings_and_kto_rows():
    (row,) = rows_for(PAIR, PRINCIPLES, ExportSettings(style="standard"))
    assert isinstance(row["prompt"], str)
    assert row["chosen"] == "short"
    kto = rows_for(PAIR, PRINCIPLES, ExportSettings(kind="kto", style="standard"))
    assert [(r["completion"], r["label"]) for r in kto] == [("short", True), ("long answer", False)]


def test_sft_rows_answer_with_the_chosen_response():
    (row,) = rows_for(PAIR, PRINCIPLES, ExportSettings(kind="sft"))
    assert row["messages"][-1] == {"role": "assistant", "content": "short"}


def test_ties_yield_no_rows():
    tie = ExportPair(prompt="Q", response_a="x", response_b="y", label="tie")
    assert rows_for(tie, PRINCIPLES, ExportSettings()) == []


def test_relevant_only_keeps_the_pairs_principles():
    pair = ExportPair("Q", "a", "b", "a", relevant=(2,))
    (row,) = rows_for(pair, PRINCIPLES, ExportSettings(relevant_only=True, reword=False))
    assert "is brief" in row["prompt"][0]["content"]
    assert "honest" not in row["prompt"][0]["content"]


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="placement"):
        ExportSettings(style="standard", placement="system")
    with pytest.raises(ValueError, match="kind"):
        ExportSettings(kind="ppo")
    with pytest.raises(ValueError, match="colour"):
        ExportSettings.from_dict({"colour": "red"})


def test_block_is_empty_without_principles():
    assert constitution_block([], rule=None) == ""
