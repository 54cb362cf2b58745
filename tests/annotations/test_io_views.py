"""The study Data page: upload -> preview -> confirm, reports, exports, access."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotations.models import Dataset, PreferencePair, ValueStatement
from tests.annotations.io_owned_objects import make_constitution, make_survey
from tests.factories import DatasetFactory, PairFactory, StudyFactory

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path


def _upload(name: str, content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(
        name, content if content is not None else (FIXTURES / name).read_bytes()
    )


def _token(html: str) -> str:
    match = re.search(r'name="token" value="([0-9a-f]{32})"', html)
    assert match, html
    return match.group(1)


def test_data_page_shows_upload_form_datasets_and_exports(owner_client, study):
    DatasetFactory(study=study, name="alpaca")
    make_constitution(study, title="Grounded")
    make_survey(study)
    html = owner_client.get(reverse("study_data", args=[study.pk])).content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert "Detect automatically" in html
    assert "alpaca" in html
    assert reverse("study_export_pairs", args=[study.pk]) + "?fmt=icai_json" in html
    assert "Grounded" in html
    assert "answers CSV" in html


def test_annotators_of_the_study_cannot_open_the_data_page(client, annotator, study):
    client.force_login(annotator)
    assert client.get(reverse("study_data", args=[study.pk])).status_code == 404


def test_preview_then_import(owner_client, study):
    response = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": _upload("hh_rlhf.jsonl"), "seed": 3},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Anthropic HH-RLHF" in html
    assert "How do I boil an egg?" in html
    assert PreferencePair.objects.count() == 0  # a preview saves nothing
    token = _token(html)

    response = owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {
            "kind": "pairs",
            "token": token,
            "filename": re.search(r'name="filename" value="([^"]+)"', html).group(1),
            "dataset": "hh",
            "format": "hh_rlhf",
            "seed": 3,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("study_data", args=[study.pk])
    dataset = Dataset.objects.get(study=study, name="hh")
    assert dataset.pairs.count() == 3
    html = owner_client.get(response["Location"]).content.decode()
    assert "Last import" in html
    assert "Imported 3 pairs" in html
    assert "hh_rlhf.jsonl" in html  # the uploaded name, not the staged copy's
    assert dataset.import_report["filename"] == "hh_rlhf.jsonl"
    # The staged upload is gone once imported.
    again = owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {"kind": "pairs", "token": token, "dataset": "hh"},
    )
    assert again.status_code == 302
    assert dataset.pairs.count() == 3


def test_dataset_name_defaults_to_the_file_name(owner_client, study):
    html = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": _upload("icai.csv")},
    ).content.decode()
    assert 'value="icai"' in html
    owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {"kind": "pairs", "token": _token(html), "dataset": "icai"},
    )
    assert Dataset.objects.get(study=study).name == "icai"


def test_bad_file_shows_row_and_field_and_imports_nothing(owner_client, study):
    content = b'{"prompt": "a", "response_a": "b", "response_b": "c"}\n{"prompt": "a2", "response_a": "b"}\n'
    response = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": _upload("bad.jsonl", content)},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "line 2, field &#x27;response_b&#x27;: missing field" in html
    response = owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {"kind": "pairs", "token": _token(html), "dataset": "bad"},
    )
    assert response.status_code == 400
    assert "Nothing was imported" in response.content.decode()
    assert not Dataset.objects.exists()


def test_preview_again_with_a_mapping(owner_client, study):
    html = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": _upload("generic.csv")},
    ).content.decode()
    assert "could not recognise the format" in html
    response = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {
            "kind": "pairs",
            "token": _token(html),
            "mapping": "prompt=question,response_a=answer1,response_b=answer2,preferred=label",
        },
    )
    assert response.status_code == 200
    assert "What is H2O?" in response.content.decode()


def test_cancel_discards_the_upload(owner_client, study, settings):
    html = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": _upload("icai.csv")},
    ).content.decode()
    token = _token(html)
    staged = Path(settings.VAR_DIR) / "imports" / str(study.pk) / f"{token}.upload"
    assert staged.exists()
    owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {"kind": "pairs", "token": token, "action": "cancel"},
    )
    assert not staged.exists()
    assert not Dataset.objects.exists()


def test_a_staged_upload_belongs_to_its_study(owner_client, study, researcher):
    from tests.factories import MembershipFactory

    second = StudyFactory()
    MembershipFactory(user=researcher, study=second)
    html = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": _upload("icai.csv")},
    ).content.decode()
    owner_client.post(
        reverse("study_data_import", args=[second.pk]),
        {"kind": "pairs", "token": _token(html), "dataset": "stolen"},
    )
    assert not Dataset.objects.exists()


def test_statements_upload(owner_client, study):
    html = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "statements", "file": _upload("statements.csv")},
    ).content.decode()
    assert "AI should be honest about uncertainty." in html
    owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {"kind": "statements", "token": _token(html)},
    )
    assert ValueStatement.objects.filter(study=study).count() == 3


def test_split_form_assigns_unassigned_pairs(owner_client, study):
    dataset = DatasetFactory(study=study)
    for _ in range(10):
        PairFactory(dataset=dataset, split="unassigned")
    response = owner_client.post(
        reverse("study_dataset_split", args=[study.pk, dataset.pk]), {"test_fraction": 0.3}
    )
    assert response.status_code == 302
    assert dataset.pairs.filter(split="test").count() == 3


def test_pair_export_downloads_a_streamed_file(owner_client, study):
    dataset = DatasetFactory(study=study, name="My data")
    PairFactory(dataset=dataset)
    response = owner_client.get(
        reverse("study_export_pairs", args=[study.pk]), {"fmt": "csv", "dataset": dataset.pk}
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="study-{study.pk}-pairs-my-data.csv"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("pair_id,id,dataset,prompt")


def test_export_refuses_other_studies_objects_through_an_own_study_url(owner_client, study):
    elsewhere = StudyFactory()
    foreign_dataset = DatasetFactory(study=elsewhere)
    foreign_constitution = make_constitution(elsewhere)
    foreign_survey = make_survey(elsewhere)
    pairs_url = reverse("study_export_pairs", args=[study.pk])
    assert owner_client.get(pairs_url, {"dataset": foreign_dataset.pk}).status_code == 404
    assert owner_client.get(pairs_url, {"dataset": "x"}).status_code == 404
    url = reverse("study_export_constitution", args=[study.pk, foreign_constitution.pk])
    assert owner_client.get(url).status_code == 404
    url = reverse("study_export_survey_answers", args=[study.pk, foreign_survey.pk])
    assert owner_client.get(url).status_code == 404
    url = reverse("study_dataset_split", args=[study.pk, foreign_dataset.pk])
    assert owner_client.post(url, {"test_fraction": 0.2}).status_code == 404


def test_unknown_export_format_is_a_clear_400(owner_client, study):
    response = owner_client.get(reverse("study_export_pairs", args=[study.pk]), {"fmt": "xml"})
    assert response.status_code == 400
    assert "jsonl, csv, icai_json" in response.content.decode()


def test_constitution_and_statement_exports(owner_client, study):
    constitution = make_constitution(study, title="Grounded")
    for fmt, content_type in (
        ("json", "application/json"),
        ("md", "text/markdown"),
        ("txt", "text/plain"),
    ):
        response = owner_client.get(
            reverse("study_export_constitution", args=[study.pk, constitution.pk]), {"fmt": fmt}
        )
        assert response.status_code == 200
        assert response["Content-Type"].startswith(content_type)
        assert f'filename="grounded-v1.{fmt}"' in response["Content-Disposition"]
    response = owner_client.get(
        reverse("study_export_statements", args=[study.pk]), {"fmt": "jsonl"}
    )
    assert response.status_code == 200


def test_import_report_says_where_preferences_and_reasons_went(owner_client, study):
    rows = [
        {"prompt": f"Q{i}", "response_a": "A", "response_b": f"B{i}", "preferred": "a"}
        | ({"reason": "A is kinder."} if i < 2 else {})
        for i in range(3)
    ]
    content = "\n".join(json.dumps(r) for r in rows).encode()
    html = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": _upload("labelled.jsonl", content)},
    ).content.decode()
    owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {"kind": "pairs", "token": _token(html), "dataset": "labelled", "format": "gcai"},
    )
    html = owner_client.get(reverse("study_data", args=[study.pk])).content.decode()
    report = html[html.index('id="import-labels"') :]
    assert "<strong>3</strong> of 3 pairs" in report
    assert "<strong>2</strong> carry a reason" in report
    assert "source preference" in report
    assert "“Annotations created 0” is expected" in report
    pairs = PreferencePair.objects.filter(dataset__name="labelled")
    assert sorted(pairs.values_list("source_reason", flat=True)) == [
        "",
        "A is kinder.",
        "A is kinder.",
    ]
