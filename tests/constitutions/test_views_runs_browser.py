"""The run page in a real browser: it follows a running run by polling, reloads once when
the run stops, and then stops polling (no reload loop)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from gcai.constitutions import selectors
from gcai.constitutions.models import PipelineRun, StageArtifact
from gcai.jobs.models import JobStatus
from tests.constitutions.constitutions_owned_objects import build_icai_run, make_study_input

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, client, researcher, monkeypatch):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    client.force_login(researcher)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(base_url=live_server.url)
        local = re.compile(rf"^{re.escape(live_server.url)}(/|$)")
        context.route(
            "**/*",
            lambda route: route.continue_() if local.match(route.request.url) else route.abort(),
        )
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def test_run_page_follows_progress_then_reloads_once_and_stops_polling(page, study):
    run = build_icai_run(
        study,
        make_study_input(study),
        status=JobStatus.RUNNING,
        stage="vote",
        progress_done=1,
        progress_total=4,
    )
    names = [s.name for s in selectors.run_stages_list(run=run)]
    at = names.index("vote")
    vote_output = StageArtifact.objects.get(run=run, stage="vote", batch=-1).data
    StageArtifact.objects.filter(run=run, stage__in=names[at:], batch=-1).delete()
    status_calls: list[str] = []
    page.on("request", lambda r: status_calls.append(r.url) if "/status/" in r.url else None)
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))

    page.goto(reverse("run_detail", args=[study.pk, run.pk]))
    assert page.text_content("#run-stage").strip() == "Test principles on training pairs"
    assert page.text_content("#run-overall") == f"Stage {at + 1} of {len(names)}"
    assert page.text_content("#stage-state-vote") == "running"
    assert page.text_content("#stage-state-filter") == "not yet"

    # The vote stage finishes and the filter stage starts: the page follows without a reload.
    StageArtifact.objects.create(run=run, stage="vote", batch=-1, data=vote_output)
    PipelineRun.objects.filter(pk=run.pk).update(
        stage="filter", progress_done=3, progress_total=4, llm_calls=50
    )
    page.wait_for_function(
        "document.getElementById('run-stage').textContent.includes('Filter, rank and cap')"
    )
    assert page.text_content("#run-overall") == f"Stage {names.index('filter') + 1} of {len(names)}"
    assert page.text_content("#stage-state-vote") == "stored"
    assert page.text_content("#stage-state-filter") == "running"
    page.screenshot(path="/tmp/h16b-run-live.png", full_page=False)
    assert page.text_content("#run-progress-percent") == "75"
    assert page.text_content("#usage-calls") == "50"
    assert page.get_attribute("#run-progress", "aria-valuenow") == "75"

    PipelineRun.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED, stage="done")
    page.wait_for_function("document.getElementById('run-status').dataset.active === 'false'")
    assert "Succeeded" in page.text_content("#run-status-badge")
    calls_after_reload = len(status_calls)
    page.wait_for_timeout(5000)  # two and a half polling intervals
    assert len(status_calls) == calls_after_reload
    assert len(loads) == 2  # the first load and exactly one reload


def test_cancel_button_works_from_the_keyboard(page, study):
    run = build_icai_run(
        study, make_study_input(study), status=JobStatus.QUEUED, stage="", progress_total=0
    )
    page.goto(reverse("run_detail", args=[study.pk, run.pk]))
    page.focus("text=Cancel run")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Cancelling: running batches stop")
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
