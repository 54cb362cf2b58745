"""Real browser: the quality gate stops a constitution with a malformed principle from
being published until the researcher explicitly overrides it, and records who did."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Role
from gcai.constitutions.models import Constitution, ConstitutionPrinciple, Principle
from tests.factories import (
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"
GOOD = "Select the response that answers the question directly."
# What the embedded model once published: code-fence debris, not a sentence.
MALFORMED = "] } ```python 1. The person explained their judgement"


@pytest.fixture
def draft():
    study = StudyFactory(name="Gate study")
    user = UserFactory(username="gale")
    MembershipFactory(user=user, study=study, role=Role.RESEARCHER)
    dataset = DatasetFactory(study=study, name="evidence")
    constitution = Constitution.objects.create(study=study, title="Draft to check", method="gcai")
    for position, text in enumerate([GOOD, MALFORMED], 1):
        principle = Principle.objects.create(
            study=study, text=text, origin="contextual", rank=position
        )
        principle.supporting_pairs.set([PairFactory(dataset=dataset)])
        ConstitutionPrinciple.objects.create(
            constitution=constitution, principle=principle, position=position, text=text
        )
    return study, constitution


def _login(page):
    page.goto(reverse("login"))
    page.get_by_label("Username").fill("gale")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_quality_gate_blocks_a_malformed_principle_until_overridden(
    browser_page, live_server, draft, screenshot
):
    study, constitution = draft
    page = browser_page
    _login(page)
    page.goto(reverse("constitution_detail", args=[study.pk, constitution.pk]))

    # The flags are on the page before anyone tries to publish.
    flags = page.locator(".quality-flags")
    flags.wait_for()
    assert "Principle 2" in flags.inner_text()
    assert "Principle 1:" not in flags.inner_text()

    # Publishing without the override is refused and changes nothing.
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text("Not published: the quality check flagged 1 principle").wait_for()
    screenshot(page, "quality-gate-refused")
    constitution.refresh_from_db()
    assert not constitution.is_published
    assert not constitution.quality_override

    # "Publish anyway" goes ahead and the override is recorded with the researcher's name.
    page.get_by_label("Publish anyway").check()
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text("is published and now immutable").wait_for()
    constitution.refresh_from_db()
    assert constitution.is_published
    assert constitution.quality_override["username"] == "gale"
    assert [f["position"] for f in constitution.quality_override["flags"]] == [2]
    assert "quality override" in page.locator("main").inner_text()
