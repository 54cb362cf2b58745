"""Pages and API for training-data export and steering evaluations (owner and strangers)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from gcai.modeling.models import SteeringRun
from tests.modeling.support import RULE, labelled_pairs, make_constitution, steering_responder

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(study):
    pairs = labelled_pairs(study)
    return make_constitution(study, [RULE], evidence=[[pairs[0]]])


def _lines(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines()]


def test_export_page_previews_rows_and_links_the_files(owner_client, study, published):
    url = reverse("training_export", args=[study.pk, published.pk])
    page = owner_client.get(url + "?kind=sft&style=standard&placement=user&reword=on"
                            "&reword_from=Select+the+response+that&reword_to=Write+one+that&header=Rules:")  # fmt: skip
    assert page.status_code == 200
    text = page.content.decode()
    assert "Rules:\n1. Write one that ends with the word SAFE." in text
    assert "train.jsonl" in text
    assert "test.jsonl" in text
    detail = owner_client.get(reverse("constitution_detail", args=[study.pk, published.pk]))
    assert url in detail.content.decode()


def test_export_file_streams_the_split_with_the_settings(owner_client, study, published):
    url = reverse("training_export_file", args=[study.pk, published.pk, "test"])
    response = owner_client.get(url + "?kind=dpo&style=standard&placement=user&reword=on")
    assert response.status_code == 200
    assert response.streaming
    rows = _lines(response)
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        ("Response B4", "Response A4"),
        ("Response A5", "Response B5"),
    ]
    assert all(r["prompt"].startswith("Follow these principles") for r in rows)


def test_draft_is_refused_with_a_clear_error(owner_client, study):
    draft = make_constitution(study, [RULE], publish=False)
    page = owner_client.get(reverse("training_export", args=[study.pk, draft.pk]))
    assert "only published constitutions" in page.content.decode()
    file = owner_client.get(reverse("training_export_file", args=[study.pk, draft.pk, "train"]))
    assert file.status_code == 400
    api = owner_client.get(reverse("api_training_export", args=[study.pk, draft.pk]))
    assert api.status_code == 400
    assert "published" in api.json()["detail"]


def test_api_export_gives_provenance_and_streams_files(owner_client, study, published):
    base = reverse("api_training_export", args=[study.pk, published.pk])
    provenance = owner_client.get(base + "?kind=kto&placement=system").json()
    assert provenance["counts"]["train"]["rows"] == 6
    assert provenance["settings"]["placement"] == "system"
    assert provenance["urls"]["train"].endswith("train.jsonl?kind=kto&placement=system")
    file = owner_client.get(
        reverse("api_training_export_file", args=[study.pk, published.pk, "train"])
        + "?kind=kto&placement=system"
    )
    rows = _lines(file)
    assert len(rows) == 6
    assert rows[0]["prompt"][0]["role"] == "system"
    bad = owner_client.get(base + "?kind=ppo")
    assert bad.status_code == 400


def test_steering_form_with_uploaded_prompts_runs_and_reports(owner_client, study, fake_llm):
    fake_llm.responder = steering_responder()
    constitution = make_constitution(study, [RULE])
    upload = SimpleUploadedFile("p.txt", b"Alpha?\nBeta?\nGamma?\n")
    response = owner_client.post(
        reverse("steering_new", args=[study.pk]),
        {
            "kind": "steering", "constitution": constitution.pk, "prompts_file": upload,
            "split": "test", "target_backend": "openai", "target_base_url": fake_llm.base_url,
            "target_model": "target", "target_api_key_env": "OPENAI_API_KEY",
            "placement": "user", "reword": "on", "max_tokens": 64, "seed": 0, "batch_size": 2,
        },
    )  # fmt: skip
    run = SteeringRun.objects.get()
    assert response.status_code == 302
    assert run.config["prompts"] == ["Alpha?", "Beta?", "Gamma?"]
    assert "sk-" not in json.dumps(run.config)
    # Eager Celery: the run finished once the request's transaction committed.
    from gcai.modeling.services import steering_run_inline

    steering_run_inline(run=run)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    page = owner_client.get(reverse("steering_detail", args=[study.pk, run.pk])).content.decode()
    assert "Win rate" in page
    assert "100%" in page
    api = owner_client.get(reverse("api_steering_detail", args=[study.pk, run.pk])).json()
    assert api["comparisons"][0]["rows"][0]["response_x"].endswith("SAFE")


def test_bad_upload_is_refused_and_creates_nothing(owner_client, study):
    constitution = make_constitution(study, [RULE])
    response = owner_client.post(
        reverse("steering_new", args=[study.pk]),
        {
            "kind": "steering", "constitution": constitution.pk,
            "prompts_file": SimpleUploadedFile("p.jsonl", b'{"text": "no prompt key"}\n'),
            "split": "test", "target_backend": "local", "target_api_key_env": "OPENAI_API_KEY",
            "placement": "user", "max_tokens": 64, "seed": 0, "batch_size": 2,
        },
    )  # fmt: skip
    assert response.status_code == 200
    assert "line 1 has no" in response.content.decode()
    assert not SteeringRun.objects.exists()


def test_api_creates_a_run_from_study_prompts(owner_client, study, fake_llm):
    constitution = make_constitution(study, [RULE])
    labelled_pairs(study)
    response = owner_client.post(
        reverse("api_steering_runs", args=[study.pk]),
        {
            "constitution": constitution.pk, "split": "test", "target_base_url": fake_llm.base_url,
            "target_model": "target", "start": False,
        },
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["n_prompts"] == 3
    listed = owner_client.get(reverse("api_steering_runs", args=[study.pk])).json()
    assert [r["id"] for r in listed["results"]] == [response.json()["id"]]


def test_stranger_cannot_cancel_a_run(client, study, other_researcher):
    run = SteeringRun.objects.create(
        study=study, constitution=make_constitution(study, [RULE]), status="running"
    )
    client.force_login(other_researcher)
    for name in ("steering_cancel", "api_steering_cancel"):
        assert client.post(reverse(name, args=[study.pk, run.pk])).status_code == 404
    run.refresh_from_db()
    assert run.status == "running"
    assert not run.cancel_requested
