"""API: multipart upload (with dry run), streamed exports, split; strangers refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token

from annotations.models import Dataset, PreferencePair, ValueStatement
from surveys.exports import ANSWERS_HEADER
from tests.annotations.io_owned_objects import make_constitution, make_survey
from tests.factories import DatasetFactory, PairFactory

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.django_db


def _file(name: str, content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(
        name, content if content is not None else (FIXTURES / name).read_bytes()
    )


def test_upload_pairs_with_token_auth(client, researcher, study):
    token = Token.objects.create(user=researcher)
    response = client.post(
        reverse("api_pairs_import", args=[study.pk]),
        {
            "file": _file("ultrafeedback.jsonl"),
            "dataset": "uf",
            "seed": 4,
            "split_test_fraction": 0.34,
        },
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["format"], body["created"], body["dataset_name"]) == ("ultrafeedback", 3, "uf")
    assert body["split"]["totals"]["unassigned"] == 0
    assert body["summary"].startswith("Imported 3 pairs")
    assert Dataset.objects.get(study=study, name="uf").pairs.count() == 3


def test_upload_with_explicit_format_and_mapping(owner_client, study):
    response = owner_client.post(
        reverse("api_pairs_import", args=[study.pk]),
        {
            "file": _file("generic.csv"),
            "mapping": json.dumps(
                {
                    "prompt": "question",
                    "response_a": "answer1",
                    "response_b": "answer2",
                    "preferred": "label",
                }
            ),
            "format": "generic",
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["dataset_name"] == "generic"  # the file name


def test_dry_run_previews_without_saving(owner_client, study):
    response = owner_client.post(
        reverse("api_pairs_import", args=[study.pk]),
        {"file": _file("helpsteer2.jsonl"), "dry_run": True},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["format"] == "helpsteer2"
    assert body["rows"][0]["prompt"] == "Write a haiku about rain."
    assert body["error"] is None
    assert PreferencePair.objects.count() == 0


def test_bad_upload_is_a_400_naming_row_and_field(owner_client, study):
    content = b"text_a,text_b,preferred_text\na,b,text_a\nc,d,maybe\n"
    response = owner_client.post(
        reverse("api_pairs_import", args=[study.pk]),
        {"file": _file("bad.csv", content), "dataset": "bad"},
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["row"], body["line"], body["field"]) == (2, 3, "preferred_text")
    assert body["detail"].startswith("row 2 (line 3), field 'preferred_text'")
    assert not Dataset.objects.exists()


def test_missing_file_is_a_validation_error(owner_client, study):
    response = owner_client.post(reverse("api_pairs_import", args=[study.pk]), {"dataset": "x"})
    assert response.status_code == 400
    assert "file" in response.json()


def test_statements_upload(owner_client, study):
    response = owner_client.post(
        reverse("api_statements_import", args=[study.pk]), {"file": _file("statements.csv")}
    )
    assert response.status_code == 201
    assert response.json()["created"] == 3
    assert ValueStatement.objects.filter(study=study).count() == 3


@pytest.mark.parametrize(
    ("fmt", "start"), [("jsonl", "{"), ("csv", "pair_id,"), ("icai_json", '{"metadata"')]
)
def test_pair_export_streams_whatever_the_accept_header(owner_client, study, fmt, start):
    dataset = DatasetFactory(study=study)
    PairFactory(dataset=dataset)
    response = owner_client.get(
        reverse("api_export_pairs", args=[study.pk]),
        {"fmt": fmt, "dataset": dataset.pk},
        HTTP_ACCEPT="text/csv",
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode().startswith(start)


def test_export_with_unknown_format_is_a_400(owner_client, study):
    response = owner_client.get(reverse("api_export_statements", args=[study.pk]), {"fmt": "xlsx"})
    assert response.status_code == 400
    assert "csv" in response.json()["detail"]


def test_constitution_and_survey_exports(owner_client, study):
    constitution = make_constitution(study, title="Grounded")
    response = owner_client.get(
        reverse("api_export_constitution", args=[study.pk, constitution.pk]), {"fmt": "md"}
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode().startswith("# Grounded (version 1)")
    survey = make_survey(study)
    response = owner_client.get(reverse("api_export_survey_answers", args=[study.pk, survey.pk]))
    assert response.status_code == 200
    # The same file as the survey page's answers export (one export, owned by surveys).
    header = b"".join(response.streaming_content).decode().splitlines()[0]
    assert header == ",".join(ANSWERS_HEADER)


def test_split_endpoint(owner_client, study):
    dataset = DatasetFactory(study=study)
    for _ in range(5):
        PairFactory(dataset=dataset, split="unassigned")
    response = owner_client.post(
        reverse("api_dataset_split", args=[study.pk, dataset.pk]),
        {"test_fraction": 0.4, "seed": 2},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["assigned_test"] == 2


def test_strangers_cannot_upload_or_export(stranger_client, study, researcher):
    response = stranger_client.post(
        reverse("api_pairs_import", args=[study.pk]), {"file": _file("icai.csv"), "dataset": "x"}
    )
    assert response.status_code == 404
    assert not Dataset.objects.exists()
    assert stranger_client.get(reverse("api_export_pairs", args=[study.pk])).status_code == 404


def test_anonymous_upload_is_refused(client, study):
    response = client.post(
        reverse("api_pairs_import", args=[study.pk]), {"file": _file("icai.csv")}
    )
    assert response.status_code in (401, 403)
    assert not Dataset.objects.exists()


def test_openapi_schema_documents_the_endpoints(owner_client):
    response = owner_client.get(reverse("api_schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/studies/{study_id}/imports/pairs/" in text
    assert "/api/studies/{study_id}/exports/pairs/" in text
