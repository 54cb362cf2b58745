"""Attributes of people: Prolific import, the JSONL importer, and suppression of small groups."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotations.attributes import (
    AttributeImportError,
    attribute_export_rows,
    attribute_groups,
    attribute_set,
    attribute_summary,
    attributes_import_prolific,
)
from annotations.imports import pairs_import
from annotations.models import Annotation, Participant, PersonAttribute
from tests.factories import ParticipantFactory

pytestmark = pytest.mark.django_db

PROLIFIC = Path(__file__).parent / "fixtures" / "prolific_demographics.csv"


def _participants(study):
    return {
        pid: ParticipantFactory(study=study, prolific_pid=pid)
        for pid in ("PID001", "PID002", "PID003")
    }


def _values(participant):
    return dict(PersonAttribute.objects.filter(participant=participant).values_list("key", "value"))


def test_prolific_export_sets_attributes_of_matched_participants(study):
    people = _participants(study)
    report = attributes_import_prolific(study=study, file=PROLIFIC.read_bytes())
    assert report.rows == 4
    assert report.matched == 3
    assert report.unmatched_lines == [5]  # the participant who never entered this study
    first = _values(people["PID001"])
    assert first["age_band"] == "18-24"  # an age band, never the exact age
    assert first["country_of_residence"] == "United Kingdom"
    assert first["ethnicity_simplified"] == "White"
    assert first["employment_status"] == "Part-Time"
    assert "age" not in first
    assert "status" not in first
    assert "completion_code" not in first
    assert _values(people["PID002"])["age_band"] == "35-44"
    # Prolific's placeholders for expired data are not values.
    assert _values(people["PID003"]) == {}


def test_prolific_reimport_replaces_values(study):
    people = _participants(study)
    attributes_import_prolific(study=study, file=PROLIFIC.read_bytes())
    changed = PROLIFIC.read_text().replace("23,Female", "23,Male")
    attributes_import_prolific(study=study, file=changed.encode())
    assert _values(people["PID001"])["sex"] == "Male"
    assert PersonAttribute.objects.filter(participant=people["PID001"], key="sex").count() == 1


def test_a_file_that_is_not_a_prolific_export_is_refused_and_saves_nothing(study):
    _participants(study)
    with pytest.raises(AttributeImportError, match="Participant id"):
        attributes_import_prolific(study=study, file=b"pid,age\nPID001,30\n")
    assert not PersonAttribute.objects.exists()


def test_import_attributes_command(study, capsys):
    _participants(study)
    call_command("import_attributes", str(study.pk), str(PROLIFIC))
    out = capsys.readouterr().out
    assert "3 matched" in out
    assert "1 rows matched no participant (lines 5)" in out
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_attributes", str(study.pk), "/nonexistent.csv")


def test_prolific_upload_page_and_api(owner_client, study):
    _participants(study)
    response = owner_client.post(
        reverse("study_attributes", args=[study.pk]),
        {"file": SimpleUploadedFile("export.csv", PROLIFIC.read_bytes(), "text/csv")},
    )
    assert response.status_code == 200
    assert "3 matched a participant" in response.content.decode()
    PersonAttribute.objects.all().delete()
    response = owner_client.post(
        reverse("api_attributes_prolific", args=[study.pk]),
        {"file": SimpleUploadedFile("export.csv", PROLIFIC.read_bytes(), "text/csv")},
    )
    assert response.status_code == 201, response.content
    assert response.json()["unmatched"] == 1
    bad = owner_client.post(
        reverse("api_attributes_prolific", args=[study.pk]),
        {"file": SimpleUploadedFile("x.csv", b"a,b\n1,2\n", "text/csv")},
    )
    assert bad.status_code == 400
    assert "Participant id" in bad.json()["file"][0]


def test_gcai_jsonl_annotator_attributes_become_attributes_not_metadata(study):
    lines = [
        {
            "prompt": f"Question {i}?",
            "response_a": f"A{i}",
            "response_b": f"B{i}",
            "annotations": [
                {
                    "annotator": "x1",
                    "preferred": "a",
                    "reason": "clearer",
                    "annotator_attributes": {"group": "X", "age": 30},
                },
                {"annotator": "y1", "preferred": "b", "annotator_attributes": {"group": "Y"}},
            ],
        }
        for i in range(2)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    pairs_import(study=study, dataset_name="d", file=data, format="gcai")
    rows = set(
        PersonAttribute.objects.filter(study=study).values_list("external_id", "key", "value")
    )
    assert rows == {("x1", "group", "X"), ("x1", "age", "30"), ("y1", "group", "Y")}
    assert not any("annotator_attributes" in a.metadata for a in Annotation.objects.all())


def test_gcai_jsonl_bad_annotator_attributes_name_the_field(study):
    from annotations.imports import DataImportError

    line = {
        "prompt": "Q?",
        "response_a": "a",
        "response_b": "b",
        "annotations": [{"annotator": "x", "preferred": "a", "annotator_attributes": ["X"]}],
    }
    with pytest.raises(DataImportError, match="annotator_attributes"):
        pairs_import(study=study, dataset_name="d", file=json.dumps(line).encode(), format="gcai")
    assert not Annotation.objects.exists()


# --------------------------------------------------------------------------- suppression


def _group(study, key, value, n):
    for _ in range(n):
        attribute_set(
            study=study, key=key, value=value, participant=ParticipantFactory(study=study)
        )


@pytest.fixture
def mixed(study):
    """Five people from Kenya (shown at the default minimum) and two from Iceland (hidden)."""
    _group(study, "country", "Kenya", 5)
    _group(study, "country", "Iceland", 2)
    return study


def test_summary_suppresses_groups_below_the_minimum(mixed):
    [country] = attribute_summary(study=mixed)
    assert country["values"] == [{"value": "Kenya", "count": 5}]
    assert country["hidden_values"] == 1
    groups = attribute_groups(study=mixed, key="country")
    assert set(groups.shown) == {"Kenya"}


def test_a_lower_minimum_shows_the_smaller_group(mixed):
    mixed.min_group_size = 2
    mixed.save()
    [country] = attribute_summary(study=mixed)
    assert {v["value"] for v in country["values"]} == {"Kenya", "Iceland"}


def test_small_group_never_appears_on_the_page(owner_client, mixed):
    html = owner_client.get(reverse("study_attributes", args=[mixed.pk])).content.decode()
    assert "Kenya" in html
    assert "Iceland" not in html
    assert "1 value hidden" in html


def test_small_group_never_appears_in_the_api(owner_client, mixed):
    body = owner_client.get(reverse("api_attributes", args=[mixed.pk])).json()
    assert "Iceland" not in json.dumps(body)
    assert body["attributes"][0]["values"] == [{"value": "Kenya", "count": 5}]


def test_export_uses_pseudonyms_and_leaves_out_small_groups(owner_client, mixed):
    response = owner_client.get(reverse("study_attributes_export", args=[mixed.pk]))
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["person", "attribute", "value"]
    assert "Iceland" not in text
    assert len(rows) == 6
    pseudonyms = set(Participant.objects.values_list("pseudonym", flat=True))
    assert {r[0] for r in rows[1:]} <= pseudonyms
    assert all(r[0].startswith("P-") for r in rows[1:])
    assert attribute_export_rows(study=mixed) == [r for r in rows[1:]]


def test_min_group_size_setting_is_validated(owner_client, mixed):
    url = reverse("study_attributes", args=[mixed.pk])
    assert owner_client.post(url, {"min_group_size": "1"}).status_code == 400
    mixed.refresh_from_db()
    assert mixed.min_group_size == 5
    owner_client.post(url, {"min_group_size": "2"})
    mixed.refresh_from_db()
    assert mixed.min_group_size == 2


def test_attribute_summary_api_takes_a_bounded_number_of_queries(
    owner_client, mixed, django_assert_max_num_queries
):
    _group(mixed, "language", "English", 6)
    with django_assert_max_num_queries(8):
        body = owner_client.get(reverse("api_attributes", args=[mixed.pk])).json()
    assert [a["key"] for a in body["attributes"]] == ["country", "language"]
