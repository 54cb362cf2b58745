"""Access-test registrations for the data import/export routes, and builders for the
constitution/survey objects those routes need (tests/test_entry_points.py imports every
``*owned_objects`` module)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from tests import entry_points
from tests.factories import DatasetFactory


def make_constitution(study, *, title: str = "Test constitution", **fields: Any):
    from gcai.constitutions.models import Constitution

    return Constitution.objects.create(study=study, title=title, **fields)


def make_survey(study, **fields: Any):
    from surveys.models import Survey

    fields.setdefault("constitution_a", make_constitution(study, title="Constitution A"))
    fields.setdefault("constitution_b", make_constitution(study, title="Constitution B"))
    fields.setdefault("title", "Which constitution?")
    return Survey.objects.create(study=study, **fields)


def make_published_constitution(study, **fields: Any):
    return make_constitution(study, status="published", published_at=timezone.now(), **fields)


def _with_constitution(owned: dict[str, Any]) -> dict[str, Any]:
    return {"study_id": owned["study"].pk, "constitution_id": make_constitution(owned["study"]).pk}


def _with_survey(owned: dict[str, Any]) -> dict[str, Any]:
    return {"study_id": owned["study"].pk, "survey_id": make_survey(owned["study"]).pk}


def _with_dataset(owned: dict[str, Any]) -> dict[str, Any]:
    return {"study_id": owned["study"].pk, "dataset_id": DatasetFactory(study=owned["study"]).pk}


for _name in ("study_export_constitution", "api_export_constitution"):
    entry_points.register(_name)(_with_constitution)
for _name in ("study_export_survey_answers", "api_export_survey_answers"):
    entry_points.register(_name)(_with_survey)
for _name in ("study_dataset_split", "api_dataset_split", "study_dataset_settings"):
    entry_points.register(_name)(_with_dataset)
