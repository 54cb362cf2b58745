"""Import service behaviour: idempotency, duplicates, splits, progress, statements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.imports import pairs_import, statements_import, statements_preview
from annotations.models import Annotation, Dataset, PreferencePair, ValueStatement
from tests.factories import ParticipantFactory, StudyFactory

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.django_db


def _row(i: int, **extra) -> str:
    return json.dumps({"prompt": f"Q{i}?", "response_a": f"A{i}", "response_b": f"B{i}", **extra})


def test_reimporting_the_same_file_is_idempotent(study):
    first = pairs_import(study=study, dataset_name="own", file=FIXTURES / "gcai.jsonl")
    second = pairs_import(study=study, dataset_name="own", file=FIXTURES / "gcai.jsonl")
    assert (first.created, first.duplicates) == (3, 0)
    assert (second.created, second.duplicates, second.duplicate_lines) == (0, 3, [1, 2, 3])
    assert (second.annotations_created, second.annotations_duplicate) == (0, 2)
    assert PreferencePair.objects.count() == 3
    assert Annotation.objects.count() == 2
    assert Dataset.objects.get().import_report["duplicates"] == 3


def test_duplicates_inside_one_file_are_reported_and_skipped(study):
    content = "\n".join([_row(1), _row(2), _row(1, preferred="b"), _row(3), _row(2)]) + "\n"
    report = pairs_import(study=study, dataset_name="d", file=content.encode())
    assert (report.rows_read, report.created, report.duplicates) == (5, 3, 2)
    assert report.duplicate_lines == [3, 5]
    assert "skipped 2 duplicate pairs" in report.summary


def test_new_annotations_on_known_pairs_are_added(study):
    pairs_import(study=study, dataset_name="d", file=(_row(1) + "\n").encode())
    annotated = _row(1, annotations=[{"annotator": "late", "preferred": "b", "reason": "B wins."}])
    report = pairs_import(study=study, dataset_name="d", file=(annotated + "\n").encode())
    assert (report.created, report.duplicates, report.annotations_created) == (0, 1, 1)
    assert Annotation.objects.get().external_annotator == "late"


def test_same_pairs_in_another_dataset_or_study_are_not_duplicates(study):
    pairs_import(study=study, dataset_name="one", file=FIXTURES / "icai.csv")
    assert pairs_import(study=study, dataset_name="two", file=FIXTURES / "icai.csv").created == 4
    other = StudyFactory()
    assert pairs_import(study=other, dataset_name="one", file=FIXTURES / "icai.csv").created == 4


def test_large_import_crosses_chunks(study):
    content = "".join(_row(i) + "\n" for i in range(2345)).encode()
    report = pairs_import(study=study, dataset_name="big", file=content)
    assert report.created == 2345
    assert PreferencePair.objects.filter(dataset__name="big").count() == 2345


def test_split_test_fraction_assigns_a_stratified_split(study):
    report = pairs_import(
        study=study,
        dataset_name="alpaca-like",
        file=FIXTURES / "gcai.jsonl",
        split_test_fraction=0.5,
        seed=1,
    )
    # g1's file says train and stays so; g2 (tie) and g3 (both_bad) are one-pair strata,
    # and half of one rounds up to one test pair each.
    assert report.split["totals"] == {"train": 1, "test": 2, "unassigned": 0}
    assert PreferencePair.objects.get(external_id="g1").split == "train"


def test_progress_reports_bytes_up_to_the_total(study):
    calls = []
    content = "".join(_row(i) + "\n" for i in range(3000)).encode()
    pairs_import(
        study=study,
        dataset_name="p",
        file=content,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls
    assert calls[-1] == (len(content), len(content))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_django_upload_objects_are_accepted(study):
    upload = SimpleUploadedFile("hh.jsonl", (FIXTURES / "hh_rlhf.jsonl").read_bytes())
    report = pairs_import(study=study, dataset_name="hh", file=upload)
    assert (report.filename, report.format, report.created) == ("hh.jsonl", "hh_rlhf", 3)
    assert report.dataset_name == "hh"
    staged = pairs_import(
        study=study, dataset_name="copy", file=FIXTURES / "icai.csv", filename="original.csv"
    )
    assert (staged.filename, staged.dataset_name) == ("original.csv", "copy")


def test_dataset_name_is_required(study):
    from annotations.imports import DataImportError

    with pytest.raises(DataImportError, match="dataset needs a name"):
        pairs_import(study=study, dataset_name="  ", file=FIXTURES / "gcai.jsonl")


# --- Value statements ------------------------------------------------------------------
def test_statements_csv_with_participants_questions_and_moderation(study):
    known = ParticipantFactory(study=study, pseudonym="pp-1")
    report = statements_import(study=study, file=FIXTURES / "statements.csv")
    assert (report.created, report.duplicates) == (3, 0)
    honest = ValueStatement.objects.get(text__startswith="AI should be honest")
    # An id that is a participant's pseudonym in this study links to that participant.
    assert honest.participant == known
    assert honest.external_participant == ""
    assert honest.moderation == "approved"
    assert honest.moderated_at is not None
    privacy = ValueStatement.objects.get(text__contains="privacy")
    assert (privacy.participant, privacy.external_participant) == (None, "pp-2")
    assert privacy.moderation == "pending"
    assert ValueStatement.objects.get(text__contains="pretend").moderation == "rejected"


def test_statements_reimport_is_idempotent(study):
    statements_import(study=study, file=FIXTURES / "statements.csv")
    again = statements_import(study=study, file=FIXTURES / "statements.csv")
    assert (again.created, again.duplicates) == (0, 3)
    assert ValueStatement.objects.count() == 3


def test_statements_jsonl_with_other_column_names(study):
    report = statements_import(study=study, file=FIXTURES / "statements.jsonl")
    assert report.created == 2
    assert set(ValueStatement.objects.values_list("external_participant", flat=True)) == {"s-9"}


def test_statements_with_a_mapping(study):
    content = b"answer,pid,status\nBe transparent.,p1,approved\n"
    preview = statements_preview(
        file=content, mapping="text=answer,participant=pid,moderation=status"
    )
    assert preview.rows[0].text == "Be transparent."
    report = statements_import(
        study=study, file=content, mapping="text=answer,participant=pid,moderation=status"
    )
    assert report.created == 1
    statement = ValueStatement.objects.get()
    assert (statement.external_participant, statement.moderation) == ("p1", "approved")


def test_debug_query_log_does_not_keep_the_file_in_memory(study, settings):
    from django.db import connection

    settings.DEBUG = True
    before = len(connection.queries_log)
    content = "".join(_row(i, reason="x" * 300) + "\n" for i in range(6000)).encode()
    pairs_import(study=study, dataset_name="debug", file=content)
    # Only the last few statements of the import are kept, not one per chunk.
    assert len(connection.queries_log) - before <= 4
    assert sum(len(q["sql"]) for q in connection.queries_log) < len(content) / 2
