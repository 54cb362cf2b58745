"""Real browser: a researcher reads the study dashboard and moderates statements in bulk."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Role, ValueStatement
from tests.factories import (
    AnnotationFactory,
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    StatementFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "another-strong-pass-4"


def test_researcher_sees_the_dashboard_and_approves_statements_in_bulk(browser_page, screenshot):
    study = StudyFactory(name="Dashboard study", prolific_completion_code="DASH01")
    researcher = UserFactory(username="rosa", password=PASSWORD)
    MembershipFactory(user=researcher, study=study, role=Role.RESEARCHER)
    dataset = DatasetFactory(study=study, name="helpfulness", annotation_overlap=2)
    annotators = []
    for name in ("ann-a", "ann-b"):
        user = UserFactory(username=name)
        MembershipFactory(user=user, study=study, role=Role.ANNOTATOR)
        annotators.append(user)
    for i in range(4):
        pair = PairFactory(dataset=dataset)
        for j, user in enumerate(annotators):
            AnnotationFactory(
                pair=pair, annotator=user, preferred="a" if i or j else "b", duration_ms=3000 + j
            )
    statements = [
        StatementFactory(study=study, moderation="pending", text=f"Statement {i}: <em>be kind</em>")
        for i in range(3)
    ]

    page = browser_page
    page.goto(reverse("login"))
    page.get_by_label("Username").fill("rosa")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(reverse("study_detail", args=[study.pk]))
    page.get_by_role("heading", name="Annotation progress").wait_for()
    assert page.locator("#agreement-alpha").is_visible()
    assert "DASH01" in page.content()
    screenshot(page, "dashboard")

    page.get_by_role("link", name="Moderation (3 pending)").click()
    page.get_by_role("heading", name="Value statements: moderation").wait_for()
    assert page.get_by_text("Statement 0: <em>be kind</em>").is_visible()  # typed, not markup
    screenshot(page, "moderation")
    page.get_by_label("Select all on this page").check()
    page.get_by_role("button", name="Approve selected").click()
    page.get_by_text("3 statements approved.").wait_for()
    screenshot(page, "moderation-approved")
    assert set(ValueStatement.objects.values_list("moderation", flat=True)) == {"approved"}
    assert len(statements) == 3
