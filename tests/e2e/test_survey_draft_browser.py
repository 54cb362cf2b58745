"""Real browser: a survey participant's answers survive a reload, a partial submit
shows a summary of what is missing at the top, every page is announced up front, and
on a phone either constitution reopens over the questions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Role
from surveys.models import SurveyResponse
from tests.e2e.conftest import browser_context
from tests.factories import MembershipFactory, StudyFactory, UserFactory
from tests.surveys.factories import open_survey

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def survey():
    study = StudyFactory(name="Draft study")
    researcher = UserFactory(username="draft-owner")
    MembershipFactory(user=researcher, study=study, role=Role.RESEARCHER)
    return open_survey(study=study, user=researcher, rate_principles=True)


def _start(page, survey, pid):
    entry = reverse("survey_participant_enter", args=[survey.entry_token])
    page.goto(f"{entry}?PROLIFIC_PID={pid}&STUDY_ID=S&SESSION_ID=X{pid}")
    assert page.locator(".steps").get_by_text("Step 1 of 5").is_visible()
    page.get_by_role("button", name="I agree and want to take part").click()
    page.get_by_role("heading", name="Instructions").wait_for()


def test_survey_answers_survive_a_reload_and_a_partial_submit_is_summarised(
    chromium, live_server, survey, screenshot
):
    context = browser_context(chromium, live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    _start(page, survey, "DRAFT01")
    # The instructions announce both pages, the ratings page included.
    ahead = page.locator("#pages-ahead").inner_text()
    assert "6 questions" in ahead
    assert "rate each of the" in ahead
    screenshot(page, "instructions")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Compare the two constitutions").wait_for()
    assert page.locator(".steps [aria-current=step]").inner_text().strip().endswith("6 questions")

    questions = page.locator("fieldset.question")
    questions.nth(0).get_by_label("Constitution 1", exact=True).check()
    questions.nth(1).get_by_label("Both equally", exact=True).check()
    questions.nth(0).get_by_label("Comment (optional)").fill("Clearer about harms.")
    page.reload()
    page.get_by_role("heading", name="Compare the two constitutions").wait_for()
    questions = page.locator("fieldset.question")
    assert questions.nth(0).get_by_label("Constitution 1", exact=True).is_checked()
    assert questions.nth(1).get_by_label("Both equally", exact=True).is_checked()
    assert questions.nth(0).get_by_label("Comment (optional)").input_value() == (
        "Clearer about harms."
    )
    assert page.get_by_text("Your earlier answers on this page were restored.").is_visible()

    # A partial submit: the summary at the top names the four unanswered questions,
    # takes the focus, and the two answers given are still there.
    page.get_by_role("button", name="Submit answers").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert "4 questions still need an answer" in summary.inner_text()
    assert summary.locator("a").count() == 4
    # The page moves the focus once it has loaded; wait for it (fails after 5 s if never).
    page.wait_for_function(
        "document.activeElement && document.activeElement.id === 'error-summary'", timeout=5000
    )
    assert (
        page.locator("fieldset.question")
        .nth(0)
        .get_by_label("Constitution 1", exact=True)
        .is_checked()
    )
    # The legend sits inside its box, below the top border.
    box = page.locator("fieldset.question").nth(2)
    assert box.locator("legend").bounding_box()["y"] > box.bounding_box()["y"] + 4
    screenshot(page, "error-summary")
    # The draft also survives a reload after the partial submit.
    page.goto(reverse("survey_participant_questions", args=[survey.entry_token]))
    page.get_by_role("heading", name="Compare the two constitutions").wait_for()
    assert (
        page.locator("fieldset.question")
        .nth(1)
        .get_by_label("Both equally", exact=True)
        .is_checked()
    )
    context.close()
    response = SurveyResponse.objects.get(survey=survey)
    assert not response.answers.exists()  # nothing half-saved on the server


def test_on_a_phone_either_constitution_reopens_over_the_questions(
    chromium, live_server, survey, screenshot
):
    context = browser_context(chromium, live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    _start(page, survey, "PHONE01")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Compare the two constitutions").wait_for()
    page.locator("fieldset.question").nth(4).scroll_into_view_if_needed()
    bar = page.locator("#reopen-bar")
    assert bar.is_visible()
    top = bar.bounding_box()["y"]
    assert 0 < top < 844  # on screen while answering
    screenshot(page, "phone-questions")
    page.screenshot(path="/tmp/h16b-survey-phone-viewport.png")
    bar.get_by_role("button", name="Constitution 2").click()
    sheet = page.locator("#sheet-2")
    assert sheet.is_visible()
    assert sheet.locator("li").count() > 0
    page.screenshot(path="/tmp/h16b-survey-phone-sheet.png")
    sheet.get_by_role("button", name="Back to questions").click()
    assert not sheet.is_visible()
    context.close()
