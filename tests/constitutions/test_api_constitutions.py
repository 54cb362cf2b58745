"""REST API for constitutions: list, detail with evidence ids, new version, publish."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    ConstitutionStatus,
    Origin,
    Principle,
)
from gcai.constitutions.services import constitution_publish
from tests.constitutions.constitutions_owned_objects import (
    build_gcai_run,
    build_icai_run,
    make_study_input,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


@pytest.fixture
def data(study):
    return make_study_input(study)


@pytest.fixture
def gcai(study, data):
    return build_gcai_run(study, data).constitutions.get()


def _url(name, constitution):
    return reverse(
        name, kwargs={"study_id": constitution.study_id, "constitution_id": constitution.pk}
    )


def test_list_constitutions_with_counts(api, study, gcai, django_assert_max_num_queries):
    for _ in range(4):
        build_icai_run(study, _data(study))
    with django_assert_max_num_queries(5):
        response = api.get(reverse("api_constitutions", args=[study.pk]))
    rows = response.json()["results"]
    assert len(rows) == 5
    row = next(r for r in rows if r["id"] == gcai.pk)
    assert row["n_principles"] == 1
    assert row["status"] == "draft"
    assert row["version"] == 1
    assert row["run"] == gcai.run_id
    assert row["html_url"] == reverse("constitution_detail", args=[study.pk, gcai.pk])


def _data(study):
    # Each ICAI run gets its own dataset of pairs (names are unique per study).
    from tests.factories import DatasetFactory, PairFactory

    dataset = DatasetFactory(study=study)
    return {"pairs": [PairFactory(dataset=dataset) for _ in range(4)]}


def test_detail_lists_principles_with_evidence_ids(api, gcai, data):
    body = api.get(_url("api_constitution_detail", gcai)).json()
    (item,) = body["principles"]
    assert item["position"] == 1
    assert item["origin"] == "both"
    assert item["text"] == item["original_text"]
    evidence = item["evidence"]
    assert evidence["annotation_ids"] == sorted(a.pk for a in data["annotations"][:3])
    assert evidence["statement_ids"] == [data["statements"][0].pk]
    assert evidence["participants"] == sorted(
        [data["annotator_pseudonym"], data["participant"].pseudonym]
    )
    assert "participants" not in item["stats"]
    assert body["next_version_ids"] == []


def test_new_version_of_a_draft_edits_it_in_place(api, gcai):
    principle = gcai.items.get().principle
    response = api.post(
        _url("api_constitution_new_version", gcai),
        {"items": [{"principle": principle.pk, "text": "Reworded"}], "title": "Renamed"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["created"] is False
    assert body["constitution"]["id"] == gcai.pk
    assert body["constitution"]["title"] == "Renamed"
    assert body["constitution"]["principles"][0]["text"] == "Reworded"


def test_new_version_of_a_published_constitution_creates_a_draft(api, gcai):
    constitution_publish(constitution=gcai)
    principle = gcai.items.get().principle
    response = api.post(
        _url("api_constitution_new_version", gcai),
        {"items": [{"principle": principle.pk, "text": "Reworded"}]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    new = Constitution.objects.get(pk=body["constitution"]["id"])
    assert new.previous_id == gcai.pk
    assert new.version == 2
    assert new.status == ConstitutionStatus.DRAFT
    assert api.get(_url("api_constitution_detail", gcai)).json()["next_version_ids"] == [new.pk]


def test_new_version_refuses_foreign_principles(api, gcai, study, data):
    other = build_icai_run(study, data).constitutions.get().items.get().principle
    response = api.post(
        _url("api_constitution_new_version", gcai),
        {"items": [{"principle": other.pk, "text": "x"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "not part of this constitution" in response.json()["detail"]


def test_new_version_needs_items(api, gcai):
    response = api.post(_url("api_constitution_new_version", gcai), {}, format="json")
    assert response.status_code == 400
    assert "items" in response.json()


def test_publish(api, gcai):
    response = api.post(_url("api_constitution_publish", gcai))
    assert response.status_code == 200
    assert response.json()["status"] == "published"
    assert response.json()["published_at"]


def test_publish_refuses_principles_without_evidence(api, gcai):
    text = "Select the response that cites a source for every claim."
    principle = Principle.objects.create(
        run=gcai.run, study=gcai.study, text=text, origin=Origin.CONTEXTUAL
    )
    ConstitutionPrinciple.objects.create(
        constitution=gcai, principle=principle, position=2, text=text
    )
    response = api.post(_url("api_constitution_publish", gcai))
    assert response.status_code == 400
    body = response.json()
    assert "quality check flagged 1 principle" in body["detail"]
    assert [(f["position"], f["kind"]) for f in body["flags"]] == [(2, "no_evidence")]
    gcai.refresh_from_db()
    assert gcai.status == ConstitutionStatus.DRAFT
    assert gcai.quality_override == {}


def test_publish_with_override_records_the_flags_and_who(api, gcai, researcher):
    gcai.items.update(text="] } ```python 1. The person explained their judgement")
    response = api.post(_url("api_constitution_publish", gcai), {"override": True}, format="json")
    assert response.status_code == 200, response.content
    gcai.refresh_from_db()
    assert gcai.status == ConstitutionStatus.PUBLISHED
    assert gcai.quality_override["username"] == researcher.username
    assert [f["kind"] for f in gcai.quality_override["flags"]] == ["malformed"]


def test_strangers_get_404(other_researcher, gcai):
    client = APIClient()
    client.force_authenticate(other_researcher)
    assert client.get(_url("api_constitution_detail", gcai)).status_code == 404
    assert client.post(_url("api_constitution_publish", gcai)).status_code == 404
    gcai.refresh_from_db()
    assert gcai.status == ConstitutionStatus.DRAFT
