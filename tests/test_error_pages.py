"""Error pages: never Django's debug pages; a neutral page for participants (no platform
name, no researcher navigation), the app's page for members, JSON for the API."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.surveys.factories import open_survey

pytestmark = pytest.mark.django_db

RESEARCHER_NAV = ('href="/"', "Log out", "Studies", "GCAI", "api/docs")


def _assert_participant_page(response, status):
    assert response.status_code == status
    html = response.content.decode()
    assert 'id="error-page"' in html
    for text in RESEARCHER_NAV:
        assert text not in html, text
    assert "Traceback" not in html
    assert "DEBUG" not in html


@pytest.mark.parametrize("path", ["/p/no-such-link/", "/s/no-such-link/", "/s/x/consent/"])
def test_participants_get_a_neutral_not_found_page(client, path):
    _assert_participant_page(client.get(path), 404)


def test_a_crash_on_a_participant_page_shows_the_neutral_page(monkeypatch, study):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("annotations.views_participant.study_for_entry", boom)
    client = Client(raise_request_exception=False)
    response = client.get(reverse("participant_entry", args=[study.entry_token]))
    _assert_participant_page(response, 500)
    assert "secret internals" not in response.content.decode()


def test_a_crash_on_a_survey_page_shows_the_neutral_page(monkeypatch, study, researcher):
    survey = open_survey(study=study, user=researcher)

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("surveys.views_participant.survey_or_404", boom)
    client = Client(raise_request_exception=False)
    response = client.get(reverse("survey_participant_enter", args=[survey.entry_token]))
    _assert_participant_page(response, 500)


def test_members_get_the_apps_page_with_a_way_back(owner_client):
    response = owner_client.get("/studies/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="error-page"' in html
    assert "Back to your studies" in html
    assert "Log out" in html  # the researcher's own navigation stays


def test_a_crash_on_a_member_page_is_friendly(monkeypatch, researcher):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("annotations.views.selectors.study_list_for_user", boom)
    client = Client(raise_request_exception=False)
    client.force_login(researcher)
    response = client.get(reverse("home"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert "secret internals" not in html
    assert "Traceback" not in html


def test_api_clients_get_json(client):
    response = client.get("/api/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json()["code"] == "page_not_found"


def test_a_stale_form_on_a_participant_page_gets_a_friendly_neutral_page(study):
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("participant_entry", args=[study.entry_token]))
    response = client.post(reverse("participant_consent", args=[study.entry_token]), {})
    _assert_participant_page(response, 403)
    assert "reload the page" in response.content.decode()
