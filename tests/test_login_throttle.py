"""Failed log-ins are throttled (django-axes) on the login page, the admin login and the
API token endpoint, per user name and address."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 3


@pytest.fixture(autouse=True)
def _low_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


@pytest.fixture
def person(db):
    return UserFactory(username="maria", is_staff=True, is_superuser=True)


def _fail(client, url, username="maria", n=LIMIT, **kw):
    return [
        client.post(url, {"username": username, "password": "wrong-password"}, **kw).status_code
        for _ in range(n)
    ]


@pytest.mark.parametrize("route", ["login", "admin:login"])
def test_the_login_pages_lock_after_repeated_failures(client, person, route):
    url = reverse(route)
    assert _fail(client, url, n=LIMIT - 1) == [200] * (LIMIT - 1)
    locked = client.post(url, {"username": "maria", "password": "wrong-password"})
    assert locked.status_code == 429
    assert "Too many failed log-ins" in locked.content.decode()
    # Even the right password is refused while locked.
    right = client.post(url, {"username": "maria", "password": "pw-for-tests-1"})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_another_user_from_the_same_address_is_not_locked_out(client, person):
    UserFactory(username="li")
    _fail(client, reverse("login"))
    ok = client.post(reverse("login"), {"username": "li", "password": "pw-for-tests-1"})
    assert ok.status_code == 302


def test_a_success_before_the_limit_resets_the_count(client, person):
    url = reverse("login")
    _fail(client, url, n=LIMIT - 1)
    assert client.post(url, {"username": "maria", "password": "pw-for-tests-1"}).status_code == 302
    client.logout()
    assert _fail(client, url, n=LIMIT - 1) == [200] * (LIMIT - 1)


def test_the_token_endpoint_locks_after_repeated_failures(client, person):
    url = reverse("api_token")
    assert _fail(client, url, n=LIMIT - 1) == [400] * (LIMIT - 1)
    assert _fail(client, url, n=1) == [429]
    right = client.post(url, {"username": "maria", "password": "pw-for-tests-1"})
    assert right.status_code == 429
    assert b'"token"' not in right.content


def test_the_token_endpoint_still_issues_tokens(client, person):
    response = client.post(
        reverse("api_token"), {"username": "maria", "password": "pw-for-tests-1"}
    )
    assert response.status_code == 200
    assert len(response.json()["token"]) == 40
