"""The factories build rows that satisfy the database constraints and belong together."""

from __future__ import annotations

import pytest

from gcai.constitutions.models import ConstitutionStatus, Method
from gcai.jobs.models import JobStatus
from surveys.models import SurveyStatus
from tests.factories import (
    ConstitutionFactory,
    EvaluationFactory,
    PipelineRunFactory,
    StudyFactory,
    SurveyFactory,
)

pytestmark = pytest.mark.django_db


def test_a_constitution_comes_from_a_finished_run_of_its_study_with_its_items():
    constitution = ConstitutionFactory(principles=["Be kind.", "Be brief."], published=True)
    assert constitution.run.study == constitution.study
    assert constitution.run.status == JobStatus.SUCCEEDED
    assert constitution.as_text() == "1. Be kind.\n2. Be brief."
    assert {i.principle.run_id for i in constitution.items.all()} == {constitution.run_id}
    assert constitution.status == ConstitutionStatus.PUBLISHED
    assert constitution.published_at is not None
    assert ConstitutionFactory().status == ConstitutionStatus.DRAFT


def test_an_evaluation_and_a_survey_stay_inside_one_study():
    study = StudyFactory()
    evaluation = EvaluationFactory(study=study)
    assert evaluation.constitution.study == study
    assert evaluation.status == JobStatus.QUEUED

    survey = SurveyFactory(study=study, opened=True)
    assert survey.status == SurveyStatus.OPEN
    assert survey.constitution_a.study == survey.constitution_b.study == study
    assert (survey.constitution_a.method, survey.constitution_b.method) == (
        Method.GCAI,
        Method.ICAI,
    )
    assert survey.questions.filter(kind="attention").exists()
    assert SurveyFactory().status == SurveyStatus.DRAFT
    assert PipelineRunFactory(method=Method.ICAI).method == Method.ICAI
