"""The researcher's study dashboard: progress, timing, agreement, moderation counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from annotations import queue
from annotations.dashboard import agreement, study_dashboard
from annotations.models import Role
from annotations.views import _url_or_empty
from tests.factories import (
    AnnotationFactory,
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    StatementFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def annotators(study, n, prefix="ann"):
    users = []
    for i in range(n):
        user = UserFactory(username=f"{prefix}{i}")
        MembershipFactory(user=user, study=study, role=Role.ANNOTATOR)
        users.append(user)
    return users


def test_agreement_perfect_and_chance():
    perfect = agreement([["a", "a"], ["b", "b"], ["a", "a"]])
    assert perfect["alpha"] == pytest.approx(1.0)
    assert perfect["fleiss_kappa"] == pytest.approx(1.0)
    assert perfect["percent_agreement"] == 100.0
    mixed = agreement([["a", "b"], ["b", "a"], ["a", "a"], ["b", "b"]])
    assert mixed["percent_agreement"] == 50.0
    assert mixed["alpha"] < 0.2


def test_agreement_ignores_single_ratings_and_handles_uneven_raters():
    result = agreement([["a"], ["a", "a", "b"], ["b", "b"]])
    assert result["pairs"] == 2
    assert result["ratings"] == 5
    assert result["fleiss_kappa"] is None  # raters per pair differ
    assert result["alpha"] is not None
    assert agreement([])["alpha"] is None


def test_dashboard_summarises_progress_timing_and_agreement(study):
    dataset = DatasetFactory(study=study, name="main", annotation_overlap=2)
    pairs = [PairFactory(dataset=dataset) for _ in range(4)]
    a1, a2 = annotators(study, 2)
    for pair in pairs[:2]:
        AnnotationFactory(pair=pair, annotator=a1, preferred="a", duration_ms=4000)
        AnnotationFactory(pair=pair, annotator=a2, preferred="a", duration_ms=8000)
    AnnotationFactory(pair=pairs[2], annotator=a1, preferred="b", duration_ms=6000)
    StatementFactory(study=study, moderation="pending")
    StatementFactory(study=study, moderation="approved")
    board = study_dashboard(study=study)

    (ds,) = board["datasets"]
    assert ds["pairs"] == 4
    assert ds["complete_pairs"] == 2
    assert ds["annotations"] == 5
    assert ds["percent"] == round(100 * 5 / 8)
    assert ds["annotations_per_pair"] == [
        {"annotations": 0, "pairs": 1},
        {"annotations": 1, "pairs": 1},
        {"annotations": 2, "pairs": 2},
    ]
    by_name = {a["username"]: a for a in board["annotators"]}
    assert by_name["ann0"]["done"] == 3
    assert by_name["ann0"]["median_ms"] == 4000
    assert by_name["ann1"]["median_s"] == 8.0
    assert board["timing"] == {"median_ms": 6000, "median_s": 6.0, "items": 5}
    assert board["agreement"]["pairs"] == 2
    assert board["agreement"]["percent_agreement"] == 100.0
    assert board["statements"] == {"pending": 1, "approved": 1, "rejected": 0, "total": 2}


def test_dashboard_shows_leases_and_flags(study):
    dataset = DatasetFactory(study=study, annotation_overlap=1)
    PairFactory(dataset=dataset, external_id="hard-one")
    PairFactory(dataset=dataset)
    a1, a2 = annotators(study, 2)
    first = queue.pair_next_for_annotator(user=a1, study=study)
    queue.assignment_flag(user=a1, study=study, pair_id=first.pair_id, note="<b>cut off</b>")
    queue.pair_next_for_annotator(user=a2, study=study)
    board = study_dashboard(study=study)
    assert board["datasets"][0]["flagged"] == 1
    assert board["datasets"][0]["in_progress"] == 1
    assert board["flagged"][0]["external_id"] == "hard-one"
    later = study_dashboard(study=study, now=timezone.now() + timedelta(days=1))
    assert later["datasets"][0]["in_progress"] == 0  # lapsed leases do not count


def _page_queries(client, study):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("study_detail", args=[study.pk]))
    assert response.status_code == 200
    return len(ctx), response.content.decode()


def test_dashboard_page_query_count_does_not_grow_with_the_study(owner_client, study):
    dataset = DatasetFactory(study=study, annotation_overlap=2)
    users = annotators(study, 2)
    pair = PairFactory(dataset=dataset)
    AnnotationFactory(pair=pair, annotator=users[0])
    small, _ = _page_queries(owner_client, study)

    users += annotators(study, 8, prefix="more")
    for _ in range(20):
        pair = PairFactory(dataset=dataset)
        for user in users[:2]:
            AnnotationFactory(pair=pair, annotator=user, duration_ms=1000)
    for _ in range(10):
        StatementFactory(study=study)
    big, html = _page_queries(owner_client, study)
    assert big == small
    assert "Krippendorff" in html


def test_dashboard_page_shows_invite_links_and_sections(owner_client, study):
    study.prolific_completion_code = "ABC123"
    study.save()
    _, html = _page_queries(owner_client, study)
    assert reverse("participant_entry", args=[study.entry_token]) in html
    assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in html
    assert "ABC123" in html
    assert reverse("moderation_queue", args=[study.pk]) in html
    assert "Annotation progress" in html
    assert "Members" in html  # the earlier study page content is kept


def test_data_page_link_is_shown_when_that_page_exists(owner_client, study):
    _, html = _page_queries(owner_client, study)
    try:
        data_url = reverse("study_data", args=[study.pk])
    except NoReverseMatch:
        assert 'id="data-link"' not in html
    else:
        assert f'href="{data_url}" id="data-link"' in html
    assert _url_or_empty("no_such_page_anywhere", study.pk) == ""
    export = _url_or_empty("study_export_pairs", study.pk)
    if export:
        assert f'href="{export}?fmt=csv"' in html
        assert f'href="{export}?fmt=jsonl"' in html


def test_dashboard_api(owner_client, study):
    DatasetFactory(study=study)
    response = owner_client.get(reverse("api_study_dashboard", args=[study.pk]))
    assert response.status_code == 200
    assert set(response.json()) >= {"datasets", "annotators", "agreement", "statements"}


def test_dashboard_api_query_count_is_bounded(owner_client, study, django_assert_max_num_queries):
    dataset = DatasetFactory(study=study, annotation_overlap=2)
    users = annotators(study, 5)
    for _ in range(15):
        pair = PairFactory(dataset=dataset)
        for user in users[:2]:
            AnnotationFactory(pair=pair, annotator=user)
    with django_assert_max_num_queries(10):
        response = owner_client.get(reverse("api_study_dashboard", args=[study.pk]))
    assert response.json()["totals"]["annotations"] == 30
