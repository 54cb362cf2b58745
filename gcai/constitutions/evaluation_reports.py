"""Reading evaluations: the report table, its definitions, exports and paired comparisons.

The measures themselves are computed in :mod:`gcai.core.evaluate`; this module shapes the
stored results for the pages, the CSV/JSON exports and ``manage.py evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform

from annotations.models import PreferencePair, Split, Study
from gcai.constitutions.models import Evaluation, EvaluationKind
from gcai.core.evaluate import EvalMetrics, PairJudgement, compare_judgements
from gcai.core.stats import MIN_N_PAIRS, small_sample_warning
from gcai.jobs.models import JobStatus


def target_label(evaluation: Evaluation) -> str:
    """What was evaluated, for tables: the constitution's title and version, or the baseline."""
    if evaluation.kind == EvaluationKind.CONSTITUTION and evaluation.constitution_id:
        c = evaluation.constitution
        method = f" [{c.get_method_display()}]" if c.method else ""
        return f"{c.title} v{c.version}{method}"
    return EvaluationKind(evaluation.kind).label


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class MetricColumn:
    """A column of the report table and the definition shown next to its number."""

    key: str  # the field of gcai.core.evaluate.EvalMetrics
    title: str
    definition: str
    abstaining_only: bool = False  # only meaningful when the judge may answer "none"

    @property
    def percent(self) -> bool:
        return self.key != "kappa"


#: The key of the headline in an evaluation's metrics: the published measure.
HEADLINE = "accuracy_per_order"

#: Every column, headline first. The headline is the published measure.
ALL_COLUMNS: tuple[MetricColumn, ...] = (
    MetricColumn(
        HEADLINE,
        "Accuracy",
        "The published measure (improved ICAI, Table 1): each pair is judged twice, with "
        "the responses in both orders and a forced choice; each order's answer is scored "
        "on its own against the human label and the two are averaged. A judge that "
        "ignores the content scores 50%.",
    ),
    MetricColumn(
        "accuracy",
        "Strict agreement",
        "Share of pairs where BOTH orders picked the human's response. A judge that "
        "changes its answer when the responses swap, or abstains, gets no credit.",
        abstaining_only=True,
    ),
    MetricColumn(
        "coverage",
        "Coverage",
        'Share of pairs where the judge did not answer "none" (no principle applies) in '
        "both orders. It counts answers, not agreement: a judge that answers A in one "
        "order and B in the other is covered but disagrees with itself.",
        abstaining_only=True,
    ),
    MetricColumn(
        "accuracy_covered",
        "Strict agreement on covered",
        "Strict agreement among the covered pairs only.",
        abstaining_only=True,
    ),
    MetricColumn(
        "accuracy_abstain_half",
        "Strict (abstain = ½)",
        "Strict agreement with a pair the judge abstained on counted as half right.",
        abstaining_only=True,
    ),
    MetricColumn(
        "order_disagreement",
        "Order disagreement",
        "Share of pairs where the two orders gave different answers: the judge followed "
        "the position of a response rather than its content (or abstained in one order).",
    ),
    MetricColumn(
        "kappa",
        "κ vs chance",
        "Cohen's kappa of the accuracy against chance 50%: 0 is chance, 1 perfect, below "
        "0 worse than chance.",
    ),
)
COLUMN_BY_KEY = {c.key: c for c in ALL_COLUMNS}


def metric_columns(*, abstaining: bool) -> tuple[MetricColumn, ...]:
    """The columns to show: with abstaining on, strict agreement, coverage and the
    abstention columns join the headline."""
    return tuple(c for c in ALL_COLUMNS if abstaining or not c.abstaining_only)


def allows_abstaining(evaluation: Evaluation) -> bool:
    """Whether the judge could answer "none" (evaluations made before the forced-choice
    default stored no setting and allowed it)."""
    if "config" in evaluation.__dict__:
        return bool((evaluation.config or {}).get("eval", {}).get("allow_abstain", True))
    value = getattr(evaluation, "allow_abstain", None)
    return True if value is None else bool(value)


def columns_for(evaluations: Sequence[Evaluation]) -> tuple[MetricColumn, ...]:
    return metric_columns(abstaining=any(allows_abstaining(e) for e in evaluations))


#: The columns of a forced-choice evaluation, and those shown as bars (shares on 0..1).
METRIC_COLUMNS: tuple[MetricColumn, ...] = metric_columns(abstaining=False)
CHART_METRICS: tuple[MetricColumn, ...] = tuple(c for c in ALL_COLUMNS if c.percent)


# --------------------------------------------------------------------------- reads


def evaluations_summarised(queryset: QuerySet[Evaluation]) -> QuerySet[Evaluation]:
    """Evaluations with ``metrics``, ``similarity`` and ``similarity_reference`` pulled out
    of the results in the database, without loading per-pair judgements or labels."""
    return (
        queryset.select_related("constitution")
        .defer("results", "config")
        .annotate(
            metrics=KeyTransform("metrics", "results"),
            allow_abstain=KeyTransform("allow_abstain", KeyTransform("eval", "config")),
            similarity=KeyTransform("similarity", "results"),
            similarity_reference=KeyTransform("similarity_reference", "results"),
        )
    )


def evaluations_for_study(*, study: Study) -> QuerySet[Evaluation]:
    return evaluations_summarised(Evaluation.objects.filter(study=study)).order_by(
        "-created_at", "pk"
    )


_KIND_ORDER = {
    EvaluationKind.CONSTITUTION: 0,
    EvaluationKind.NO_CONSTITUTION: 1,
    EvaluationKind.ORTHOGONAL: 2,
}


def comparison_order(evaluation: Evaluation) -> tuple[int, int]:
    """Sort key inside a comparison: constitutions as chosen, then the two baselines."""
    return (_KIND_ORDER.get(evaluation.kind, 9), evaluation.pk)


def evaluations_in_group(*, study: Study, group: str) -> list[Evaluation]:
    """The evaluations of one comparison: constitutions first, then the baselines."""
    rows = list(
        evaluations_summarised(Evaluation.objects.filter(study=study, comparison_group=group))
    )
    return sorted(rows, key=comparison_order)


def _metrics_of(evaluation: Evaluation) -> dict[str, Any] | None:
    metrics = getattr(evaluation, "metrics", None)
    if metrics is None and "results" in evaluation.__dict__:
        metrics = (evaluation.results or {}).get("metrics")
    return metrics or None


def _similarity_of(evaluation: Evaluation) -> tuple[dict | None, dict | None]:
    if "results" in evaluation.__dict__:
        data = evaluation.results or {}
        return data.get("similarity"), data.get("similarity_reference")
    return getattr(evaluation, "similarity", None), getattr(
        evaluation, "similarity_reference", None
    )


def format_estimate(estimate: dict[str, Any] | None, *, percent: bool = True) -> str:
    """``"78.0% [70.1, 84.3]"`` (or ``"0.56 [0.40, 0.69]"`` for kappa); ``"-"`` if undefined."""
    if not estimate or estimate.get("value") is None:
        return "-"
    if percent:
        text = f"{100 * estimate['value']:.1f}%"
        if estimate.get("lo") is not None and estimate.get("hi") is not None:
            text += f" [{100 * estimate['lo']:.1f}, {100 * estimate['hi']:.1f}]"
        return text
    text = f"{estimate['value']:.2f}"
    if estimate.get("lo") is not None and estimate.get("hi") is not None:
        text += f" [{estimate['lo']:.2f}, {estimate['hi']:.2f}]"
    return text


def _point(estimate: dict[str, Any] | None) -> dict[str, Any] | None:
    return {"value": estimate.get("value")} if estimate else None


def evaluation_row(
    evaluation: Evaluation, columns: Sequence[MetricColumn] | None = None
) -> dict[str, Any]:
    """One row of the report table: what was evaluated, on what, and each metric of
    ``columns`` (default: the columns this evaluation's settings call for)."""
    metrics = _metrics_of(evaluation)
    similarity, reference = _similarity_of(evaluation)
    if columns is None:
        columns = columns_for([evaluation])
    cells = []
    for column in columns:
        estimate = (metrics or {}).get(column.key)
        text = format_estimate(estimate, percent=column.percent)
        cells.append(
            {
                "key": column.key,
                "title": column.title,
                "definition": column.definition,
                "estimate": estimate,
                "text": text,
                # The same split in two for narrow table cells.
                "value": format_estimate(_point(estimate), percent=column.percent),
                "interval": text.partition(" ")[2],
            }
        )
    return {
        "evaluation": evaluation,
        "id": evaluation.pk,
        "target": target_label(evaluation),
        "kind": evaluation.kind,
        "split": evaluation.split,
        "status": evaluation.status,
        "n_scored": (metrics or {}).get("n_scored"),
        "n_ties": (metrics or {}).get("n_ties"),
        "n_errors": (metrics or {}).get("n_errors"),
        "metrics": metrics,
        "cells": cells,
        "similarity": (similarity or {}).get("mean_similarity"),
        "similarity_padded": (similarity or {}).get("padded_similarity"),
        "similarity_reference": (reference or {}).get("mean_similarity"),
    }


def evaluation_table_text(evaluations: Sequence[Evaluation]) -> str:
    """The report table as plain text (what ``manage.py evaluate`` prints)."""
    columns = columns_for(evaluations)
    rows = [evaluation_row(e, columns) for e in evaluations]
    header = ["Evaluated", "Split", "n", *[c.title for c in columns]]
    body = []
    for row in rows:
        n = "-" if row["n_scored"] is None else str(row["n_scored"])
        if row["status"] != JobStatus.SUCCEEDED:
            cells = [row["status"]] + [""] * (len(columns) - 1)
        else:
            cells = [c["text"] for c in row["cells"]]
        body.append([f"#{row['id']} {row['target']}", row["split"], n, *cells])
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    notes = [f"{c.title}: {c.definition}" for c in columns]
    notes.append("Brackets: 95% Wilson intervals.")
    scored = [r["n_scored"] for r in rows if r["n_scored"] is not None]
    if scored and min(scored) < MIN_N_PAIRS:
        notes.append(
            "Small sample: "
            + small_sample_warning(min(scored), MIN_N_PAIRS, "scored pairs")
            + " These numbers are shown for completeness only."
        )
    if any(r["split"] == Split.TRAIN for r in rows):
        notes.append("Split 'train': training pairs, not held out; accuracy is optimistic.")
    sims = [r for r in rows if r["similarity"] is not None]
    for r in sims:
        ref = r["similarity_reference"]
        notes.append(
            f"Similarity to the ground truth, #{r['id']}: {r['similarity']:.3f} "
            f"(padded {r['similarity_padded']:.3f}; ground truth vs itself "
            f"{'-' if ref is None else f'{ref:.3f}'})"
        )
    return "\n".join([line.rstrip() for line in lines] + notes)


def evaluation_metrics(evaluation: Evaluation) -> EvalMetrics | None:
    """The stored metrics as the core dataclass (None until the evaluation succeeded)."""
    data = _metrics_of(evaluation)
    return EvalMetrics.from_dict(data) if data else None


def evaluation_status(evaluation: Evaluation) -> dict[str, Any]:
    """What the progress display polls: status, stage, progress and LLM usage."""
    return {
        "id": evaluation.pk,
        "status": evaluation.status,
        "status_display": evaluation.get_status_display(),
        "is_active": evaluation.is_active,
        "cancel_requested": evaluation.cancel_requested,
        "stage": evaluation.stage,
        "progress_done": evaluation.progress_done,
        "progress_total": evaluation.progress_total,
        "percent": evaluation.progress_percent,
        "error": evaluation.error,
        "llm_model": evaluation.llm_model,
        "llm_calls": evaluation.llm_calls,
        "llm_cached_calls": evaluation.llm_cached_calls,
        "llm_errors": evaluation.llm_errors,
        "prompt_tokens": evaluation.prompt_tokens,
        "completion_tokens": evaluation.completion_tokens,
        "cost_usd": float(evaluation.cost_usd),
        "started_at": evaluation.started_at.isoformat() if evaluation.started_at else None,
        "finished_at": evaluation.finished_at.isoformat() if evaluation.finished_at else None,
    }


def evaluation_describe(evaluation: Evaluation) -> dict[str, Any]:
    """The evaluation's identity and settings, without the per-pair data."""
    config = evaluation.config if "config" in evaluation.__dict__ else {}
    return {
        "id": evaluation.pk,
        "study": evaluation.study_id,
        "target": target_label(evaluation),
        "kind": evaluation.kind,
        "constitution": evaluation.constitution_id,
        "split": evaluation.split,
        "held_out": evaluation.split == Split.TEST,
        "comparison_group": evaluation.comparison_group,
        "seed": evaluation.seed,
        "created_at": evaluation.created_at.isoformat(),
        # Without the frozen labels (the pair CSV has them) and the engine's bookkeeping.
        "settings": {k: v for k, v in config.items() if k != "labels" and not k.startswith("_")},
    }


def evaluation_export_document(*, evaluation: Evaluation) -> dict[str, Any]:
    """Everything about one evaluation as one JSON document (the JSON export)."""
    return {
        "evaluation": evaluation_describe(evaluation),
        "status": evaluation_status(evaluation),
        "results": evaluation.results or {},
    }


PAIR_CSV_HEADER = (
    "pair_id",
    "external_id",
    "dataset",
    "human",
    "judge_as_shown",
    "judge_swapped",
    "verdict",
    "agrees",
    "principles_applied",
    "decisive",
    "errors",
)


def evaluation_pair_rows(*, evaluation: Evaluation) -> list[list[Any]]:
    """Per-pair judgements for the CSV export (one query for the pairs' names)."""
    judgements = (evaluation.results or {}).get("judgements") or []
    ids = [int(j["pair_id"]) for j in judgements if str(j["pair_id"]).isdigit()]
    names = {
        pk: (external_id, dataset)
        for pk, external_id, dataset in PreferencePair.objects.filter(pk__in=ids).values_list(
            "pk", "external_id", "dataset__name"
        )
    }
    rows = []
    for j in judgements:
        pk = int(j["pair_id"]) if str(j["pair_id"]).isdigit() else None
        external_id, dataset = names.get(pk, ("", "")) if pk is not None else ("", "")
        votes = j.get("principle_votes") or {}
        scored = j["human"] in ("a", "b") and j["final"] != "error"
        rows.append(
            [
                j["pair_id"],
                external_id,
                dataset,
                j["human"],
                j["original"] or "",
                j["swapped"] or "",
                j["final"],
                ("1" if j["final"] == j["human"] else "0") if scored else "",
                " ".join(
                    f"{n}:{side}" for n, side in sorted(votes.items(), key=lambda kv: int(kv[0]))
                ),
                " ".join(str(d) for d in j.get("decisive") or []),
                " | ".join([*j.get("errors", []), *j.get("analysis_errors", [])]),
            ]
        )
    return rows


def comparison_csv_rows(evaluations: Sequence[Evaluation]) -> list[list[Any]]:
    """The report table with every interval bound, one row per evaluation, header first."""
    header = ["evaluation", "target", "kind", "split", "status", "n_pairs", "n_scored", "n_ties"]
    header += ["n_errors", "allow_abstain"]
    # Every measure, whatever the settings: a CSV is read by scripts, not people.
    for column in ALL_COLUMNS:
        header += [column.key, f"{column.key}_lo", f"{column.key}_hi"]
    header += ["similarity_mean", "similarity_padded", "similarity_reference"]
    rows: list[list[Any]] = [header]
    for evaluation in evaluations:
        row = evaluation_row(evaluation)
        metrics = row["metrics"] or {}
        line = [row["id"], row["target"], row["kind"], row["split"], row["status"]]
        line += [metrics.get(k, "") for k in ("n_pairs", "n_scored", "n_ties", "n_errors")]
        line.append(int(allows_abstaining(evaluation)))
        for column in ALL_COLUMNS:
            est = metrics.get(column.key) or {}
            line += [_num(est.get("value")), _num(est.get("lo")), _num(est.get("hi"))]
        line += [
            _num(row["similarity"]),
            _num(row["similarity_padded"]),
            _num(row["similarity_reference"]),
        ]
        rows.append(line)
    return rows


def _num(value: Any) -> str:
    return "" if value is None else f"{float(value):.6f}"


def comparison_differences(
    evaluations: Sequence[Evaluation], *, score: str = "per_order"
) -> list[dict[str, Any]]:
    """Paired differences in the headline accuracy: each evaluated constitution minus
    each baseline.

    Judged on the same pairs, the paired bootstrap interval is much narrower than
    comparing two separate intervals. Loads the judgements (one query).
    """
    done = [e for e in evaluations if e.status == JobStatus.SUCCEEDED]
    if len(done) < 2:
        return []
    judgements = {
        pk: [PairJudgement.from_dict(j) for j in (data or [])]
        for pk, data in Evaluation.objects.filter(pk__in=[e.pk for e in done])
        .annotate(judgements=KeyTransform("judgements", "results"))
        .values_list("pk", "judgements")
    }
    subjects = [e for e in done if e.kind == EvaluationKind.CONSTITUTION]
    baselines = [e for e in done if e.kind != EvaluationKind.CONSTITUTION]
    out = []
    for i, first in enumerate(subjects):
        # Constitutions (GCAI vs ICAI) are compared with each other, then with the baselines.
        for second in [*subjects[i + 1 :], *baselines]:
            est = compare_judgements(judgements[first.pk], judgements[second.pk], score=score)
            out.append(
                {
                    "first": target_label(first),
                    "second": target_label(second),
                    "first_id": first.pk,
                    "second_id": second.pk,
                    "estimate": est.to_dict(),
                    "text": _signed(est.to_dict()),
                }
            )
    return out


def _signed(estimate: dict[str, Any]) -> str:
    if estimate.get("value") is None:
        return "-"
    n = int(estimate.get("n") or 0)
    if estimate.get("lo") is None or estimate["lo"] == estimate["hi"]:
        # Every resample gives the same difference: the two were scored alike on every
        # pair, which says nothing about how they would differ on other pairs.
        text = f"{100 * estimate['value']:+.1f} pts (scored alike on all {n} pairs: no interval)"
    else:
        text = (
            f"{100 * estimate['value']:+.1f} pts "
            f"[{100 * estimate['lo']:+.1f}, {100 * estimate['hi']:+.1f}]"
        )
    warning = small_sample_warning(n, MIN_N_PAIRS, "pairs")
    return f"{text}. {warning}" if warning else text
