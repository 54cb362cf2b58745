"""Training-data export: rows equal the pairs, conditioned as configured, split kept."""

from __future__ import annotations

import json

import pytest

from gcai.core.training_data import GENERATION_FORM, ExportSettings
from gcai.modeling.exports import (
    ExportError,
    export_plan,
    export_provenance,
    export_rows,
    export_write,
)
from tests.modeling.support import RULE, labelled_pairs, make_constitution

pytestmark = pytest.mark.django_db

SECOND = "Select the response that is shorter."


@pytest.fixture
def setup(study):
    pairs = labelled_pairs(study)
    constitution = make_constitution(study, [RULE, SECOND], evidence=[[pairs[0]], [pairs[1]]])
    return pairs, constitution


def _expected(pairs, split):
    return [
        (p.prompt, p.response_a if p.source_preference == "a" else p.response_b,
         p.response_b if p.source_preference == "a" else p.response_a)
        for p in sorted(pairs, key=lambda p: p.pk)
        if p.split == split and p.source_preference in ("a", "b")
    ]  # fmt: skip


def test_dpo_rows_equal_the_pairs_with_the_constitution_in_the_user_turn(setup):
    pairs, constitution = setup
    plan = export_plan(constitution=constitution)
    for split in ("train", "test"):
        rows = list(export_rows(plan, split))
        got = [
            (
                r["prompt"][0]["content"].split("\n\n")[-1],
                r["chosen"][0]["content"],
                r["rejected"][0]["content"],
            )
            for r in rows
        ]
        assert got == _expected(pairs, split)
        for r in rows:
            (turn,) = r["prompt"]
            assert turn["role"] == "user"
            assert turn["content"].startswith("Follow these principles when you respond:\n1. ")
            assert f"1. {GENERATION_FORM} ends with the word SAFE." in turn["content"]
            assert f"2. {GENERATION_FORM} is shorter." in turn["content"]


def test_system_placement_without_rewording(setup):
    _pairs, constitution = setup
    settings = ExportSettings(placement="system", reword=False)
    rows = list(export_rows(export_plan(constitution=constitution, settings=settings), "train"))
    assert rows
    for r in rows:
        assert r["prompt"][0]["role"] == "system"
        assert RULE in r["prompt"][0]["content"]
        assert r["prompt"][1]["role"] == "user"
        assert "Follow these" not in r["prompt"][1]["content"]


def test_relevant_only_uses_the_principles_evidence(setup):
    _pairs, constitution = setup
    settings = ExportSettings(relevant_only=True, style="standard")
    rows = list(export_rows(export_plan(constitution=constitution, settings=settings), "train"))
    first, second = rows[0]["prompt"], rows[1]["prompt"]
    assert "SAFE" in first
    assert "shorter" not in first
    assert "shorter" in second
    assert "SAFE" not in second
    assert "SAFE" in rows[2]["prompt"]
    assert "shorter" in rows[2]["prompt"]
    provenance = export_provenance(export_plan(constitution=constitution, settings=settings))
    assert provenance["counts"]["train"]["whole_constitution_fallback"] == 1


def test_files_keep_the_split_and_trl_reads_them(setup, tmp_path):
    datasets = pytest.importorskip("datasets")
    pairs, constitution = setup
    provenance = export_write(export_plan(constitution=constitution), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "provenance.json",
        "test.jsonl",
        "train.jsonl",
    ]
    assert provenance["counts"]["train"] == {
        "pairs": 4, "rows": 3, "excluded_ties": 1, "excluded_other": 0,
    }  # fmt: skip
    assert provenance["counts"]["unassigned"]["excluded_other"] == 1
    assert provenance["constitution"]["id"] == constitution.pk
    assert provenance["constitution"]["version"] == 1
    assert any("Ties" in note for note in provenance["notes"])
    on_disk = json.loads((tmp_path / "provenance.json").read_text())
    assert on_disk["settings"]["placement"] == "user"
    # The JSON reader TRL's examples use (load_dataset("json", ...)), offline.
    loaded = datasets.load_dataset(
        "json",
        data_files={"train": str(tmp_path / "train.jsonl"), "test": str(tmp_path / "test.jsonl")},
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert loaded["train"].num_rows == 3
    assert loaded["test"].num_rows == 2
    assert set(loaded["train"].column_names) == {"prompt", "chosen", "rejected"}
    row = loaded["test"][0]
    assert row["chosen"] == [{"role": "assistant", "content": _expected(pairs, "test")[0][1]}]


def test_kto_and_sft_formats(setup):
    _pairs, constitution = setup
    kto = list(
        export_rows(export_plan(constitution=constitution, settings={"kind": "kto"}), "train")
    )
    assert [r["label"] for r in kto] == [True, False] * 3
    sft = list(
        export_rows(export_plan(constitution=constitution, settings={"kind": "sft"}), "test")
    )
    assert all(r["messages"][-1]["role"] == "assistant" for r in sft)


def test_only_published_constitutions_are_exported(study):
    draft = make_constitution(study, [RULE], publish=False)
    with pytest.raises(ExportError, match="published"):
        export_plan(constitution=draft)


def test_bad_settings_name_the_field(setup):
    _pairs, constitution = setup
    with pytest.raises(ExportError, match="placement"):
        export_plan(
            constitution=constitution, settings={"style": "standard", "placement": "system"}
        )
    with pytest.raises(ExportError, match="datasets"):
        export_plan(constitution=constitution, dataset_ids=[999999])


def test_relevant_only_uses_an_evaluations_votes_for_the_chosen_side(setup):
    from gcai.constitutions.models import Evaluation

    pairs, constitution = setup
    test_b, test_a = pairs[4], pairs[5]  # labels b and a
    evaluation = Evaluation.objects.create(
        study=constitution.study,
        constitution=constitution,
        status="succeeded",
        results={
            "judgements": [
                # Principle 2 favoured the chosen side; principle 1 favoured the other.
                {"pair_id": str(test_b.pk), "principle_votes": {"1": "a", "2": "b"}},
                {"pair_id": str(test_a.pk), "principle_votes": {"1": "inconsistent"}},
            ]
        },
    )
    settings = ExportSettings(relevant_only=True, style="standard")
    plan = export_plan(constitution=constitution, settings=settings, evaluation_id=evaluation.pk)
    first, second = (r["prompt"] for r in export_rows(plan, "test"))
    assert "shorter" in first
    assert "SAFE" not in first
    assert "shorter" in second  # no principle for the chosen side: the whole constitution
    assert "SAFE" in second
    other = make_constitution(constitution.study, [RULE], title="Other")
    with pytest.raises(ExportError, match="evaluation"):
        export_plan(constitution=other, evaluation_id=evaluation.pk)
