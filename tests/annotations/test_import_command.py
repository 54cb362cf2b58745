"""manage.py import_pairs / import_statements / export_data."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotations.models import Dataset, PreferencePair, ValueStatement
from tests.annotations.io_owned_objects import make_constitution
from tests.factories import StudyFactory

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.django_db


def _run(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_import_pairs_with_progress_bar(study, tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": f"Q{i}", "response_a": "yes " * 20, "response_b": "no " * 20})
            + "\n"
            for i in range(3000)
        )
    )
    out, err = _run("import_pairs", str(study.pk), str(path), "--dataset", "many")
    assert "Imported 3000 pairs" in out
    assert "dataset 'many'" in out
    # The bar is redrawn in place on stderr and ends at 100%.
    assert "\r" in err
    assert "[##############################] 100.0%" in err
    assert err.endswith("\n")
    assert err.count("\n") == 1
    assert Dataset.objects.get(name="many").pairs.count() == 3000


def test_import_pairs_by_study_name_with_format_map_seed_and_split(study):
    out, _ = _run(
        "import_pairs",
        "Owned study",
        str(FIXTURES / "generic.csv"),
        "--dataset",
        "mapped",
        "--format",
        "generic",
        "--map",
        "prompt=question,response_a=answer1,response_b=answer2,preferred=label",
        "--seed",
        "5",
        "--split-test-fraction",
        "0.5",
        "--no-progress",
    )
    assert "split:" in out
    assert PreferencePair.objects.filter(dataset__name="mapped", split="unassigned").count() == 0


def test_dataset_defaults_to_the_file_name(study):
    _run("import_pairs", str(study.pk), str(FIXTURES / "icai.csv"), "--no-progress")
    assert Dataset.objects.get().name == "icai"


def test_import_pairs_error_names_row_and_field_and_saves_nothing(study, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text_a,text_b,preferred_text\na,b,text_a\nc,d,text_q\n")
    with pytest.raises(
        CommandError,
        match=r"bad\.csv: row 2 \(line 3\), field 'preferred_text': unknown preference",
    ):
        _run("import_pairs", str(study.pk), str(path), "--dataset", "bad")
    assert not Dataset.objects.exists()


def test_unknown_study_or_file(study):
    with pytest.raises(CommandError, match="No study with id 999999"):
        _run("import_pairs", "999999", str(FIXTURES / "icai.csv"))
    with pytest.raises(CommandError, match="No such file"):
        _run("import_pairs", str(study.pk), "/nonexistent.jsonl")
    StudyFactory(name="Owned study")
    with pytest.raises(CommandError, match="give the study id"):
        _run("import_pairs", "Owned study", str(FIXTURES / "icai.csv"))


def test_import_statements(study):
    out, _ = _run("import_statements", str(study.pk), str(FIXTURES / "statements.csv"))
    assert "Imported 3 statements" in out
    assert ValueStatement.objects.count() == 3


def test_export_data_round_trip_through_the_commands(study, tmp_path):
    _run(
        "import_pairs",
        str(study.pk),
        str(FIXTURES / "gcai.jsonl"),
        "--dataset",
        "own",
        "--no-progress",
    )
    target = tmp_path / "out.jsonl"
    _, err = _run(
        "export_data", str(study.pk), "pairs", "--dataset", "own", "--output", str(target)
    )
    assert f"Wrote {target}" in err
    other = StudyFactory(name="Copy")
    out, _ = _run("import_pairs", str(other.pk), str(target), "--dataset", "copy", "--no-progress")
    assert "Imported 3 pairs and 2 annotations" in out


def test_export_data_constitution_to_stdout(study, capsys):
    constitution = make_constitution(study, title="Grounded")
    call_command(
        "export_data", str(study.pk), "constitution", "--id", str(constitution.pk), "--format", "md"
    )
    assert capsys.readouterr().out.startswith("# Grounded (version 1)")
    with pytest.raises(CommandError, match="--id"):
        call_command("export_data", str(study.pk), "constitution")
    with pytest.raises(CommandError, match="Unknown format"):
        call_command("export_data", str(study.pk), "pairs", "--format", "md")
