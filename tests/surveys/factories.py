"""Builders for surveys and the published constitutions they compare."""

from __future__ import annotations

from django.utils import timezone

from annotations.models import ValueStatement
from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    ConstitutionStatus,
    Method,
    Origin,
    PipelineRun,
    Principle,
)
from surveys import services

GCAI_TEXTS = [
    "Select the response that respects the dignity and autonomy of every person.",
    "Select the response that explains the reasons behind a refusal in plain words.",
    "Select the response that weighs the interests of everyone affected, not only the user.",
]
ICAI_TEXTS = [
    "Select the response that is more concise.",
    "Select the response that follows the instructions exactly.",
]


def published_constitution(
    *,
    study,
    method: str = Method.GCAI,
    title: str = "Grounded v1",
    texts: list[str] | None = None,
    pk: int | None = None,
    run_pk: int | None = None,
    principle_pk_start: int | None = None,
    item_pk_start: int | None = None,
) -> Constitution:
    """A published constitution made by a finished run of ``method``.

    Explicit primary keys let blinding tests look for distinctive ids in pages.
    Principles are added while it is a draft: published constitutions are immutable.
    """
    texts = texts if texts is not None else (GCAI_TEXTS if method == Method.GCAI else ICAI_TEXTS)
    run = PipelineRun.objects.create(
        pk=run_pk, study=study, method=method, status="succeeded", title=f"{title} run"
    )
    constitution = Constitution.objects.create(
        pk=pk, study=study, run=run, method=method, title=title
    )
    for i, text in enumerate(texts, start=1):
        principle = Principle.objects.create(
            pk=principle_pk_start + i if principle_pk_start else None,
            run=run,
            study=study,
            text=text,
            origin=Origin.GENERAL if method == Method.GCAI else Origin.ICAI,
        )
        # Evidence, so the quality gate lets the constitution reach participants.
        principle.supporting_statements.add(
            ValueStatement.objects.create(
                study=study, external_participant=f"p-{i}", text=f"I value {text.lower()}"
            )
        )
        ConstitutionPrinciple.objects.create(
            pk=item_pk_start + i if item_pk_start else None,
            constitution=constitution,
            principle=principle,
            position=i,
            text=text,
        )
    constitution.status = ConstitutionStatus.PUBLISHED
    constitution.published_at = timezone.now()
    constitution.save()
    return constitution


def open_survey(*, study, user=None, a=None, b=None, override=True, **fields):
    """An open survey comparing a GCAI (A) and an ICAI (B) constitution of ``study``.

    Opens past the quality gate by default: callers pass constitutions built for what
    they test (formula-leading text, look-alike letters), not for the gate, which has
    its own tests (tests/surveys/test_services.py, tests/core/test_quality.py)."""
    a = a or published_constitution(study=study, method=Method.GCAI, title="Grounded v1")
    b = b or published_constitution(study=study, method=Method.ICAI, title="Baseline v1")
    survey = services.survey_create(
        study=study, user=user, title="GCAI vs ICAI", constitution_a=a, constitution_b=b, **fields
    )
    return services.survey_open(survey=survey, override=override, user=user)
