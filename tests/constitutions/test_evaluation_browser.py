"""Real browser: a researcher starts an evaluation with its baselines, watches the progress
update without reloading, and reads the comparison when it is done."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from annotations.models import Role
from gcai.constitutions import evaluations
from gcai.constitutions.models import Evaluation
from tests.constitutions.evaluation_support import (
    PLEASE,
    make_constitution,
    polite_pairs,
    serve_judge,
)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, browser_context
from tests.factories import MembershipFactory, StudyFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "evaluation-pass-7"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "e2e" / "screenshots"


@pytest.fixture
def judge_server(settings):
    yield from serve_judge(settings)


@pytest.fixture
def page(monkeypatch, live_server):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run e2e")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser_context(browser, live_server.url)
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()
        browser.close()


@pytest.fixture
def background_runner(monkeypatch):
    """Stands in for the worker: the started evaluations run in a thread of this process,
    one after the other, so the page has progress to show."""
    threads: list[threading.Thread] = []

    def start(*, evaluation):
        def work():
            try:
                evaluations.evaluation_run_inline(evaluation=evaluation)
            finally:
                connection.close()

        previous = threads[-1] if threads else None

        def after_previous():
            if previous is not None:
                previous.join()
            work()

        thread = threading.Thread(target=after_previous, daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(evaluations, "evaluation_start", start)
    yield
    for thread in threads:
        thread.join(timeout=60)


def test_start_watch_and_compare(page, judge_server, background_runner):
    judge_server.latency = 0.02  # slow enough for the progress to be seen moving
    study = StudyFactory(name="Evaluated study")
    researcher = UserFactory(username="eva", password=PASSWORD)
    MembershipFactory(user=researcher, study=study, role=Role.RESEARCHER)
    polite_pairs(study, 40)
    make_constitution(study, [PLEASE], title="Polite constitution")

    page.goto(reverse("login"))
    page.get_by_label("Username").fill("eva")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(reverse("evaluation_new", args=[study.pk]))
    page.get_by_text("40 labelled test pairs").wait_for()
    page.get_by_label("Polite constitution v1", exact=False).check()
    page.get_by_label("At most this many pairs").fill("30")
    page.get_by_label("Pairs per batch").fill("5")
    page.get_by_role("button", name="Start evaluation").click()

    page.get_by_role("heading", name="Comparison").wait_for()
    assert page.get_by_text("Started 3 evaluations on 30 pairs.").is_visible()
    # The page updates itself, then reloads with the results once every evaluation ended.
    page.get_by_role("heading", name="Paired differences in accuracy").wait_for(timeout=60_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "evaluation-compare.png"), full_page=True)
    table = page.locator("table").first.inner_text()
    assert "Polite constitution v1" in table
    assert "Baseline: no constitution" in table
    assert "100.0%" in table
    assert Evaluation.objects.filter(status="succeeded").count() == 3

    page.get_by_role("link", name="Polite constitution v1", exact=False).first.click()
    page.get_by_role("heading", name="Confusion table").wait_for()
    assert page.locator("svg.chart").count() == 4
    page.screenshot(path=str(SCREENSHOTS / "evaluation-report.png"), full_page=True)
