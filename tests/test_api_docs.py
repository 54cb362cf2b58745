"""The API docs work offline (pinned Swagger UI from drf-spectacular-sidecar, served
locally) and the schema is for researchers only."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from annotations.models import Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def static_client(settings):
    # Tests run before collectstatic: let WhiteNoise serve straight from the finders,
    # as it does under runserver (the middleware reads this when the client starts).
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    return Client()


def test_docs_reference_only_local_assets_and_those_assets_are_served(static_client, researcher):
    static_client.force_login(researcher)
    page = static_client.get(reverse("api_docs"))
    assert page.status_code == 200
    html = page.content.decode()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    refs += re.findall(r"""url\s*:\s*["']([^"']+)["']""", html)
    assets = [r for r in refs if r.endswith((".js", ".css", ".png"))]
    assert any("swagger-ui-bundle" in a for a in assets), assets
    assert any("swagger-ui.css" in a for a in assets), assets
    # Nothing from another host: no CDN, no protocol-relative URL.
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", html)
    assert "cdn.jsdelivr" not in html
    assert "unpkg.com" not in html
    for asset in assets:
        assert asset.startswith("/static/"), asset
        served = static_client.get(asset)
        assert served.status_code == 200, asset
        body = b"".join(served.streaming_content) if served.streaming else served.content
        assert len(body) > 100, asset


def test_schema_and_docs_are_for_researchers_only(client, researcher, annotator):
    assert client.get(reverse("api_schema")).status_code in (401, 403)
    docs = client.get(reverse("api_docs"))
    assert docs.status_code == 302
    assert docs["Location"].startswith(reverse("login"))
    client.force_login(annotator)
    assert client.get(reverse("api_schema")).status_code == 403
    refused = client.get(reverse("api_docs"))
    assert refused.status_code == 403
    assert "The API description is for researchers" in refused.content.decode()
    client.force_login(researcher)
    schema = client.get(reverse("api_schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert b"/api/studies/" in schema.content


def test_participants_are_not_given_the_schema(survey_participant_client):
    client = survey_participant_client
    assert client.get(reverse("api_schema")).status_code in (401, 403)


@pytest.fixture
def survey_participant_client(study):
    """A participant who entered the study's statement collection (session only)."""
    client = Client()
    client.get(reverse("participant_entry", args=[study.entry_token]), {"PROLIFIC_PID": "P9"})
    return client


def test_staff_without_a_study_may_read_the_schema(client):
    staff = UserFactory(username="ops", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("api_schema")).status_code == 200


def test_a_researcher_of_any_study_may_read_the_schema(client, study):
    user = UserFactory(username="newcomer")
    MembershipFactory(user=user, study=study, role=Role.RESEARCHER)
    client.force_login(user)
    assert client.get(reverse("api_docs")).status_code == 200
