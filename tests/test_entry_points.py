"""Every page and API route refuses strangers (404) and sends anonymous users to login."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

import tests
from tests import entry_points

# Import every test module so their entry_points.register(...) calls run.
for mod in pkgutil.walk_packages(tests.__path__, "tests."):
    if mod.name.endswith(("owned_objects",)):
        importlib.import_module(mod.name)

try:
    from tests.owned_objects import make_owned_objects
except ImportError:  # pragma: no cover - owned objects module is optional early on

    def make_owned_objects(study, researcher):
        return {"study": study}


def _named_routes():
    out = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace == "admin" or "admin" in str(p.pattern):
                    continue
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                route = prefix + str(p.pattern)
                params = re.findall(r"<(?:\w+:)?(\w+)>", route)
                out.append((p.name, route, params))

    walk(get_resolver().url_patterns)
    return out


ROUTES = _named_routes()
# drf-spectacular/format suffix duplicates and admin are excluded above.
STUDY_ONLY = [(n, r) for n, r, params in ROUTES if params == ["study_id"]]
OTHER = [(n, r, params) for n, r, params in ROUTES if params and params != ["study_id"]]
NO_PARAMS = [n for n, r, params in ROUTES if not params]


def test_every_route_is_covered_by_an_access_test():
    uncovered = [
        n
        for n, _r, params in OTHER
        if n not in entry_points.OBJECT_ROUTES and n not in entry_points.PUBLIC
    ]
    uncovered += [
        n for n in NO_PARAMS if n not in entry_points.PUBLIC and n not in entry_points.PERSONAL
    ]
    assert not uncovered, (
        f"Routes without an access test (add them to tests/entry_points.py): {uncovered}"
    )


def _kwargs_for(name, params, owned):
    if name in entry_points.OBJECT_ROUTES:
        return entry_points.OBJECT_ROUTES[name](owned)
    return {"study_id": owned["study"].pk}


def _protected_routes():
    routes = [(n, ["study_id"]) for n, _r in STUDY_ONLY if n not in entry_points.PUBLIC]
    routes += [(n, params) for n, _r, params in OTHER if n in entry_points.OBJECT_ROUTES]
    return routes


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "params"), _protected_routes(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_stranger_gets_404(client, study, researcher, other_researcher, name, params):
    owned = make_owned_objects(study, researcher)
    url = reverse(name, kwargs=_kwargs_for(name, params, owned))
    client.force_login(other_researcher)
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        assert response.status_code in (404, 405), (
            f"{method.upper()} {url} -> {response.status_code}"
        )
    assert client.get(url).status_code in (404, 405)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "params"), _protected_routes(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_anonymous_is_sent_to_login(client, study, researcher, name, params):
    owned = make_owned_objects(study, researcher)
    url = reverse(name, kwargs=_kwargs_for(name, params, owned))
    response = client.get(url)
    if url.startswith("/api/"):
        assert response.status_code in (401, 403, 405)
    else:
        assert response.status_code in (302, 405)
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(entry_points.PERSONAL))
def test_personal_routes_need_login(client, name):
    url = reverse(name)
    response = client.get(url)
    if url.startswith("/api/"):
        assert response.status_code in (401, 403)
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_owner_can_open_study_pages(owner_client, study):
    for name, _r in STUDY_ONLY:
        if name in entry_points.PUBLIC:
            continue
        response = owner_client.get(reverse(name, kwargs={"study_id": study.pk}))
        assert response.status_code in (200, 302, 405), f"{name} -> {response.status_code}"
