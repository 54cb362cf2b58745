"""Real browser: the pair screen never names a model, a source or a side (not in the
text, not in attributes, not in what the API answers), confirms every save, and on a
touch phone hides keyboard hints and keeps the judgement within the first 1,000 px."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotations.models import Role
from tests.e2e.conftest import browser_context
from tests.factories import (
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"
SECRETS = ("Mistral", "gpt-4", "alpacaeval", "shown_swapped", "preferred", "external_id")
LONG = "\n\n".join(
    f"Paragraph {i}: the tide rises and falls twice a day because the Moon pulls the "
    "oceans towards it while the Earth turns underneath."
    for i in range(14)
)


@pytest.fixture
def setup():
    study = StudyFactory(name="Blind study", reason_min_length=15)
    dataset = DatasetFactory(study=study, name="alpacaeval gpt-4 vs Mistral", annotation_overlap=1)
    for i in range(2):
        PairFactory(
            dataset=dataset,
            external_id=f"Mistral-7B-Instruct-v0.2-{i}",
            prompt=f"Explain tides to a child ({i}). " + LONG,
            response_a="Short answer about the Moon and the sea.",
            response_b=LONG,
            metadata={"generator_a": "gpt-4-turbo", "generator_b": "Mistral-7B-Instruct-v0.2"},
        )
    user = UserFactory(username="ada", password=PASSWORD)
    MembershipFactory(user=user, study=study, role=Role.ANNOTATOR)
    return study


def _login(page, study):
    page.goto(reverse("login"))
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(reverse("annotate", args=[study.pk]))
    page.wait_for_selector("#annotate-form[data-ready='1']")


def _assert_blind(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_no_model_or_source_name_reaches_the_annotator(
    browser_page, live_server, setup, screenshot
):
    page = browser_page
    _login(page, setup)
    _assert_blind(page.content())  # text, attributes and data-* alike
    assert page.get_by_role("heading", name="Prompt", exact=True).is_visible()
    # What the pair screen's own API answers is blind too.
    api_next = page.evaluate(
        """url => fetch(url, {method: 'POST', credentials: 'same-origin',
             headers: {'X-CSRFToken': document.querySelector('[name=csrfmiddlewaretoken]').value}})
           .then(r => r.text())""",
        reverse("api_annotate_next", args=[setup.pk]),
    )
    _assert_blind(api_next)
    assert json.loads(api_next)["pair"]["prompt"].startswith("Explain tides")

    replies: list[str] = []

    def keep_reply(route):
        response = route.fetch()
        replies.append(response.text())
        route.fulfill(response=response)

    page.route("**/submit/", keep_reply)
    page.locator("#choice-first").check()
    page.locator("#reason").fill("The first one is short and a child can follow it.")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    assert json.loads(replies[0])["screen_choice"] == "first"
    _assert_blind(replies[0])
    page.wait_for_selector("#annotate-form[data-ready='1']")
    banner = page.locator("#saved-banner")
    assert banner.is_visible()
    assert "Saved" in banner.inner_text()
    _assert_blind(page.content())
    assert page.get_by_role("link", name="Stop for now").is_visible()
    screenshot(page, "after-submit")


def test_on_a_touch_phone_the_judgement_is_near_and_no_key_hints_show(
    chromium, live_server, setup, screenshot
):
    context = browser_context(
        chromium,
        live_server.url,
        viewport={"width": 390, "height": 844},
        has_touch=True,
        is_mobile=True,
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    _login(page, setup)
    decision = page.locator(".decision").bounding_box()
    assert decision["y"] < 1000, decision
    assert not page.locator("#shortcuts").is_visible()
    assert not page.locator(".choice kbd").first.is_visible()
    screenshot(page, "phone")
    # The clipped response (first or second: the order is random) opens in full on request.
    long_response = page.locator(".response.is-long")
    assert long_response.count() == 1
    clipped = long_response.bounding_box()["height"]
    long_response.get_by_role("button", name="Show all").click()
    assert long_response.bounding_box()["height"] > clipped + 200
    context.close()
