"""Every file of the shared data imports (ICAI CSVs, ICAI annotated pairs, AlpacaEval).

The files are the vendored copies in tests/fixtures/data: the ICAI files whole, the
AlpacaEval files as their first 24 lines.
"""

from __future__ import annotations

import pytest

from annotations.imports import pairs_import
from annotations.models import Annotation, Dataset, PreferencePair

pytestmark = pytest.mark.django_db

EXPECTED = {
    # file: (format, pairs, annotations)
    "icai-synthetic/example.csv": ("icai_csv", 1, 0),
    "icai-synthetic/example_ap.json": ("icai_ap", 1, 2),
    "icai-synthetic/synthetic_data_aligned_vqvtb.csv": ("icai_csv", 30, 0),
    "icai-synthetic/synthetic_data_orthogonal_adcbg.csv": ("icai_csv", 30, 0),
    "icai-synthetic/synthetic_data_mixed_vqvtb_adcbg.csv": ("icai_csv", 60, 0),
    "alpacaeval-reasons/claude-2.1-vs-gpt4turbo.jsonl": ("gcai", 24, 0),
    "alpacaeval-reasons/mistral-7b-vs-gpt4turbo.jsonl": ("gcai", 24, 0),
}


def test_every_shared_file_is_covered(shared_data):
    files = {
        str(p.relative_to(shared_data))
        for p in shared_data.rglob("*")
        if p.suffix != ".md" and p.is_file()
    }
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_file_imports(shared_data, study, name):
    fmt, n_pairs, n_annotations = EXPECTED[name]
    report = pairs_import(study=study, dataset_name=name, file=shared_data / name)
    assert (report.format, report.created, report.duplicates) == (fmt, n_pairs, 0)
    assert report.annotations_created == n_annotations
    dataset = Dataset.objects.get(study=study, name=name)
    assert dataset.source_format == fmt
    assert dataset.import_report["created"] == n_pairs
    assert PreferencePair.objects.filter(dataset=dataset).count() == n_pairs
    assert not PreferencePair.objects.filter(dataset=dataset, response_a="").exists()


def test_icai_synthetic_prompts_are_the_instructions(shared_data, study):
    pairs_import(
        study=study,
        dataset_name="aligned",
        file=shared_data / "icai-synthetic/synthetic_data_aligned_vqvtb.csv",
    )
    pairs = PreferencePair.objects.all()
    assert all(p.metadata["icai_prompt_split"] == "instruction_output" for p in pairs)
    first = pairs.get(external_id="0")
    assert first.prompt == "What is the capital of the US?"
    assert first.response_b == "Washington, D.C."
    assert first.source_preference == "b"
    assert not any(p.response_a.startswith("Instruction:") for p in pairs)


def test_icai_annotated_pairs_default_annotator_is_the_source_preference(shared_data, study):
    pairs_import(
        study=study, dataset_name="ap", file=shared_data / "icai-synthetic/example_ap.json"
    )
    pair = PreferencePair.objects.get()
    assert pair.external_id == "4b49a6e7"
    assert pair.prompt == "Write a short story about a pet."
    assert pair.source_preference == "a"
    assert pair.metadata["model_a"] == "Model X"
    # The "not applicable" vote of fafd12b9 carries no preference and is not stored.
    annotations = {a.external_annotator: a for a in Annotation.objects.filter(pair=pair)}
    assert set(annotations) == {"2f45a6d0", "435cef52"}
    mystery = annotations["2f45a6d0"]
    assert mystery.preferred == "a"
    assert mystery.metadata["annotator_type"] == "principle"
    assert mystery.metadata["annotator_description"] == (
        "Select the response that evokes a sense of mystery."
    )


def test_alpacaeval_keeps_models_and_reasons(shared_data, study):
    pairs_import(
        study=study,
        dataset_name="alpaca",
        file=shared_data / "alpacaeval-reasons/claude-2.1-vs-gpt4turbo.jsonl",
    )
    pair = PreferencePair.objects.get(external_id="claude-2.1-0")
    assert pair.metadata["model_a"] == "gpt4_1106_preview"
    assert pair.metadata["model_b"] == "claude-2.1"
    assert pair.source_reason
    labels = set(PreferencePair.objects.values_list("source_preference", flat=True))
    assert labels == {"a", "b"}


def test_overlapping_icai_files_skip_duplicate_pairs(shared_data, study):
    base = shared_data / "icai-synthetic"
    pairs_import(study=study, dataset_name="icai", file=base / "synthetic_data_aligned_vqvtb.csv")
    pairs_import(
        study=study, dataset_name="icai", file=base / "synthetic_data_orthogonal_adcbg.csv"
    )
    report = pairs_import(
        study=study, dataset_name="icai", file=base / "synthetic_data_mixed_vqvtb_adcbg.csv"
    )
    # The mixed file re-uses all 60 pairs of the other two (one differs only by the
    # template's whitespace after "Output:", which is not part of the answer).
    assert (report.created, report.duplicates) == (0, 60)
    assert report.duplicate_lines[:3] == [2, 7, 12]  # physical lines: records span lines
    assert PreferencePair.objects.count() == 60
