"""Real data as it is: empty responses, invalid rows skipped on request, HH-RLHF records
without an answer, identical responses, and duplicate rows within one file."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from annotations.api_annotate import leased_pair_payload
from annotations.imports import DataImportError, pairs_import, pairs_preview, statements_import
from annotations.models import Dataset, PairAssignment, PreferencePair, ValueStatement
from tests.factories import DatasetFactory, PairFactory

pytestmark = pytest.mark.django_db

OK = {
    "prompt": "Why is the sky blue?",
    "response_a": "Rayleigh scattering.",
    "response_b": "Paint.",
}


def jsonl(*rows) -> bytes:
    return b"".join(
        (row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows
    )


def alpaca_like(n: int, empty_every: int) -> bytes:
    """AlpacaEval-shaped rows where some model outputs are empty (blocked generations)."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": i,
                "prompt": f"Instruction {i}",
                "response_a": f"Reference answer {i}",
                "response_b": "" if i % empty_every == 0 else f"Model answer {i}",
                "preferred": "a",
                "reason": "Model 'm' answers; Model 'M' does not.",
                "model_a": "gpt4_1106_preview",
                "model_b": "gemini-pro",
            }
        )
    return jsonl(*rows)


# --- Empty responses ---------------------------------------------------------------------
def test_empty_responses_are_imported_and_counted_as_a_warning(study):
    report = pairs_import(study=study, dataset_name="gemini", file=alpaca_like(30, 10))
    assert report.created == 30
    assert report.empty_responses == 3
    assert report.empty_response_lines == [1, 11, 21]
    assert PreferencePair.objects.filter(response_b="").count() == 3
    assert any("3 pair(s) have an empty response" in w for w in report.warnings)
    assert "3 with an empty response" in report.summary
    stored = Dataset.objects.get(name="gemini").import_report
    assert stored["empty_responses"] == 3
    assert stored["warnings"] == report.warnings


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        (b',text_a,text_b,preferred_text\n0,"Instruction: q\n\nOutput: a","",text_a\n', None),
        (
            jsonl(
                {
                    "chosen": "\n\nHuman: hi\n\nAssistant:",
                    "rejected": "\n\nHuman: hi\n\nAssistant: yo",
                }
            ),
            None,
        ),
        (
            jsonl({"prompt": "p", "response_1": "", "response_2": "r", "preference_strength": 1}),
            None,
        ),
    ],
    ids=["icai-csv", "hh-rlhf-empty-final-turn", "helpsteer"],
)
def test_every_format_keeps_an_empty_response(study, content, fmt):
    report = pairs_import(study=study, dataset_name="d", file=content, format=fmt)
    assert (report.created, report.empty_responses) == (1, 1)


def test_a_missing_response_is_still_an_error(study):
    with pytest.raises(DataImportError, match=r"^line 2, field 'response_b': missing field"):
        pairs_import(
            study=study, dataset_name="d", file=jsonl(OK, {"prompt": "p", "response_a": "x"})
        )


def test_annotators_see_an_empty_response_labelled(client, annotator, study):
    dataset = DatasetFactory(study=study, annotation_overlap=1)
    PairFactory(dataset=dataset, response_a="", response_b="A real answer.")
    client.force_login(annotator)
    html = client.get(reverse("annotate", args=[study.pk])).content.decode()
    assert "(empty response)" in html
    assert "A real answer." in html
    payload = leased_pair_payload(PairAssignment.objects.get(), study=study)
    shown = {payload["first"]["empty"], payload["second"]["empty"]}
    assert shown == {True, False}
    empty = payload["first"] if payload["first"]["empty"] else payload["second"]
    assert empty["text"] == ""
    assert "(empty response)" in empty["html"]


# --- Skip-invalid mode --------------------------------------------------------------------
BAD_MIX = jsonl(
    OK,
    b'{"prompt": "broken", ',
    {"prompt": "no b", "response_a": "x"},
    OK | {"prompt": "fine too"},
    ["not", "an", "object"],
    OK | {"prompt": "bad label", "preferred": "maybe"},
)


def test_default_import_is_all_or_nothing(study):
    with pytest.raises(DataImportError, match=r"^line 2"):
        pairs_import(study=study, dataset_name="mix", file=BAD_MIX)
    assert not Dataset.objects.exists()


def test_skip_invalid_imports_the_valid_rows_and_reports_every_skipped_one(study):
    report = pairs_import(study=study, dataset_name="mix", file=BAD_MIX, skip_invalid=True)
    assert report.created == 2
    assert set(PreferencePair.objects.values_list("prompt", flat=True)) == {
        OK["prompt"],
        "fine too",
    }
    assert report.skipped == 4
    assert report.rows_read == 6
    skipped = [(r["line"], r["field"]) for r in report.skipped_rows]
    assert skipped == [(2, None), (3, "response_b"), (5, None), (6, "preferred")]
    reasons = [r["reason"] for r in report.skipped_rows]
    assert "not valid JSON" in reasons[0]
    assert reasons[1] == "missing field"
    assert "one JSON object" in reasons[2]
    assert "unknown preference 'maybe'" in reasons[3]
    assert any("4 invalid row(s) were skipped (line 2, 3, 5, 6)" in w for w in report.warnings)
    assert Dataset.objects.get(name="mix").import_report["skipped"] == 4


def test_skip_invalid_csv_rows_with_wrong_column_counts(study):
    content = b",text_a,text_b,preferred_text\n0,a,b,text_a\n1,c,d,e,text_b\n2,f,g,text_b\n"
    report = pairs_import(study=study, dataset_name="icai", file=content, skip_invalid=True)
    assert report.created == 2
    assert report.skipped_rows[0]["line"] == 3
    assert report.skipped_rows[0]["row"] == 2
    assert "has 5 values" in report.skipped_rows[0]["reason"]


def test_skip_invalid_comparisons_of_an_annotated_pairs_file(study):
    good = {"prompt": "Hi", "response_a": {"text": "Hello"}, "response_b": {"text": "Bye"}}
    doc = {
        "metadata": {"version": "2.0", "default_annotator": "d"},
        "annotators": {},
        "comparisons": [good, {"prompt": "Hi", "response_a": {"text": "x"}}],
    }
    report = pairs_import(
        study=study, dataset_name="ap", file=json.dumps(doc, indent=1).encode(), skip_invalid=True
    )
    assert (report.created, report.skipped) == (1, 1)
    assert report.skipped_rows[0]["field"] == "response_b"


def test_skip_invalid_statements(study):
    content = b"text,moderation\nFine.,\n,approved\nAlso fine.,maybe\nGood.,approved\n"
    report = statements_import(study=study, file=content, skip_invalid=True)
    assert report.created == 2
    assert [r["line"] for r in report.skipped_rows] == [3, 4]
    assert ValueStatement.objects.count() == 2


def test_import_command_skip_invalid(study, tmp_path, capsys):
    path = tmp_path / "mix.jsonl"
    path.write_bytes(BAD_MIX)
    call_command("import_pairs", str(study.pk), str(path), "--skip-invalid", "--no-progress")
    out = capsys.readouterr().out
    assert "Imported 2 pairs" in out
    assert "4 invalid rows skipped" in out
    assert "skipped line 3, field 'response_b': missing field" in out
    assert "skipped line 6, field 'preferred': unknown preference 'maybe'" in out


def test_api_skip_invalid_flag(owner_client, study):
    url = reverse("api_pairs_import", args=[study.pk])
    refused = owner_client.post(url, {"file": SimpleUploadedFile("mix.jsonl", BAD_MIX)})
    assert refused.status_code == 400
    assert refused.json()["line"] == 2
    response = owner_client.post(
        url, {"file": SimpleUploadedFile("mix.jsonl", BAD_MIX), "skip_invalid": "true"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["created"], body["skipped"]) == (2, 4)
    assert [r["line"] for r in body["skipped_rows"]] == [2, 3, 5, 6]
    assert body["warnings"]


def test_data_page_skip_invalid_checkbox(owner_client, study):
    preview = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": SimpleUploadedFile("mix.jsonl", BAD_MIX), "skip_invalid": "on"},
    )
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Rows that will be skipped" in html
    assert 'name="skip_invalid"' in html
    token = re.search(r'name="token" value="([0-9a-f]{32})"', html).group(1)
    response = owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {"kind": "pairs", "token": token, "dataset": "mix", "skip_invalid": "on"},
    )
    assert response.status_code == 302
    html = owner_client.get(response["Location"]).content.decode()
    assert "Skipped rows" in html
    assert "unknown preference" in html
    assert Dataset.objects.get(name="mix").pairs.count() == 2


# --- HH-RLHF without an answer -----------------------------------------------------------
def test_hh_rlhf_record_without_an_assistant_turn_is_refused_by_name(study):
    bad = {"id": "hh-17", "chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi"}
    with pytest.raises(DataImportError) as caught:
        pairs_import(study=study, dataset_name="hh", file=jsonl(bad), format="hh_rlhf")
    assert "the record (id 'hh-17') has no Assistant turn" in str(caught.value)
    assert caught.value.line == 1
    assert not PreferencePair.objects.exists()


# --- Identical responses -----------------------------------------------------------------
SAME = OK | {"prompt": "same", "response_b": "Rayleigh scattering. "}


def test_identical_responses_are_imported_with_a_warning(study):
    report = pairs_import(study=study, dataset_name="d", file=jsonl(OK, SAME))
    assert report.created == 2
    assert (report.identical_responses, report.identical_response_lines) == (1, [2])
    assert any("two identical responses (line 2)" in w for w in report.warnings)


def test_identical_responses_can_be_refused_by_a_setting(study, settings):
    settings.GCAI_IMPORT_IDENTICAL_RESPONSES = "refuse"
    with pytest.raises(DataImportError, match=r"^line 2, field 'response_b': the two responses"):
        pairs_import(study=study, dataset_name="d", file=jsonl(OK, SAME))
    assert not PreferencePair.objects.exists()
    report = pairs_import(study=study, dataset_name="d", file=jsonl(OK, SAME), skip_invalid=True)
    assert (report.created, report.skipped) == (1, 1)
    preview = pairs_preview(file=jsonl(OK, SAME))
    assert "identical" in preview.error


# --- Duplicates within one file ----------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [
        jsonl(OK, OK | {"prompt": "other"}, OK),
        b"prompt,response_a,response_b\nq,a,b\nr,a,b\nq,a,b\n",
        b"prompt,response_a,response_b,annotator,preferred\nq,a,b,,\nq,a,b,,\nr,a,b,,\n",
    ],
    ids=["jsonl", "csv", "csv-export-layout"],
)
def test_duplicate_rows_in_one_file_are_counted_and_listed(study, content):
    report = pairs_import(study=study, dataset_name="d", file=content)
    assert report.created == 2
    assert (report.duplicates, report.duplicates_in_file) == (1, 1)
    assert report.duplicate_lines in ([3], [4])
    assert "1 repeated within the file" in report.summary
    again = pairs_import(study=study, dataset_name="d", file=content)
    assert (again.created, again.duplicates, again.duplicates_in_file) == (0, 3, 1)


# --- Previews are capped -----------------------------------------------------------------
def test_a_dry_run_preview_sends_back_clipped_rows(owner_client, study):
    huge = OK | {"response_a": "x" * 50_000, "metadata": {f"k{i}": i for i in range(500)}}
    rows = [huge | {"prompt": f"p{i}"} for i in range(40)]
    response = owner_client.post(
        reverse("api_pairs_import", args=[study.pk]),
        {"file": SimpleUploadedFile("big.jsonl", jsonl(*rows)), "dry_run": "true"},
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body["rows"]) == 5
    assert len(body["rows"][0]["response_a"]) <= 2001
    assert len(body["rows"][0]["metadata"]) <= 20
    assert len(response.content) < 20_000
    assert len(pairs_preview(file=jsonl(*rows), limit=10_000).rows) == 20
