"""Reads for steering evaluations and critique runs: lists, report tables, SFT rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from annotations.models import Study
from gcai.constitutions.models import JobStatus
from gcai.core.training_data import critique_sft_row
from gcai.modeling.models import SteeringArtifact, SteeringKind, SteeringRun

VARIANT_LABELS = {"none": "no constitution", "a": "constitution A", "b": "constitution B"}


def steering_runs_for_study(*, study: Study) -> QuerySet[SteeringRun]:
    return (
        SteeringRun.objects.filter(study=study)
        .select_related("constitution", "constitution_b")
        .defer("config")
        .order_by("-created_at")
    )


def _stage_output(run: SteeringRun, stage: str) -> dict[str, Any] | None:
    return (
        SteeringArtifact.objects.filter(run=run, stage=stage, batch=-1)
        .values_list("data", flat=True)
        .first()
    )


def variant_label(run: SteeringRun, variant: str) -> str:
    if variant == "a":
        return f"{run.constitution.title} v{run.constitution.version}"
    if variant == "b" and run.constitution_b is not None:
        return f"{run.constitution_b.title} v{run.constitution_b.version}"
    return VARIANT_LABELS.get(variant, variant)


def steering_comparisons(run: SteeringRun, *, with_rows: bool = True) -> list[dict[str, Any]]:
    """The report's comparisons, each with its per-prompt rows joined to the prompt and
    the two responses (one artifact query)."""
    comparisons = list((run.results or {}).get("comparisons") or [])
    if not comparisons:
        return []
    prompts = run.config.get("prompts") or []
    responses: dict[tuple[int, str], str] = {}
    if with_rows:
        generated = _stage_output(run, "generate") or {}
        responses = {(r["i"], r["variant"]): r["text"] for r in generated.get("responses", [])}
    out = []
    for c in comparisons:
        c = dict(c)
        c["x_label"] = variant_label(run, c["x"])
        c["y_label"] = variant_label(run, c["y"])
        rows = []
        for row in c.get("rows", []) if with_rows else []:
            i = row["i"]
            rows.append(
                {
                    **row,
                    "prompt": prompts[i] if i < len(prompts) else "",
                    "response_x": responses.get((i, c["x"]), ""),
                    "response_y": responses.get((i, c["y"]), ""),
                }
            )
        c["rows"] = rows
        out.append(c)
    return out


def critique_rows(run: SteeringRun, *, style: str = "conversational") -> Iterator[dict[str, Any]]:
    """SFT rows of a finished critique run: each prompt answered by its revision, with
    the principle that drove it (failed prompts are skipped)."""
    if run.kind != SteeringKind.CRITIQUE or run.status != JobStatus.SUCCEEDED:
        return
    data = _stage_output(run, "critique") or {}
    for row in data.get("rows", []):
        if row.get("error") is None and row.get("revision"):
            yield critique_sft_row(
                prompt=row["prompt"],
                revision=row["revision"],
                principle=row["principle"],
                style=style,
            )


def critique_detail_rows(run: SteeringRun, *, limit: int = 200) -> list[dict[str, Any]]:
    data = _stage_output(run, "critique") or {}
    return list(data.get("rows", []))[:limit]
