"""Real browser: a participant enters through a Prolific link, consents, writes value
statements (the page catches a too-short one first) and is sent back to Prolific with the
study's completion code. Prolific itself is never reached: a stub answers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from annotations.models import Participant, ValueStatement
from tests.factories import StudyFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PID = "60a1b2c3d4e5f60718293a4b"


def test_prolific_participant_consents_writes_statements_and_returns_with_the_code(
    browser_page, live_server, screenshot
):
    study = StudyFactory(
        name="What should AI value?",
        consent_text="We keep what you write under a pseudonym.\nYou may stop at any time.",
        value_questions=[
            "What should an AI assistant never do?",
            "What should it always do?",
        ],
        statements_min=1,
        statements_max=2,
        prolific_completion_code="E2ECODE7",
    )
    page = browser_page
    landed: list[str] = []

    def prolific_stub(route):
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Prolific (stub)</h1>")

    page.route("https://app.prolific.com/**", prolific_stub)

    entry = reverse("participant_entry", args=[study.entry_token])
    page.goto(f"{entry}?PROLIFIC_PID={PID}&STUDY_ID=S123&SESSION_ID=X456")
    page.get_by_role("heading", name="Before you start").wait_for()
    assert PID not in page.url  # the ids are not left in the address bar
    assert "You may stop at any time." in page.locator("#consent-text").inner_text()
    screenshot(page, "consent")
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Continue").click()

    page.get_by_role("heading", name="What values should AI systems hold?").wait_for()
    page.wait_for_selector("#statements-form[data-ready='1']")
    assert page.get_by_text("What should an AI assistant never do?").first.is_visible()
    screenshot(page, "statements")

    # Too short: the page says so before anything is sent.
    first = page.locator("#statement_0")
    first.fill("Be honest.")
    page.get_by_role("button", name="Submit my statements").click()
    error = page.locator("#statement_0_error")
    assert "at least 20 characters" in error.inner_text()
    assert first.get_attribute("aria-invalid") == "true"
    page.wait_for_function(
        "document.activeElement && document.activeElement.id === 'statement_0'", timeout=5000
    )
    assert not ValueStatement.objects.exists()
    screenshot(page, "statements-error")

    never = "It should never pretend to be a human or hide that it is an AI."
    always = "Always say when it is unsure, <b>even</b> if the answer sounds confident."
    first.fill(never)
    page.locator("#statement_1").fill(always)
    assert "characters" in page.locator("#statement_0_count").inner_text()
    page.get_by_role("button", name="Submit my statements").click()

    page.get_by_role("heading", name="Thank you: your answers were recorded").wait_for()
    assert always in page.locator("#participant-done").inner_text()  # shown as typed
    screenshot(page, "done")

    page.get_by_role("link", name="Return to Prolific to finish").click()
    page.wait_for_url("https://app.prolific.com/**")
    screenshot(page, "prolific")
    query = parse_qs(urlparse(page.url).query)
    assert page.url.startswith("https://app.prolific.com/submissions/complete?")
    assert query == {"cc": ["E2ECODE7"]}
    assert landed == ["https://app.prolific.com/submissions/complete?cc=E2ECODE7"]

    participant = Participant.objects.get()
    assert (participant.prolific_pid, participant.prolific_study_id) == (PID, "S123")
    assert participant.prolific_session_id == "X456"
    assert participant.consented_at is not None
    assert participant.completed_at is not None
    stored = list(ValueStatement.objects.order_by("id").values_list("question", "text"))
    assert stored == [
        ("What should an AI assistant never do?", never),
        ("What should it always do?", always),
    ]

    # Coming back through the same Prolific link resumes at the end; no duplicate.
    page.goto(f"{live_server.url}{entry}?PROLIFIC_PID={PID}&STUDY_ID=S123&SESSION_ID=X456")
    page.get_by_role("heading", name="Thank you: your answers were recorded").wait_for()
    assert Participant.objects.count() == 1
