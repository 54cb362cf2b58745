"""Uploads: a declared size above the limit is refused unread, refused staged files are
deleted at once, and a dry run sends back a bounded preview."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse

from annotations.models import PreferencePair
from annotations.upload_limits import FORM_OVERHEAD_BYTES, RequestSizeLimitMiddleware

pytestmark = pytest.mark.django_db

OK = {
    "prompt": "Why is the sky blue?",
    "response_a": "Rayleigh scattering.",
    "response_b": "Paint.",
}


def _jsonl(n: int) -> bytes:
    return b"".join(json.dumps(OK | {"prompt": f"q{i}"}).encode() + b"\n" for i in range(n))


class _Unreadable:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


@pytest.mark.parametrize("path", ["/api/studies/1/pairs/import/", "/studies/1/data/preview/"])
def test_declared_size_above_the_limit_is_refused_without_reading(settings, path):
    settings.GCAI_IMPORT_MAX_BYTES = 1000
    request = RequestFactory().post(path, data=b"", content_type="multipart/form-data; boundary=x")
    request.META["CONTENT_LENGTH"] = str(1000 + FORM_OVERHEAD_BYTES + 1)
    request._stream = _Unreadable()

    def view(_request):
        raise AssertionError("the request reached the views")

    response = RequestSizeLimitMiddleware(view)(request)
    assert response.status_code == 413
    assert response["Connection"] == "close"
    body = response.content.decode()
    assert "Nothing was read" in body
    assert "GCAI_IMPORT_MAX_BYTES" in body
    if path.startswith("/api/"):
        assert json.loads(body)["code"] == "too_large"


def test_a_request_within_the_limit_goes_through(owner_client, study, settings):
    settings.GCAI_IMPORT_MAX_BYTES = 10_000
    response = owner_client.post(
        reverse("api_pairs_import", args=[study.pk]),
        {"file": SimpleUploadedFile("ok.jsonl", _jsonl(3)), "dataset": "ok"},
    )
    assert response.status_code == 201


def test_a_large_upload_through_the_client_is_refused_with_413(owner_client, study, settings):
    settings.GCAI_IMPORT_MAX_BYTES = 100
    big = b"x" * (FORM_OVERHEAD_BYTES + 200)
    response = owner_client.post(
        reverse("api_pairs_import", args=[study.pk]),
        {"file": SimpleUploadedFile("big.jsonl", big)},
    )
    assert response.status_code == 413
    assert not PreferencePair.objects.exists()


def _staged(study) -> list[Path]:
    from annotations.io_views import _stage_dir

    directory = _stage_dir(study)
    return sorted(directory.glob("*.upload")) if directory.exists() else []


def test_a_refused_upload_is_not_staged(owner_client, study, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.GCAI_IMPORT_MAX_BYTES = 300  # the request passes (overhead), the file does not
    response = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": SimpleUploadedFile("big.jsonl", _jsonl(20))},
    )
    assert response.status_code == 400
    assert "import limit" in response.content.decode()
    assert _staged(study) == []


def test_a_staged_file_refused_at_import_is_deleted_at_once(
    owner_client, study, settings, tmp_path
):
    settings.VAR_DIR = tmp_path
    settings.GCAI_IMPORT_MAX_BYTES = 100_000
    html = owner_client.post(
        reverse("study_data_preview", args=[study.pk]),
        {"kind": "pairs", "file": SimpleUploadedFile("ok.jsonl", _jsonl(20))},
    ).content.decode()
    assert len(_staged(study)) == 1
    token = _staged(study)[0].stem
    assert token in html
    settings.GCAI_IMPORT_MAX_BYTES = 100  # the limit was lowered meanwhile
    response = owner_client.post(
        reverse("study_data_import", args=[study.pk]),
        {"kind": "pairs", "token": token, "dataset": "d"},
    )
    assert response.status_code == 400
    assert "import limit" in response.content.decode()
    assert _staged(study) == []
    assert not PreferencePair.objects.exists()
