"""Real browser: an annotator logs in, labels three pairs with the keyboard only, and
reloads mid-item without losing the draft; the screen stacks the responses on a phone."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Annotation, PairAssignment, Role
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


@pytest.fixture
def setup():
    study = StudyFactory(name="Helpfulness study", reason_min_length=15)
    dataset = DatasetFactory(study=study, name="e2e", annotation_overlap=1)
    pairs = [
        PairFactory(
            dataset=dataset,
            external_id="chat",
            prompt="fallback",
            prompt_messages=[
                {"role": "user", "content": "How do I reverse a list in **Python**?"},
                {"role": "assistant", "content": "Do you want a copy or in place?"},
                {"role": "user", "content": "A copy, please."},
            ],
            response_a="Use slicing:\n\n```python\nitems[::-1]\n```",
            response_b="Call `items.reverse()` <script>window.pwned = 1</script>",
        ),
        PairFactory(
            dataset=dataset,
            external_id="tides",
            prompt="Explain tides to a child.",
            response_a="The Moon pulls the sea a little, so it goes up and down.",
            response_b="Tidal forces arise from gravitational gradients.",
        ),
        PairFactory(
            dataset=dataset,
            external_id="haiku",
            prompt="Write a haiku about rain.",
            response_a="Rain on the tin roof / counting the seconds between / thunder and my breath",
            response_b="Soft rain on the leaves / the garden drinks quietly / evening settles in",
        ),
    ]
    user = UserFactory(username="ada", password=PASSWORD)
    MembershipFactory(user=user, study=study, role=Role.ANNOTATOR)
    return study, pairs, user


def current_pair_id(page) -> int:
    return int(page.locator("#annotate-form").get_attribute("data-pair-id"))


def wait_ready(page):
    page.wait_for_selector("#annotate-form[data-ready='1'], #done-heading")


def test_annotator_labels_three_pairs_with_the_keyboard_and_survives_a_reload(
    browser_page, live_server, setup, screenshot
):
    study, pairs, user = setup
    page = browser_page
    annotate_url = reverse("annotate", args=[study.pk])

    page.goto(f"{reverse('login')}?next={annotate_url}")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "login")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{annotate_url}")
    wait_ready(page)

    # The shortcuts are shown on screen; scripts in the data did not run.
    assert page.get_by_text("Ctrl+Enter submit", exact=False).is_visible()
    assert page.evaluate("window.pwned") is None
    assert page.locator(".turn").count() == 3
    assert page.locator("code.language-python").count() == 1
    screenshot(page, "pair-1")

    typed = {}
    # Pair 1: Ctrl+Enter before choosing shows a message and sends nothing.
    first = current_pair_id(page)
    page.keyboard.press("Control+Enter")
    assert "Choose which response is better" in page.locator("#form-error").inner_text()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("1")
    assert page.locator("#choice-first").is_checked()
    # The focus moves to the reason (waited for: it is set by the page script).
    page.wait_for_function(
        "document.activeElement && document.activeElement.id === 'reason'", timeout=5000
    )
    typed[first] = ("first", "Slicing makes a copy, which is what was asked for.")
    page.keyboard.type(typed[first][1])
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    wait_ready(page)

    # Pair 2: half a reason, then a reload: choice and text come back.
    second = current_pair_id(page)
    assert second != first
    page.keyboard.press("2")
    page.keyboard.type("Too technical for a child, ")
    page.wait_for_function(
        "key => (JSON.parse(localStorage.getItem(key) || '{}').reason || '').length > 20",
        arg=page.locator("#annotate-form").get_attribute("data-draft-key"),
    )
    screenshot(page, "pair-2-draft")
    page.reload()
    wait_ready(page)
    assert current_pair_id(page) == second  # the lease survives the reload
    assert page.locator("#reason").input_value() == "Too technical for a child, "
    assert page.locator("#choice-second").is_checked()
    assert "restored" in page.locator("#form-status").inner_text()
    screenshot(page, "pair-2-restored")
    page.locator("#reason").focus()
    page.keyboard.press("End")
    page.keyboard.type("the second one is still accurate though.")
    typed[second] = (
        "second",
        "Too technical for a child, the second one is still accurate though.",
    )
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    wait_ready(page)

    # Pair 3: Escape leaves the text box, then 0 for a tie.
    third = current_pair_id(page)
    page.locator("#reason").focus()
    page.keyboard.type("Both scan well")
    page.keyboard.press("Escape")
    page.keyboard.press("0")
    assert page.locator("#choice-tie").is_checked()
    assert page.locator("#reason").input_value() == "Both scan well"  # "0" was not typed
    page.keyboard.press("End")
    page.keyboard.type(" and both are vivid.")
    typed[third] = ("tie", "Both scan well and both are vivid.")
    screenshot(page, "pair-3")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    page.get_by_role("heading", name="Nothing left to label for you").wait_for()
    screenshot(page, "done")

    annotations = {a.pair_id: a for a in Annotation.objects.filter(annotator=user)}
    assert set(annotations) == {p.pk for p in pairs}
    for pair_id, (screen_choice, reason) in typed.items():
        a = annotations[pair_id]
        swapped = PairAssignment.objects.get(pair_id=pair_id, annotator=user).shown_swapped
        expected = {
            "first": "b" if swapped else "a",
            "second": "a" if swapped else "b",
            "tie": "tie",
        }[screen_choice]
        assert a.preferred == expected
        assert a.reason == reason
        assert a.shown_swapped is swapped
        assert a.duration_ms is not None
        assert a.duration_ms > 0
    # Drafts are cleared once submitted.
    assert (
        page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('gcai:draft')).length")
        == 0
    )


def test_responses_stack_on_a_narrow_screen(chromium, live_server, setup, screenshot):
    study, _pairs, _user = setup
    context = browser_context(chromium, live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(reverse("login"))
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(reverse("annotate", args=[study.pk]))
    wait_ready(page)
    first = page.locator("#response-first").bounding_box()
    second = page.locator("#response-second").bounding_box()
    assert second["y"] >= first["y"] + first["height"]  # below, not beside
    screenshot(page, "narrow")
    context.close()
