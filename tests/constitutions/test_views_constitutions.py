"""Constitution pages: provenance under pseudonyms, editing into versions, publishing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    ConstitutionStatus,
    Origin,
    Principle,
)
from gcai.constitutions.services import constitution_new_version, constitution_publish
from tests.constitutions.constitutions_owned_objects import (
    EVIL,
    build_gcai_run,
    build_icai_run,
    make_study_input,
)
from tests.factories import AnnotationFactory, PairFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(study):
    return make_study_input(study)


@pytest.fixture
def gcai(study, data):
    return build_gcai_run(study, data).constitutions.get()


def _url(constitution, name="constitution_detail"):
    return reverse(
        name, kwargs={"study_id": constitution.study_id, "constitution_id": constitution.pk}
    )


def _add_principle(constitution, text, *, annotations=(), statements=(), pairs=()):
    principle = Principle.objects.create(
        run=constitution.run, study=constitution.study, text=text, origin=Origin.CONTEXTUAL
    )
    principle.supporting_annotations.set(annotations)
    principle.supporting_statements.set(statements)
    principle.supporting_pairs.set(pairs)
    position = constitution.items.count() + 1
    ConstitutionPrinciple.objects.create(
        constitution=constitution, principle=principle, position=position, text=text
    )
    return principle


def _edit_post(constitution, rows, title=None):
    """POST data for the edit form: rows of (principle id, text, position, keep)."""
    post = {
        "title": title or constitution.title,
        "items-TOTAL_FORMS": str(len(rows)),
        "items-INITIAL_FORMS": str(len(rows)),
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
    }
    for i, (pid, text, position, keep) in enumerate(rows):
        post[f"items-{i}-principle"] = str(pid)
        post[f"items-{i}-text"] = text
        post[f"items-{i}-position"] = str(position)
        if keep:
            post[f"items-{i}-keep"] = "on"
    return post


# --------------------------------------------------------------------------- provenance


def test_principles_expand_to_reasons_and_statements_under_pseudonyms(owner_client, gcai, data):
    html = owner_client.get(_url(gcai)).content.decode()
    assert "Select the response that is honest about uncertainty." in html
    assert "Both streams" in html
    assert "<details" in html
    assert "<summary>" in html
    assert "Evidence: 3 reasons, 1 statement, 3 pairs" in html
    assert "Reason 0: it is honest." in html
    assert "AI should be honest." in html
    assert data["annotator_pseudonym"] in html
    assert data["participant"].pseudonym in html
    assert data["annotator"].username not in html
    assert data["annotator"].email not in html
    assert data["pairs"][0].prompt in html  # supporting pair prompt excerpt


def test_participant_and_external_annotations_show_their_pseudonyms(owner_client, gcai, data):
    pair = data["pairs"][0]
    by_participant = AnnotationFactory(
        pair=pair, annotator=None, participant=data["participant"], reason="Participant reason"
    )
    imported = AnnotationFactory(
        pair=pair, annotator=None, external_annotator="worker-17", reason="Imported reason"
    )
    _add_principle(gcai, "Another principle", annotations=[by_participant, imported])
    html = owner_client.get(_url(gcai)).content.decode()
    assert f"{data['participant'].pseudonym} · chose A" in html
    assert "worker-17 · chose A" in html


def test_principle_text_and_reasons_are_escaped(owner_client, study, data):
    data["annotations"][0].reason = EVIL
    data["annotations"][0].save()
    constitution = build_gcai_run(study, data, reason_text=EVIL).constitutions.get()
    html = owner_client.get(_url(constitution)).content.decode()
    assert EVIL not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in html


def test_evidence_is_capped_per_principle_with_a_count_of_the_rest(owner_client, gcai, data):
    dataset = data["dataset"]
    annotations = [
        AnnotationFactory(
            pair=PairFactory(dataset=dataset), annotator=data["annotator"], reason=f"R{i}"
        )
        for i in range(8)
    ]
    _add_principle(gcai, "Well supported", annotations=annotations)
    html = owner_client.get(_url(gcai)).content.decode()
    assert "“R4”" in html
    assert "“R5”" not in html
    assert "and 3 more reasons" in html
    more = owner_client.get(_url(gcai), {"evidence": "more"}).content.decode()
    assert "“R7”" in more
    assert "and 3 more reasons" not in more


def test_constitution_page_queries_do_not_grow_with_principles(owner_client, gcai, data):
    with CaptureQueriesContext(connection) as one:
        assert owner_client.get(_url(gcai)).status_code == 200
    for i in range(5):
        _add_principle(
            gcai,
            f"Principle {i}",
            annotations=data["annotations"][:2],
            statements=data["statements"][:1],
            pairs=data["pairs"],
        )
    with CaptureQueriesContext(connection) as six:
        assert owner_client.get(_url(gcai)).status_code == 200
    assert len(six) == len(one)


def test_principle_without_evidence_is_flagged(owner_client, gcai):
    _add_principle(gcai, "Unsupported claim")
    html = owner_client.get(_url(gcai)).content.decode()
    assert "no evidence" in html
    assert "drop it before publishing" in html


# --------------------------------------------------------------------------- editing


def test_editing_a_draft_changes_it_in_place(owner_client, gcai, data):
    first = gcai.items.get().principle
    second = _add_principle(gcai, "Second", annotations=data["annotations"][:1])
    third = _add_principle(gcai, "Third", annotations=data["annotations"][:1])
    response = owner_client.post(
        _url(gcai, "constitution_edit"),
        _edit_post(
            gcai,
            [
                (first.pk, "First, reworded", 3, True),
                (second.pk, "Second", 2, False),  # dropped
                (third.pk, "Third", 1, True),
            ],
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == _url(gcai)
    assert Constitution.objects.count() == 1  # edited in place, no new version
    items = list(gcai.items.order_by("position").values_list("principle_id", "text"))
    assert items == [(third.pk, "Third"), (first.pk, "First, reworded")]


def test_editing_a_published_constitution_creates_the_next_version(owner_client, gcai):
    constitution_publish(constitution=gcai)
    principle = gcai.items.get().principle
    response = owner_client.post(
        _url(gcai, "constitution_edit"),
        _edit_post(gcai, [(principle.pk, "Reworded after publishing", 1, True)]),
    )
    new = Constitution.objects.get(previous=gcai)
    assert response.status_code == 302
    assert response["Location"] == _url(new)
    assert new.version == gcai.version + 1
    assert new.status == ConstitutionStatus.DRAFT
    assert new.run_id == gcai.run_id
    assert new.items.get().text == "Reworded after publishing"
    gcai.refresh_from_db()
    assert gcai.status == ConstitutionStatus.PUBLISHED
    assert gcai.items.get().text == principle.text


def test_editing_refuses_dropping_every_principle(owner_client, gcai):
    principle = gcai.items.get().principle
    response = owner_client.post(
        _url(gcai, "constitution_edit"), _edit_post(gcai, [(principle.pk, "x", 1, False)])
    )
    assert response.status_code == 400
    assert "Keep at least one principle." in response.content.decode()
    assert gcai.items.count() == 1


def test_editing_refuses_a_principle_from_elsewhere(owner_client, gcai, study, data):
    other = build_icai_run(study, data).constitutions.get().items.get().principle
    response = owner_client.post(
        _url(gcai, "constitution_edit"), _edit_post(gcai, [(other.pk, "x", 1, True)])
    )
    assert response.status_code == 400
    assert "is not part of this constitution" in response.content.decode()


def test_edit_page_labels_every_input(owner_client, gcai):
    html = owner_client.get(_url(gcai, "constitution_edit")).content.decode()
    for field in ("position", "text", "keep"):
        assert f'for="id_items-0-{field}"' in html
    assert 'for="id_title"' in html


def test_title_change_on_a_draft_renames_it(owner_client, gcai):
    principle = gcai.items.get().principle
    owner_client.post(
        _url(gcai, "constitution_edit"),
        _edit_post(gcai, [(principle.pk, principle.text, 1, True)], title="Renamed"),
    )
    gcai.refresh_from_db()
    assert gcai.title == "Renamed"


# --------------------------------------------------------------------------- publishing


def test_publish_freezes_a_draft(owner_client, gcai):
    response = owner_client.post(_url(gcai, "constitution_publish"), follow=True)
    gcai.refresh_from_db()
    assert gcai.status == ConstitutionStatus.PUBLISHED
    html = response.content.decode()
    assert "is published and now immutable" in html
    assert "Edit as a new version" in html


def test_publish_refuses_principles_without_evidence(owner_client, gcai):
    _add_principle(gcai, "Select the response that cites a source for every claim.")
    html = owner_client.get(_url(gcai)).content.decode()
    assert "Quality check: 1 issue to resolve" in html
    assert "Principle 2: <strong>No evidence</strong>" in html
    assert "Publish anyway" in html
    response = owner_client.post(_url(gcai, "constitution_publish"), follow=True)
    gcai.refresh_from_db()
    assert gcai.status == ConstitutionStatus.DRAFT
    assert "Not published: the quality check flagged 1 principle" in response.content.decode()


def test_publish_anyway_publishes_a_flagged_draft_and_says_so(owner_client, gcai):
    _add_principle(gcai, "] } ```python 1. The person explained their judgement")
    response = owner_client.post(_url(gcai, "constitution_publish"), {"override": "1"}, follow=True)
    gcai.refresh_from_db()
    assert gcai.status == ConstitutionStatus.PUBLISHED
    assert "quality override" in response.content.decode()


def test_publish_needs_post(owner_client, gcai):
    assert owner_client.get(_url(gcai, "constitution_publish")).status_code == 405


# --------------------------------------------------------------------------- versions


def test_version_history_links_every_version_and_its_run(owner_client, gcai):
    v1 = constitution_publish(constitution=gcai)
    principle = gcai.items.get().principle
    v2 = constitution_new_version(
        constitution=v1, items=[{"principle": principle.pk, "text": "v2 wording"}]
    )
    v2 = constitution_publish(constitution=v2, override=True)  # "v2 wording" is flagged
    v3 = constitution_new_version(
        constitution=v2, items=[{"principle": principle.pk, "text": "v3 wording"}]
    )
    html = owner_client.get(_url(v2)).content.decode()
    assert f'href="{_url(gcai)}">v1</a>' in html
    assert "v2 (this version)" in html
    assert f'href="{_url(v3)}">v3</a>' in html
    assert reverse("run_detail", args=[gcai.study_id, gcai.run_id]) in html
    assert "edited from" in html
    assert "Originally: Select the response that is honest" in html


def test_constitution_of_another_study_is_not_found(owner_client, gcai, study):
    from tests.factories import StudyFactory

    other = StudyFactory()
    foreign = build_icai_run(other, make_study_input(other)).constitutions.get()
    url = reverse(
        "constitution_detail", kwargs={"study_id": study.pk, "constitution_id": foreign.pk}
    )
    assert owner_client.get(url).status_code == 404


def test_evidence_pairs_link_to_a_pair_page_with_its_reasons(owner_client, gcai, data):
    html = owner_client.get(_url(gcai)).content.decode()
    pair = gcai.items.get().principle.supporting_pairs.order_by("pk").first()
    link = reverse("pair_detail", kwargs={"study_id": gcai.study_id, "pair_id": pair.pk})
    assert f'href="{link}"' in html
    page = owner_client.get(link).content.decode()
    assert pair.prompt in page
    assert data["annotator_pseudonym"] in page
    assert "Select the response that is honest about uncertainty." in page
