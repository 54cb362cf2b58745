"""Real browser: a researcher sets annotations per pair (K) from the dashboard and
assigns a train/test split from the link on the Build page, never opening the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Dataset, PreferencePair, Role, Split
from tests.e2e.conftest import browser_context
from tests.factories import (
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def setup():
    study = StudyFactory(name="Settings study")
    user = UserFactory(username="kay")
    MembershipFactory(user=user, study=study, role=Role.RESEARCHER)
    dataset = DatasetFactory(study=study, name="imported slice", annotation_overlap=1)
    for i in range(20):
        PairFactory(
            dataset=dataset, source_preference="a" if i % 4 else "b", split=Split.UNASSIGNED
        )
    return study, dataset


def _login(page):
    page.goto(reverse("login"))
    page.get_by_label("Username").fill("kay")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_researcher_sets_k_and_a_split_from_the_ui(browser_page, live_server, setup, screenshot):
    study, dataset = setup
    page = browser_page
    _login(page)
    page.goto(reverse("study_detail", args=[study.pk]))
    page.get_by_role("link", name="Change K for imported slice").click()
    page.get_by_role("heading", name="Dataset “imported slice”").wait_for()
    assert page.get_by_text("How many different annotators label each pair").is_visible()
    page.get_by_label("Annotations per pair (K)").fill("3")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Dataset “imported slice” saved.").wait_for()
    assert Dataset.objects.get(pk=dataset.pk).annotation_overlap == 3
    page.goto(reverse("study_detail", args=[study.pk]))
    assert "K=3" in page.locator("main").inner_text()

    # The Build page says what is missing and links straight to the split form.
    page.goto(reverse("study_constitutions", args=[study.pk]))
    note = page.locator("#split-needed")
    assert "imported slice" in note.inner_text()
    note.get_by_role("link", name="assign a train/test split").click()
    page.get_by_role("heading", name="Train/test split").wait_for()
    page.get_by_label("Test fraction").fill("0.25")
    screenshot(page, "dataset-settings")
    page.get_by_role("button", name="Assign split").click()
    page.get_by_text("imported slice: 15 pairs to train and 5 to test.").wait_for()
    counts = page.locator("#split-counts").inner_text().lower()
    assert "train\t15" in counts
    assert "test\t5" in counts
    assert PreferencePair.objects.filter(dataset=dataset, split=Split.TEST).count() == 5
    page.goto(reverse("study_constitutions", args=[study.pk]))
    assert page.locator("#split-needed").count() == 0


def test_dataset_settings_fit_a_phone(chromium, live_server, setup, screenshot):
    study, dataset = setup
    context = browser_context(chromium, live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    _login(page)
    page.goto(reverse("study_dataset_settings", args=[study.pk, dataset.pk]))
    page.get_by_role("heading", name="Train/test split").wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    screenshot(page, "phone")
    context.close()
