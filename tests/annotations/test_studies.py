from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from annotations.models import Membership, Role, Study

pytestmark = pytest.mark.django_db


def test_creating_a_study_makes_the_creator_its_researcher(client, django_user_model):
    user = django_user_model.objects.create_user("maria", password="pw-for-tests-1")
    client.force_login(user)
    response = client.post(
        reverse("study_create"),
        {
            "name": "Values 2026",
            "statements_min": 1,
            "statements_max": 3,
            "reason_min_length": 15,
            "participation": "prolific",
            "consent_text": "ok",
        },
    )
    assert response.status_code == 302
    study = Study.objects.get(name="Values 2026")
    assert study.participation == "prolific"
    assert Membership.objects.filter(user=user, study=study, role=Role.RESEARCHER).exists()


def test_study_form_rejects_min_above_max(owner_client, study):
    response = owner_client.post(
        reverse("study_edit", args=[study.pk]),
        {
            "name": "x",
            "statements_min": 5,
            "statements_max": 2,
            "reason_min_length": 15,
            "participation": "prolific",
            "consent_text": "ok",
        },
    )
    assert response.status_code == 200
    assert "Must be at least the minimum" in response.content.decode()


def test_home_lists_only_own_studies(owner_client, study, other_researcher):
    html = owner_client.get(reverse("home")).content.decode()
    assert "Owned study" in html
    assert "Someone else" not in html
    assert "New study" in html


def test_annotator_home_offers_the_work_and_no_study_creation(client, annotator, study):
    client.force_login(annotator)
    html = client.get(reverse("home")).content.decode()
    assert reverse("annotate", args=[study.pk]) in html
    assert "New study" not in html
    assert "Create one" not in html


def test_api_lists_only_own_studies_with_token_auth(client, researcher, other_researcher, study):
    token = Token.objects.create(user=researcher)
    response = client.get(reverse("api_studies"), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    names = [s["name"] for s in response.json()["results"]]
    assert names == ["Owned study"]


def test_api_create_study_validates_input(owner_client):
    bad = owner_client.post(
        reverse("api_studies"),
        {"name": "", "statements_min": 4, "statements_max": 2},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "name" in bad.json()
    good = owner_client.post(
        reverse("api_studies"), {"name": "API study"}, content_type="application/json"
    )
    assert good.status_code == 201
    assert Study.objects.filter(name="API study").exists()


def test_output_is_escaped(owner_client, study):
    study.description = "<script>alert(1)</script>"
    study.save()
    html = owner_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_healthz_reports_database(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_study_page_links_every_section(owner_client, study):
    html = owner_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    for name in (
        "study_constitutions",
        "evaluation_list",
        "survey_list",
        "study_data",
        "moderation_queue",
    ):
        assert reverse(name, args=[study.pk]) in html, name


def test_study_settings_explain_every_field(owner_client, study):
    html = owner_client.get(reverse("study_edit", args=[study.pk])).content.decode()
    for text in (
        "Annotators must explain every choice",
        "The code Prolific gave you",
        "Value statements a participant must write",
        "What participants are asked",
    ):
        assert text in html
