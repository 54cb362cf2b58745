"""Each supported format, from a small fixture, lands as the pairs a researcher expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotations.importers import PAIR_FORMATS, TextSource, pair_format_resolve
from annotations.importers.base import ParseOptions, chosen_goes_to_b
from annotations.importers.icai import split_icai_texts
from annotations.imports import pairs_import, pairs_preview
from annotations.models import Annotation, PreferencePair

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.django_db


def _parse(path: Path, **options):
    with path.open("rb") as handle:
        fmt, sniffed = pair_format_resolve(handle, mapping=options.get("mapping"))
        rows = list(fmt.parse(TextSource(handle), sniffed, ParseOptions(**options)))
    return fmt.name, rows


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("gcai.jsonl", "gcai"),
        ("icai.csv", "icai_csv"),
        ("hh_rlhf.jsonl", "hh_rlhf"),
        ("ultrafeedback.jsonl", "ultrafeedback"),
        ("helpsteer2.jsonl", "helpsteer2"),
    ],
)
def test_format_is_detected_from_the_columns(fixture, expected):
    name, rows = _parse(FIXTURES / fixture)
    assert name == expected
    assert rows


def test_every_registered_format_has_a_label_and_containers():
    for fmt in PAIR_FORMATS.values():
        assert fmt.label
        assert fmt.containers


def test_own_jsonl_keeps_labels_reasons_scores_metadata_and_annotations(study):
    report = pairs_import(study=study, dataset_name="own", file=FIXTURES / "gcai.jsonl")
    assert (report.format, report.created, report.annotations_created) == ("gcai", 3, 2)
    g1, g2, g3 = PreferencePair.objects.order_by("external_id")
    assert g1.source_preference == "a"
    assert g1.source_reason == "Honesty with kindness respects the friend."
    assert (g1.score_a, g1.score_b, g1.split) == (8.0, 2.0, "train")
    assert g1.metadata == {"topic": "ethics"}
    first = Annotation.objects.get(pair=g1, external_annotator="ext-1")
    assert first.shown_swapped is True
    assert first.duration_ms == 30000
    assert first.submitted_at.isoformat() == "2026-01-02T10:00:30+00:00"
    assert Annotation.objects.get(pair=g1, external_annotator="ext-2").preferred == "tie"
    # A prompt given as chat messages keeps its turns.
    assert g2.prompt_messages[-1] == {"role": "user", "content": "Recommend a book."}
    assert g2.prompt.startswith("User: Hi\n\nAssistant: Hello!")
    assert g2.source_preference == "tie"
    # tie + both_bad: true is the "both bad" label.
    assert g3.source_preference == "both_bad"


def test_icai_csv_splits_instruction_and_output_and_maps_ties(study):
    report = pairs_import(study=study, dataset_name="icai", file=FIXTURES / "icai.csv")
    assert report.created == 4
    pairs = {p.external_id: p for p in PreferencePair.objects.all()}
    assert pairs["0"].prompt == "Suggest a pet name."
    assert (pairs["0"].response_a, pairs["0"].response_b) == ("Biscuit.", "Dog.")
    assert pairs["0"].source_preference == "a"
    assert pairs["1"].source_preference == "tie"
    assert pairs["2"].source_preference == "both_bad"
    # Nothing shared: the prompt stays empty and each response keeps its whole text.
    assert pairs["3"].prompt == ""
    assert pairs["3"].response_a == "Two plus two is four."
    assert pairs["3"].metadata["icai_prompt_split"] == "unsplit"


def test_icai_split_uses_a_shared_paragraph_as_prompt():
    prompt, a, b, how = split_icai_texts(
        "Tell me a joke.\n\nWhy did the chicken cross the road?",
        "Tell me a joke.\n\nNo.",
    )
    assert (prompt, a, b, how) == (
        "Tell me a joke.",
        "Why did the chicken cross the road?",
        "No.",
        "shared_prefix",
    )


def test_hh_rlhf_shared_turns_become_the_prompt(study):
    pairs_import(study=study, dataset_name="hh", file=FIXTURES / "hh_rlhf.jsonl", seed=7)
    pairs = list(PreferencePair.objects.order_by("id"))
    egg, lonely, _ = pairs
    assert egg.prompt == "How do I boil an egg?"
    assert egg.prompt_messages == [{"role": "user", "content": "How do I boil an egg?"}]
    assert {egg.response_a, egg.response_b} == {
        "Put it in boiling water for about nine minutes, then cool it in cold water.",
        "Eggs are laid by hens.",
    }
    assert len(lonely.prompt_messages) == 3
    assert lonely.prompt.startswith("User: I feel lonely.")
    for pair in pairs:
        sides = pair.metadata["source_sides"]
        chosen_side = "a" if sides["a"] == "chosen" else "b"
        assert pair.source_preference == chosen_side


def test_chosen_side_is_seeded_per_row_and_stable():
    keys = [f"row-{i}" for i in range(200)]
    first = [chosen_goes_to_b(seed=1, key=k) for k in keys]
    assert first == [chosen_goes_to_b(seed=1, key=k) for k in keys]
    # Roughly balanced, and another seed gives another assignment.
    assert 60 < sum(first) < 140
    assert first != [chosen_goes_to_b(seed=2, key=k) for k in keys]


def test_chosen_rejected_sides_do_not_depend_on_row_order(study, tmp_path):
    lines = (FIXTURES / "ultrafeedback.jsonl").read_text().splitlines()
    reversed_file = tmp_path / "reversed.jsonl"
    reversed_file.write_text("\n".join(reversed(lines)) + "\n")
    _, forward = _parse(FIXTURES / "ultrafeedback.jsonl", seed=3)
    _, backward = _parse(reversed_file, seed=3)
    by_id = {r.external_id: r.source_preference for r in backward}
    assert {r.external_id: r.source_preference for r in forward} == by_id


def test_ultrafeedback_scores_follow_their_responses(study):
    pairs_import(study=study, dataset_name="uf", file=FIXTURES / "ultrafeedback.jsonl", seed=11)
    red = PreferencePair.objects.get(external_id="uf-1")
    assert red.prompt == "Name a primary colour."
    assert red.prompt_messages == [{"role": "user", "content": "Name a primary colour."}]
    scores = {red.response_a: red.score_a, red.response_b: red.score_b}
    assert scores == {"Red is a primary colour.": 9.0, "Green, probably.": 4.5}
    winner = red.response_a if red.source_preference == "a" else red.response_b
    assert winner == "Red is a primary colour."
    assert "messages" not in red.metadata


def test_helpsteer2_strength_sign_reason_split_and_individual_annotations(study):
    report = pairs_import(study=study, dataset_name="hs", file=FIXTURES / "helpsteer2.jsonl")
    assert report.created == 3
    haiku, fact, recursion = PreferencePair.objects.order_by("id")
    assert haiku.source_preference == "a"  # negative strength: response 1 is better
    assert haiku.source_reason.startswith("@Response 1 is better")
    assert "5-7-5" in haiku.source_reason
    assert haiku.metadata["preference_strength"] == -2
    assert fact.source_preference == "tie"
    assert fact.split == "test"  # HelpSteer2's "val" is held-out data
    assert [m["role"] for m in fact.prompt_messages] == ["user", "assistant", "user"]
    assert recursion.source_preference == "b"
    reasons = sorted(recursion.annotations.values_list("external_annotator", "preferred", "reason"))
    assert reasons == [
        ("helpsteer-annotator-1", "b", "Response 1 explains nothing."),
        ("helpsteer-annotator-2", "b", "Response 2 is clear and correct."),
    ]


def test_generic_csv_with_a_column_mapping(study):
    report = pairs_import(
        study=study,
        dataset_name="generic",
        file=FIXTURES / "generic.csv",
        mapping="prompt=question,response_a=answer1,response_b=answer2,preferred=label",
    )
    assert (report.format, report.created) == ("generic", 3)
    water, planet, colour = PreferencePair.objects.order_by("id")
    assert (water.prompt, water.response_a, water.source_preference) == (
        "What is H2O?",
        "Water.",
        "a",
    )
    assert planet.source_preference == "b"
    assert colour.source_preference == "tie"
    assert water.metadata == {"annotator_note": "easy"}


def test_generic_mapping_for_chosen_and_rejected_randomises_sides(study, tmp_path):
    path = tmp_path / "dpo.jsonl"
    rows = [{"q": f"Question {i}?", "good": f"Good {i}", "bad": f"Bad {i}"} for i in range(40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs_import(
        study=study, dataset_name="dpo", file=path, mapping="prompt=q,chosen=good,rejected=bad"
    )
    labels = list(PreferencePair.objects.values_list("source_preference", flat=True))
    assert set(labels) == {"a", "b"}
    for pair in PreferencePair.objects.all():
        winner = pair.response_a if pair.source_preference == "a" else pair.response_b
        assert winner.startswith("Good")


def test_dpo_style_csv_with_plain_text_chosen_and_rejected(study, tmp_path):
    path = tmp_path / "dpo.csv"
    path.write_text('prompt,chosen,rejected\n"Hi?","Hello, how can I help?","Go away."\n')
    report = pairs_import(study=study, dataset_name="dpo", file=path)
    assert report.format == "ultrafeedback"
    pair = PreferencePair.objects.get()
    winner = pair.response_a if pair.source_preference == "a" else pair.response_b
    assert winner == "Hello, how can I help?"


def test_explicit_format_overrides_detection(study):
    preview = pairs_preview(file=FIXTURES / "icai.csv", format="icai_csv")
    assert preview.format == "icai_csv"
    assert len(preview.rows) == 4


def test_preview_shows_detected_format_and_first_rows_without_saving(study):
    preview = pairs_preview(file=FIXTURES / "hh_rlhf.jsonl", limit=2)
    assert preview.format == "hh_rlhf"
    assert preview.container == "jsonl"
    assert len(preview.rows) == 2
    assert preview.error == ""
    assert PreferencePair.objects.count() == 0


def test_csv_with_bom_crlf_and_quoted_newlines(study, tmp_path):
    path = tmp_path / "excel.csv"
    content = 'prompt,response_a,response_b,preferred\r\n"Two\r\nlines?","A\r\nB",C,b\r\n'
    path.write_bytes(b"\xef\xbb\xbf" + content.encode())
    report = pairs_import(study=study, dataset_name="excel", file=path)
    assert report.created == 1
    pair = PreferencePair.objects.get()
    assert pair.prompt == "Two\r\nlines?"
    assert pair.source_preference == "b"
