"""Stored stage outputs as files: one artifact or a whole run's stages, streamed as the
JSON text the database holds (never decoded), and the artifact index for the API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import TextField
from django.db.models.functions import Cast

from gcai.constitutions.models import (
    PipelineRun,
    StageArtifact,
)
from gcai.constitutions.selectors import stage_kind, stage_title

# --------------------------------------------------------------------------- exports


def stage_artifact_stream(
    *, run: PipelineRun, stage: str, batch: int = -1, chunk_size: int = 64 * 1024
) -> Iterator[str] | None:
    """The stored artifact as a JSON document, in chunks; None if it is not stored.

    The database hands back the stored JSON as text (no decode/encode round trip in
    Python), wrapped with the run, stage and batch it belongs to.
    """
    row = (
        StageArtifact.objects.filter(run=run, stage=stage, batch=batch)
        .annotate(text=Cast("data", output_field=TextField()))
        .values_list("text", "created_at")
        .first()
    )
    if row is None:
        return None
    text, created_at = row
    return _wrap(run, [(stage, batch, created_at, text)], chunk_size)


def run_artifacts_stream(*, run: PipelineRun, chunk_size: int = 64 * 1024) -> Iterator[str]:
    """Every merged stage artifact of the run as one JSON document, in chunks.

    Artifacts are fetched one at a time, so memory holds one stage, never the run.
    """
    rows = (
        StageArtifact.objects.filter(run=run, batch=-1)
        .order_by("created_at", "pk")
        .annotate(text=Cast("data", output_field=TextField()))
        .values_list("stage", "batch", "created_at", "text")
        .iterator(chunk_size=1)
    )
    return _wrap(run, rows, chunk_size)


def _wrap(
    run: PipelineRun, rows: Iterable[tuple[str, int, Any, str]], chunk_size: int
) -> Iterator[str]:
    import json

    def header(stage: str, batch: int, created_at: Any) -> str:
        meta = {"stage": stage, "batch": batch, "created_at": created_at.isoformat()}
        return json.dumps(meta)[:-1] + ', "data": '

    yield json.dumps({"run": run.pk, "method": run.method, "title": run.title})[:-1]
    yield ', "artifacts": ['
    for i, (stage, batch, created_at, text) in enumerate(rows):
        yield ("," if i else "") + header(stage, batch, created_at)
        for start in range(0, len(text), chunk_size):
            yield text[start : start + chunk_size]
        yield "}"
    yield "]}"


def artifact_list(*, run: PipelineRun) -> list[dict[str, Any]]:
    """Every stored artifact of the run without its data (stage, batch, time)."""
    rows = StageArtifact.objects.filter(run=run).order_by("created_at", "pk")
    return [
        {
            "stage": r["stage"],
            "stage_title": stage_title(r["stage"]),
            "kind": stage_kind(r["stage"]),
            "batch": r["batch"],
            "created_at": r["created_at"],
        }
        for r in rows.values("stage", "batch", "created_at")
    ]


def artifact_data(*, run: PipelineRun, stage: str, batch: int = -1) -> Any:
    """One artifact's data (decoded), or None."""
    return (
        StageArtifact.objects.filter(run=run, stage=stage, batch=batch)
        .values_list("data", flat=True)
        .first()
    )
