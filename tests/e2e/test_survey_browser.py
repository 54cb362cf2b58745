"""Real browser: two Prolific participants take a blinded survey; one passes the
attention check and is sent back with the completion code, the other fails it and is
sent back with the screen-out code; the researcher's results page counts both.

Chromium (Debian package) driven by Playwright against pytest-django's live server
(fixtures in tests/e2e/conftest.py). Prolific is never reached: requests to it are
answered by a stub, and any other non-local request is aborted.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from annotations.models import Role
from surveys.models import ResponseStatus, SurveyResponse
from tests.e2e.conftest import browser_context
from tests.factories import MembershipFactory, StudyFactory, UserFactory
from tests.surveys.factories import open_survey

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROLIFIC = "https://app.prolific.com/"


def _participant_page(chromium, base_url: str, landed: list[str]):
    """A fresh browser (own cookies) that stays local; Prolific answers with a stub."""
    context = browser_context(chromium, base_url)
    page = context.new_page()
    page.set_default_timeout(15_000)

    def prolific(route):
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Prolific stub</h1>")

    page.route(f"{PROLIFIC}**", prolific)
    return context, page


def _take_survey(page, screenshot, *, entry_url: str, pid: str, pass_check: bool) -> None:
    page.goto(f"{entry_url}?PROLIFIC_PID={pid}&STUDY_ID=E2ESTUDY&SESSION_ID=E2E{pid}")
    page.get_by_role("button", name="I agree and want to take part").click()
    page.get_by_role("heading", name="Instructions").wait_for()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Compare the two constitutions").wait_for()
    assert page.get_by_role("heading", name="Constitution 1").is_visible()
    assert page.get_by_role("heading", name="Constitution 2").is_visible()

    questions = page.locator("fieldset.question")
    n = questions.count()
    assert n == 6
    for i in range(n):
        question = questions.nth(i)
        legend = question.locator("legend").inner_text()
        if "attention" in legend.lower() or "reading carefully" in legend:
            # Instructed item: "please select Constitution 2".
            pick = "Constitution 2" if pass_check else "Constitution 1"
        else:
            pick = "Constitution 1" if i % 2 == 0 else "Both equally"
        question.get_by_label(pick, exact=True).check()
    questions.nth(0).get_by_label("Comment (optional)").fill("Clearer about harms.")
    screenshot(page, f"{pid}-questions")
    page.get_by_role("button", name="Submit answers").click()

    if pass_check:
        page.get_by_role("heading", name="Rate each principle").wait_for()
        ratings = page.locator("fieldset.question")
        for i in range(ratings.count()):
            ratings.nth(i).get_by_label("Agree", exact=True).check()
        screenshot(page, f"{pid}-ratings")
        page.get_by_role("button", name="Finish").click()
        page.get_by_role("heading", name="Thank you!").wait_for()
    else:
        page.get_by_role("heading", name="The survey has ended for you").wait_for()
        assert "attention check" in page.locator("#screened-out").inner_text()
    # The code is on the page as text before anyone is sent back.
    assert page.locator("#completion-code").inner_text().strip()
    page.get_by_role("link", name="Return to Prolific").click()
    page.wait_for_url(re.compile(r"^https://app\.prolific\.com/"))


def test_participants_complete_or_are_screened_out_and_results_count_both(
    live_server, chromium, screenshot
):
    study = StudyFactory(name="Browser study")
    researcher = UserFactory(username="e2e-owner")
    MembershipFactory(user=researcher, study=study, role=Role.RESEARCHER)
    survey = open_survey(study=study, user=researcher, rate_principles=True)
    entry_url = live_server.url + reverse("survey_participant_enter", args=[survey.entry_token])

    # Participant 1 answers every question and passes the attention check.
    landed: list[str] = []
    context, page = _participant_page(chromium, live_server.url, landed)
    _take_survey(page, screenshot, entry_url=entry_url, pid="E2EPASS01", pass_check=True)
    assert parse_qs(urlparse(page.url).query) == {"cc": [survey.completion_code]}
    assert landed[-1] == page.url
    context.close()

    # Participant 2 fails the attention check.
    landed_2: list[str] = []
    context, page = _participant_page(chromium, live_server.url, landed_2)
    _take_survey(page, screenshot, entry_url=entry_url, pid="E2EFAIL01", pass_check=False)
    assert parse_qs(urlparse(page.url).query) == {"cc": [survey.screenout_code]}
    assert landed_2[-1] == page.url
    context.close()

    passed = SurveyResponse.objects.get(survey=survey, participant__prolific_pid="E2EPASS01")
    failed = SurveyResponse.objects.get(survey=survey, participant__prolific_pid="E2EFAIL01")
    assert (passed.status, passed.attention_passed) == (ResponseStatus.COMPLETED, True)
    assert (failed.status, failed.attention_passed) == (ResponseStatus.SCREENED_OUT, False)
    assert passed.ratings.count() == 5
    assert set(passed.timings) == {"consent", "instructions", "questions", "ratings"}
    assert passed.answers.get(question__key="moral_grounding").comment == "Clearer about harms."

    # The researcher logs in and reads the live results.
    context = browser_context(chromium, live_server.url)
    page = context.new_page()
    results_path = reverse("survey_results", args=[study.pk, survey.pk])
    page.goto(live_server.url + results_path)
    page.get_by_label("Username").fill("e2e-owner")
    page.get_by_label("Password").fill("pw-for-tests-1")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Results").wait_for()
    assert page.locator("#count-completed .num").inner_text() == "1"
    assert page.locator("#count-screened-out .num").inner_text() == "1"
    assert page.locator("#count-in-progress .num").inner_text() == "0"
    # Counts per question come from the one completed response only.
    first_row = page.locator("#question-results tbody tr").first
    cells = [c.inner_text() for c in first_row.locator("td").all()]
    assert sum(int(c) for c in cells[1:5]) == 1
    assert page.locator("svg.survey-chart").first.is_visible()
    assert screenshot(page, "results").exists()
    context.close()
