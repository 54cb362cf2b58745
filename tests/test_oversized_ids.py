"""Ids no database row can have are a 404 or a 400, never a server error.

PostgreSQL compares a too-long number without complaint, but SQLite (the demo's
database) cannot even bind it, so these tests check the guard itself: URL routes take
ids through the bounded ``<id:...>`` converter and request bodies through
``DatabaseIdField``/``is_db_id``.
"""

from __future__ import annotations

import re

import pytest
from django.urls import Resolver404, resolve, reverse

from annotations.models import Moderation, ValueStatement
from gcai.dbid import MAX_DB_ID, DatabaseIdConverter, is_db_id
from tests import entry_points
from tests.factories import StatementFactory
from tests.owned_objects import make_owned_objects
from tests.test_entry_points import ROUTES

pytestmark = pytest.mark.django_db

BIG = "99999999999999999999999"
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _id_routes():
    """(name, route, id parameters) of every named route that takes an id."""
    out = []
    for name, route, _params in ROUTES:
        if any(ch in route for ch in "^$()[]"):
            continue  # regex routes (admin, format suffixes) take no ids
        ids = [p for conv, p in _PARAM.findall(route) if conv in ("id", "int")]
        if ids:
            out.append((name, route, ids))
    return out


def test_no_route_uses_the_unbounded_int_converter():
    unbounded = [name for name, route, _ in ROUTES if "<int:" in route]
    assert not unbounded, f"use <id:...> for ids: {unbounded}"
    assert len(_id_routes()) > 40


def test_the_converter_accepts_exactly_the_database_range():
    converter = DatabaseIdConverter()
    assert converter.to_python(str(MAX_DB_ID)) == MAX_DB_ID
    with pytest.raises(ValueError, match="out of the database's id range"):
        converter.to_python(str(MAX_DB_ID + 1))
    assert re.fullmatch(converter.regex, BIG) is None
    assert resolve(f"/studies/{MAX_DB_ID}/").url_name == "study_detail"
    for too_big in (MAX_DB_ID + 1, BIG):
        with pytest.raises(Resolver404):
            resolve(f"/studies/{too_big}/")
    assert [is_db_id(v) for v in (0, True, MAX_DB_ID + 1, 1)] == [False, False, False, True]


def test_every_route_with_an_id_answers_404_for_an_oversized_one(owner_client, study, researcher):
    owned = make_owned_objects(study, researcher)
    checked = 0
    for name, route, ids in _id_routes():
        if name in entry_points.OBJECT_ROUTES:
            kwargs = entry_points.OBJECT_ROUTES[name](owned)
        elif name in entry_points.PUBLIC or _PARAM.findall(route) != [("id", "study_id")]:
            kwargs = {}
        else:
            kwargs = {"study_id": study.pk}
        for big_param in ids:

            def fill(match, big_param=big_param, kwargs=kwargs):
                param = match.group(2)
                if param == big_param:
                    return BIG
                return str(kwargs.get(param, 1))

            url = "/" + _PARAM.sub(fill, route)
            for method in ("get", "post"):
                response = getattr(owner_client, method)(url)
                assert response.status_code == 404, f"{method.upper()} {url} -> {response}"
                checked += 1
    assert checked > 80


def test_bulk_moderation_refuses_oversized_ids_and_changes_nothing(owner_client, study):
    statement = StatementFactory(study=study, moderation=Moderation.PENDING)
    response = owner_client.post(
        reverse("api_statements_moderate", args=[study.pk]),
        {"ids": [statement.pk, int(BIG)], "moderation": Moderation.APPROVED},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "ids" in response.json()
    statement.refresh_from_db()
    assert statement.moderation == Moderation.PENDING


def test_moderation_page_refuses_oversized_ids(owner_client, study):
    statement = StatementFactory(study=study, moderation=Moderation.PENDING)
    response = owner_client.post(
        reverse("moderation_queue", args=[study.pk]),
        {"action": f"approved:{BIG}"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Statement ids must be whole numbers" in response.content.decode()
    assert ValueStatement.objects.get(pk=statement.pk).moderation == Moderation.PENDING


def test_pair_actions_refuse_an_oversized_pair_id(client, annotator, study):
    client.force_login(annotator)
    for name in ("api_annotate_skip", "api_annotate_flag"):
        response = client.post(
            reverse(name, args=[study.pk]), {"pair_id": int(BIG)}, content_type="application/json"
        )
        assert response.status_code == 400, (name, response.content)
        assert "pair_id" in response.json()


def test_run_creation_refuses_an_oversized_dataset_id(owner_client, study):
    response = owner_client.post(
        reverse("api_runs", args=[study.pk]),
        {"method": "icai", "dataset_ids": [int(BIG)]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "dataset_ids" in response.json()


def test_evaluation_form_refuses_an_oversized_constitution_id(owner_client, study):
    response = owner_client.post(
        reverse("evaluation_new", args=[study.pk]), {"constitutions": [BIG], "split": "test"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["constitutions"]


def test_export_of_an_oversized_dataset_id_is_404(owner_client, study):
    for name in ("study_export_pairs", "api_export_pairs"):
        response = owner_client.get(reverse(name, args=[study.pk]), {"dataset": BIG})
        assert response.status_code == 404, name
