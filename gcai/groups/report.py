"""The divergence report of a group comparison (reads only).

- matrix: each group's constitution (rows) judged on each group's held-out labels
  (columns), the evaluation headline (forced-choice accuracy per order, averaged) with
  its Wilson interval, per method;
- principles shared by every group vs specific to one, matched by embedding cosine
  similarity (``gcai.core.similarity``);
- agreement between groups on pairs several groups labelled: Cohen's kappa for each two
  groups and Fleiss' kappa over the pairs every group labelled
  (``gcai.core.stats.cohen_kappa`` and ``fleiss_kappa``);
- status, build time and LLM usage summed over the runs and evaluations.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from django.db.models import Sum

from annotations.models import Split
from gcai.constitutions.evaluation_reports import (
    HEADLINE,
    evaluations_summarised,
    format_estimate,
)
from gcai.constitutions.llm import embedded_model_of
from gcai.constitutions.models import Constitution, Evaluation, PipelineRun
from gcai.core.similarity import constitution_similarity
from gcai.core.stats import MIN_N_PAIRS, cohen_kappa, fleiss_kappa, small_sample_warning
from gcai.groups.models import GroupComparison
from gcai.groups.services import group_labels
from gcai.jobs.models import JobStatus

SHARED_THRESHOLD = 0.8
_USAGE = ("llm_calls", "llm_cached_calls", "prompt_tokens", "completion_tokens", "cost_usd")


class ReportUnavailable(Exception):
    """The report may not be shown (its groups are below the current minimum)."""


def check_visible(comparison: GroupComparison) -> None:
    """Groups are frozen at creation; a later, stricter minimum hides the whole report."""
    minimum = comparison.study.min_group_size
    if any(g["size"] < minimum for g in comparison.groups):
        raise ReportUnavailable(
            f"This comparison has a group of fewer than {minimum} people, the study's "
            "current minimum group size, so its report is no longer shown."
        )


def _runs(comparison: GroupComparison) -> list[PipelineRun]:
    return list(
        PipelineRun.objects.filter(
            study=comparison.study, comparison_group=comparison.key
        ).order_by("pk")
    )


def comparison_status(comparison: GroupComparison, runs: list[PipelineRun] | None = None) -> str:
    """building | failed | evaluating | done | waiting (runs done, matrix not created yet)."""
    runs = _runs(comparison) if runs is None else runs
    statuses = {r.status for r in runs}
    if statuses & {JobStatus.FAILED, JobStatus.CANCELLED}:
        return "failed"
    if statuses & {JobStatus.QUEUED, JobStatus.RUNNING}:
        return "building"
    if not comparison.cells:
        return "waiting"
    ids = [c["evaluation"] for c in comparison.cells if c["evaluation"]]
    evals = set(Evaluation.objects.filter(pk__in=ids).values_list("status", flat=True))
    if evals & {JobStatus.FAILED, JobStatus.CANCELLED}:
        return "failed"
    if evals & {JobStatus.QUEUED, JobStatus.RUNNING}:
        return "evaluating"
    return "done"


def comparison_statuses(comparisons: list[GroupComparison]) -> dict[int, str]:
    """``comparison_status`` of many comparisons in two queries (for lists)."""
    keys = {c.key: c.pk for c in comparisons}
    run_statuses: dict[int, set[str]] = {c.pk: set() for c in comparisons}
    for key, status in PipelineRun.objects.filter(comparison_group__in=list(keys)).values_list(
        "comparison_group", "status"
    ):
        run_statuses[keys[key]].add(status)
    owner = {
        c["evaluation"]: comp.pk for comp in comparisons for c in comp.cells if c["evaluation"]
    }
    eval_statuses: dict[int, set[str]] = {c.pk: set() for c in comparisons}
    for pk, status in Evaluation.objects.filter(pk__in=list(owner)).values_list("pk", "status"):
        eval_statuses[owner[pk]].add(status)
    out = {}
    for c in comparisons:
        runs, evals = run_statuses[c.pk], eval_statuses[c.pk]
        bad = {JobStatus.FAILED, JobStatus.CANCELLED}
        active = {JobStatus.QUEUED, JobStatus.RUNNING}
        if runs & bad:
            out[c.pk] = "failed"
        elif runs & active:
            out[c.pk] = "building"
        elif not c.cells:
            out[c.pk] = "waiting"
        elif evals & bad:
            out[c.pk] = "failed"
        elif evals & active:
            out[c.pk] = "evaluating"
        else:
            out[c.pk] = "done"
    return out


def _usage(queryset) -> dict[str, int | float]:
    """Summed LLM usage: counts stay whole numbers, the cost is in dollars."""
    totals = queryset.aggregate(**{k: Sum(k) for k in _USAGE})
    return {k: float(totals[k] or 0) if k == "cost_usd" else int(totals[k] or 0) for k in _USAGE}


def _seconds(jobs: list[Any]) -> float | None:
    started = [j.started_at for j in jobs if j.started_at]
    finished = [j.finished_at for j in jobs if j.finished_at]
    if not started or not finished:
        return None
    return round((max(finished) - min(started)).total_seconds(), 3)


def _constitutions(comparison: GroupComparison) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for c in (
        Constitution.objects.filter(run__comparison_group=comparison.key, study=comparison.study)
        .select_related("run")
        .prefetch_related("items")
        .order_by("version")
    ):
        value = c.run.config.get("people", {}).get("value")
        out.setdefault(c.run.method, {})[value] = [item.text for item in c.items.all()]
    return out


def _matrix(comparison: GroupComparison) -> dict[str, Any]:
    ids = [c["evaluation"] for c in comparison.cells if c["evaluation"]]
    rows = {e.pk: e for e in evaluations_summarised(Evaluation.objects.filter(pk__in=ids))}
    out: dict[str, Any] = {}
    for method in comparison.methods:
        grid = []
        for row in comparison.values:
            line = []
            for col in comparison.values:
                cell = next(
                    (
                        c
                        for c in comparison.cells
                        if c["method"] == method and c["row"] == row and c["col"] == col
                    ),
                    None,
                )
                evaluation = rows.get(cell["evaluation"]) if cell and cell["evaluation"] else None
                metrics = (getattr(evaluation, "metrics", None) or {}) if evaluation else {}
                # The published headline (each order scored on its own, averaged), as on
                # every evaluation page; strict agreement would punish order-flipping twice.
                estimate = metrics.get(HEADLINE)
                line.append(
                    {
                        "row": row,
                        "col": col,
                        "evaluation": evaluation.pk if evaluation else None,
                        "status": evaluation.status if evaluation else None,
                        "accuracy": estimate,
                        "coverage": metrics.get("coverage"),
                        "n_scored": metrics.get("n_scored"),
                        "text": format_estimate(estimate),
                    }
                )
            grid.append(line)
        diagonal = [grid[i][i]["accuracy"] for i in range(len(grid))]
        off = [grid[i][j]["accuracy"] for i in range(len(grid)) for j in range(len(grid)) if i != j]
        out[method] = {
            "groups": comparison.values,
            "cells": grid,
            "mean_diagonal": _mean(diagonal),
            "mean_off_diagonal": _mean(off),
        }
    return out


def _mean(estimates: list[dict[str, Any] | None]) -> float | None:
    values = [e["value"] for e in estimates if e and e.get("value") is not None]
    return round(sum(values) / len(values), 6) if values else None


def principles_shared_and_specific(
    texts: dict[str, list[str]], embedder: Any, *, threshold: float = SHARED_THRESHOLD
) -> dict[str, Any]:
    """Each group's principles split into shared (a close match, cosine >= threshold, in
    every other group's constitution) and specific (no close match in any other group)."""
    groups = [g for g in texts if texts[g]]
    best: dict[tuple[str, int], dict[str, tuple[float, str]]] = {}
    for a in groups:
        for b in groups:
            if a == b:
                continue
            result = constitution_similarity(texts[a], texts[b], embedder)
            for i, row in enumerate(result.similarity_matrix):
                j = max(range(len(row)), key=row.__getitem__)
                best.setdefault((a, i), {})[b] = (row[j], texts[b][j])
    shared, specific, partial = [], {g: [] for g in groups}, []
    seen: set[tuple[str, int]] = set()
    for a in groups:
        for i, text in enumerate(texts[a]):
            matches = best.get((a, i), {})
            close = {b: m for b, m in matches.items() if m[0] >= threshold}
            if len(groups) > 1 and len(close) == len(groups) - 1:
                if (a, i) in seen:
                    continue
                entry = {"group": a, "text": text, "matches": {}}
                for b, (score, other) in close.items():
                    entry["matches"][b] = {"text": other, "similarity": round(score, 3)}
                    seen.add((b, texts[b].index(other)))
                shared.append(entry)
            elif not close:
                specific[a].append(
                    {
                        "text": text,
                        "closest": max((m[0] for m in matches.values()), default=None),
                    }
                )
            else:
                partial.append({"group": a, "text": text, "shared_with": sorted(close)})
    return {"threshold": threshold, "shared": shared, "specific": specific, "partial": partial}


def group_agreement(comparison: GroupComparison) -> dict[str, Any]:
    """Agreement between groups' majority labels on the pairs several groups labelled."""
    datasets = comparison.config.get("dataset_ids") or None
    labels: dict[str, dict[int, str]] = {}
    for g in comparison.groups:
        labels[g["value"]] = {}
        for split in (Split.TRAIN, Split.TEST):
            labels[g["value"]].update(
                group_labels(
                    study=comparison.study, members=g["members"], split=split, dataset_ids=datasets
                )
            )
    values = comparison.values
    pairs_by_several = {
        pk for a, b in combinations(values, 2) for pk in labels[a].keys() & labels[b].keys()
    }
    cohen = []
    for a, b in combinations(values, 2):
        common = sorted(labels[a].keys() & labels[b].keys())
        kappa = None
        agree = None
        if common:
            first = [labels[a][pk] for pk in common]
            second = [labels[b][pk] for pk in common]
            agree = round(sum(x == y for x, y in zip(first, second, strict=True)) / len(common), 6)
            value = cohen_kappa(first, second)  # None when both used one label only
            kappa = None if value is None else round(value, 6)
        cohen.append({"a": a, "b": b, "n_pairs": len(common), "agreement": agree, "kappa": kappa})
    everyone = set.intersection(*(set(labels[v]) for v in values)) if values else set()
    fleiss = None
    if len(values) >= 3 and everyone:
        categories = sorted({labels[v][pk] for v in values for pk in everyone})
        table = [
            [sum(labels[v][pk] == c for v in values) for c in categories] for pk in sorted(everyone)
        ]
        value = fleiss_kappa(table)
        fleiss = {"kappa": None if value is None else round(value, 6), "n_pairs": len(everyone)}
    return {
        "pairs_labelled_by_several_groups": len(pairs_by_several),
        "cohen": cohen,
        "fleiss": fleiss,
        "fleiss_note": (
            None
            if len(values) >= 3
            else "Fleiss' kappa needs three or more groups; with two it equals the pairwise case."
        ),
    }


def divergence_report(
    comparison: GroupComparison, *, embedder: Any = None, with_principles: bool = True
) -> dict[str, Any]:
    """The whole report as one JSON-ready document (no members, no person ids)."""
    check_visible(comparison)
    runs = _runs(comparison)
    ids = [c["evaluation"] for c in comparison.cells if c["evaluation"]]
    evals = list(Evaluation.objects.filter(pk__in=ids).defer("results", "config"))
    constitutions = _constitutions(comparison)
    principles = {}
    if with_principles and constitutions:
        if embedder is None:
            from gcai.constitutions import llm

            embedder = llm.embedder()
        principles = {
            method: principles_shared_and_specific(texts, embedder)
            for method, texts in constitutions.items()
        }
    run_usage = _usage(PipelineRun.objects.filter(pk__in=[r.pk for r in runs]))
    eval_usage = _usage(Evaluation.objects.filter(pk__in=ids))
    matrix = _matrix(comparison)
    return {
        "comparison": {
            "id": comparison.pk,
            "title": str(comparison),
            "attribute": comparison.attribute,
            "methods": comparison.methods,
            "groups": [{"value": g["value"], "size": g["size"]} for g in comparison.groups],
            "held_out_pairs": {v: len(comparison.config["labels"][v]) for v in comparison.values},
            "min_group_size": comparison.study.min_group_size,
            "status": comparison_status(comparison, runs),
            "created_at": comparison.created_at.isoformat(),
        },
        "runs": [
            {
                "id": r.pk,
                "method": r.method,
                "group": r.config.get("people", {}).get("value"),
                "status": r.status,
                "error": r.error,
                "llm_calls": r.llm_calls,
                "llm_cached_calls": r.llm_cached_calls,
            }
            for r in runs
        ],
        "constitutions": constitutions,
        "matrix": matrix,
        "warnings": report_warnings(runs, evals, matrix),
        "principles": principles,
        "agreement": group_agreement(comparison),
        "usage": {
            "runs": run_usage,
            "evaluations": eval_usage,
            "build_seconds": _seconds(runs),
            "evaluation_seconds": _seconds(evals),
        },
    }


CSV_HEADER = (
    "method",
    "constitution_group",
    "labels_group",
    "accuracy",
    "accuracy_lo",
    "accuracy_hi",
    "n_scored",
    "evaluation",
)


def matrix_csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for method, matrix in report["matrix"].items():
        for line in matrix["cells"]:
            for cell in line:
                est = cell["accuracy"] or {}
                rows.append(
                    [
                        method,
                        cell["row"],
                        cell["col"],
                        est.get("value"),
                        est.get("lo"),
                        est.get("hi"),
                        cell["n_scored"],
                        cell["evaluation"],
                    ]
                )
    return rows


def report_warnings(
    runs: list[PipelineRun], evals: list[Evaluation], matrix: dict[str, Any]
) -> list[str]:
    """What makes the report weak, said before its numbers: the embedded offline model, or
    cells judged on fewer pairs than can support a conclusion."""
    out = []
    # The evaluations' configs (frozen labels, possibly large) are deferred: read only the
    # backend, in one query, instead of loading each config.
    judged_locally = Evaluation.objects.filter(
        pk__in=[e.pk for e in evals], config__llm_backend="local"
    ).only("config", "llm_model")
    embedded = embedded_model_of(*runs) or embedded_model_of(*judged_locally[:1])
    if embedded:
        out.append(
            f"Built with the embedded offline model ({embedded}): its principles and "
            "judgements show that the loop works, not research results."
        )
    scored = [
        cell["n_scored"]
        for m in matrix.values()
        for line in m["cells"]
        for cell in line
        if cell.get("n_scored") is not None
    ]
    if scored:
        warning = small_sample_warning(min(scored), MIN_N_PAIRS, "scored pairs per cell")
        if warning:
            out.append(warning + " Differences between cells on so few pairs mean nothing.")
    return out


def matrix_text(report: dict[str, Any]) -> str:
    """The matrices as plain text (what ``manage.py build_groups`` prints)."""
    lines = [f"Warning: {w}" for w in report.get("warnings", [])]
    for method, matrix in report["matrix"].items():
        groups = matrix["groups"]
        width = max(12, *(len(g) for g in groups)) + 2
        lines.append(f"{method}: rows = whose constitution, columns = whose held-out labels")
        lines.append("".ljust(width) + "".join(g.ljust(28) for g in groups))
        for g, line in zip(groups, matrix["cells"], strict=True):
            lines.append(g.ljust(width) + "".join(c["text"].ljust(28) for c in line))
        lines.append(
            f"mean diagonal {_pct(matrix['mean_diagonal'])}, "
            f"mean off-diagonal {_pct(matrix['mean_off_diagonal'])}"
        )
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
