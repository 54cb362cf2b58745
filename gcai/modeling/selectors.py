"""Reads for steering evaluations and critique runs: lists, report tables, SFT rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from annotations.models import Study
from gcai.core.training_data import critique_sft_row
from gcai.jobs.models import JobStatus
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


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def steering_report_text(run: SteeringRun) -> str:
    """The report as a plain-text table (for the command line)."""
    lines = [f"{run} [{run.status}] target {run.llm_model}"]
    if run.kind == SteeringKind.CRITIQUE:
        r = run.results or {}
        lines.append(
            f"prompts {r.get('n_prompts', 0)}, revised {r.get('n_revised', 0)}, "
            f"failed {r.get('n_failed', 0)}"
        )
        return "\n".join(lines)
    header = f"{'comparison':<44} {'win rate':>9} {'95% CI':>15} {'LC win':>8} {'W/T/L':>10} {'Δlen med':>9}"
    lines.append(header)
    for c in steering_comparisons(run, with_rows=False):
        w = c.get("win_rate") or {}
        ci = f"{_pct(w.get('lo'))}-{_pct(w.get('hi'))}" if w else "—"
        name = f"{c['x_label']} vs {c['y_label']}"[:44]
        wtl = f"{c['wins']}/{c['ties']}/{c['losses']}"
        med = c.get("median_length_diff")
        lines.append(
            f"{name:<44} {_pct(w.get('value')):>9} {ci:>15} {_pct(c.get('lc_win_rate')):>8} "
            f"{wtl:>10} {('—' if med is None else f'{med:+.0f}'):>9}"
        )
    return "\n".join(lines)
