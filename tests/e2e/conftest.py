"""Real-browser fixtures: Debian's chromium driven by Playwright's sync API against
pytest-django's live server on 127.0.0.1.

Nothing leaves the machine: every request that is not for the live server is aborted,
unless a test routes it to a stub first (Prolific's completion URL, for instance).
Screenshots of each screen go to tests/e2e/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def chromium(monkeypatch):
    """One browser per test. Not per session: while Playwright's sync API is active it
    runs an event loop in this thread, which would trip Django's async guard in every
    later test."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make browser) to run e2e")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # The ORM calls a test makes between browser steps are ordinary synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium, live_server):
    """A fresh browser context (own cookies and storage) whose requests stay local."""
    context = browser_context(chromium, live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def browser_context(chromium, base_url: str, **options):
    context = chromium.new_context(
        base_url=base_url,
        viewport=options.pop("viewport", {"width": 1280, "height": 900}),
        **options,
    )
    local = re.compile(rf"^{re.escape(base_url)}(/|$)")

    def only_local(route):
        if local.match(route.request.url):
            route.continue_()
        else:
            route.abort()

    # Page-level routes registered by a test take precedence over this one.
    context.route("**/*", only_local)
    return context


@pytest.fixture
def screenshot(request):
    """screenshot(page, "name") saves tests/e2e/screenshots/<test>-NN-name.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    counter = iter(range(1, 100))
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{test}-{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
