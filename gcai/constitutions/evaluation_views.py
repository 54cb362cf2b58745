"""Researcher pages for evaluations: start, report, compare, export, progress.

Ownership comes from annotations.access (a stranger's study or evaluation is a 404);
the work is done by gcai.constitutions.evaluations.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotations.access import object_for, study_for
from gcai.charts import PALETTE, Bar, bar_chart, percent
from gcai.constitutions import evaluation_reports, evaluations
from gcai.constitutions.evaluations import EvaluationError
from gcai.constitutions.llm import embedded_model_of
from gcai.constitutions.models import Constitution, Evaluation
from gcai.core.evaluate import orthogonal_constitution
from gcai.core.stats import MIN_N_PAIRS, small_sample_warning
from gcai.csvsafe import csv_text
from gcai.dbid import is_db_id

# --------------------------------------------------------------------------- lookups


def _evaluation_for(request, study_id: int, evaluation_id: int) -> Evaluation:
    study = study_for(request.user, study_id)
    return object_for(
        Evaluation.objects.filter(study=study).select_related("study", "constitution"),
        request.user,
        evaluation_id,
    )


def _group_for(request, study_id: int, group: str) -> tuple[Any, list[Evaluation]]:
    study = study_for(request.user, study_id)
    rows = evaluation_reports.evaluations_in_group(study=study, group=group)
    if not rows:
        raise Http404("No such comparison.")
    return study, rows


# --------------------------------------------------------------------------- form


def default_orthogonal_text() -> str:
    return "\n".join(p.text for p in orthogonal_constitution().principles)


class ConstitutionChoices(forms.ModelMultipleChoiceField):
    def _check_values(self, value):
        # An id no database row can have would reach the database in an IN (...) list.
        for pk in value:
            try:
                if not is_db_id(int(pk)):
                    raise ValueError(pk)
            except (TypeError, ValueError):
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                ) from None
        return super()._check_values(value)

    def label_from_instance(self, obj: Constitution) -> str:
        method = f" · {obj.get_method_display()}" if obj.method else ""
        return (
            f"{obj.title} v{obj.version}{method} · {obj.get_status_display().lower()}"
            f" · {obj.n_items} principle{'s' if obj.n_items != 1 else ''}"
        )


class EvaluationForm(forms.Form):
    constitutions = ConstitutionChoices(
        queryset=Constitution.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Constitutions to evaluate",
        help_text="Each is judged on the same pairs by the same judge.",
    )
    baselines = forms.BooleanField(
        required=False,
        initial=True,
        label="Also run the baselines (no constitution; orthogonal constitution)",
    )
    split = forms.ChoiceField(
        choices=[
            ("test", "Test pairs (held out)"),
            ("train", "Training pairs (not held out: the results will be labelled as such)"),
        ],
        initial="test",
        label="Pairs",
    )
    limit = forms.IntegerField(
        required=False,
        min_value=1,
        label="At most this many pairs",
        help_text="A seeded sample; leave empty to judge every labelled pair.",
    )
    seed = forms.IntegerField(initial=0, label="Seed")
    orthogonal_principles = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        label="Orthogonal principles",
        help_text="Irrelevant principles for the orthogonal baseline, one per line.",
    )
    ground_truth = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Ground-truth principles (optional)",
        help_text="When the principles behind the data are known (synthetic data), one per "
        "line: each constitution is matched against them.",
    )
    llm_similarity = forms.BooleanField(
        required=False, label="Also let the judge match and rate each ground-truth principle (1-10)"
    )
    allow_abstain = forms.BooleanField(
        required=False,
        label='Let the judge abstain (answer "none")',
        help_text="Off: a forced choice, as published. On: adds strict agreement, coverage "
        "and abstention columns.",
    )
    ties = forms.ChoiceField(
        choices=[
            ("exclude", "Leave out tied and split-annotator pairs (as the reference)"),
            ("tie", "Keep them as ties (reported apart from accuracy)"),
        ],
        initial="exclude",
        required=False,
        label="Ties",
    )
    principle_analysis = forms.BooleanField(
        required=False,
        initial=True,
        label="Per-principle analysis (relevance, accuracy, decisive share; doubles the calls)",
    )
    batch_size = forms.IntegerField(
        initial=evaluations.DEFAULT_BATCH_SIZE,
        min_value=1,
        max_value=1000,
        label="Pairs per batch",
    )

    def __init__(self, *args: Any, study: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["constitutions"].queryset = (
            Constitution.objects.filter(study=study)
            .annotate(n_items=Count("items"))
            .order_by("title", "-version")
        )
        self.fields["orthogonal_principles"].initial = default_orthogonal_text()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("constitutions") and not data.get("baselines"):
            raise forms.ValidationError("Choose at least one constitution or the baselines.")
        return data


@login_required
@require_http_methods(["GET", "POST"])
def evaluation_new(request, study_id: int):
    study = study_for(request.user, study_id)
    initial = {}
    if request.GET.get("constitution", "").isdigit():
        initial["constitutions"] = [int(request.GET["constitution"])]
    form = EvaluationForm(request.POST or None, study=study, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = evaluations.evaluations_create_comparison(
                study=study,
                constitutions=list(data["constitutions"]),
                baselines=data["baselines"],
                split=data["split"],
                limit=data["limit"],
                seed=data["seed"] or 0,
                user=request.user,
                orthogonal_principles=data["orthogonal_principles"] or None,
                ground_truth=data["ground_truth"] or None,
                llm_similarity=data["llm_similarity"],
                principle_analysis=data["principle_analysis"],
                allow_abstain=data["allow_abstain"],
                ties=data["ties"] or "exclude",
                batch_size=data["batch_size"],
            )
        except EvaluationError as exc:
            form.add_error(None, str(exc))
        else:
            for evaluation in created:
                evaluations.evaluation_start(evaluation=evaluation)
            messages.success(
                request,
                f"Started {len(created)} evaluation{'s' if len(created) != 1 else ''} "
                f"on {created[0].progress_total} pair{'s' if created[0].progress_total != 1 else ''}.",
            )
            if len(created) == 1:
                return redirect("evaluation_detail", study_id=study.pk, evaluation_id=created[0].pk)
            return redirect(
                "evaluation_compare", study_id=study.pk, group=created[0].comparison_group
            )
    available = {
        split: len(evaluations.evaluation_labels(study=study, split=split))
        for split in evaluations.SPLITS
    }
    return render(
        request,
        "constitutions/evaluation_form.html",
        {"study": study, "form": form, "available": available},
    )


# --------------------------------------------------------------------------- pages


@login_required
def evaluation_list(request, study_id: int):
    study = study_for(request.user, study_id)
    groups: dict[str, list[Evaluation]] = {}
    found = list(evaluation_reports.evaluations_for_study(study=study))
    for evaluation in found:
        groups.setdefault(evaluation.comparison_group, []).append(evaluation)
    columns = evaluation_reports.columns_for(found)
    context = {
        "study": study,
        "groups": [
            (
                group,
                [
                    evaluation_reports.evaluation_row(e, columns)
                    for e in sorted(rows, key=evaluation_reports.comparison_order)
                ],
            )
            for group, rows in groups.items()
        ],
        "columns": columns,
    }
    return render(request, "constitutions/evaluation_list.html", context)


def _metric_bars(rows: list[dict[str, Any]], key: str) -> list[Bar]:
    bars = []
    for row in rows:
        est = (row["metrics"] or {}).get(key) or {}
        bars.append(
            Bar(
                label=row["target"],
                value=est.get("value"),
                low=est.get("lo"),
                high=est.get("hi"),
                color=PALETTE["muted"] if row["kind"] != "constitution" else PALETTE["accent"],
                note=f"n = {est.get('n', 0)}",
            )
        )
    return bars


def _summary_chart(metrics: dict[str, Any], chart_id: str, columns: Any):
    bars = [
        Bar(
            label=title,
            value=(metrics.get(key) or {}).get("value"),
            low=(metrics.get(key) or {}).get("lo"),
            high=(metrics.get(key) or {}).get("hi"),
            color=PALETTE["against"] if key == "order_disagreement" else PALETTE["accent"],
            note=f"n = {(metrics.get(key) or {}).get('n', 0)}",
        )
        for key, title in ((c.key, c.title) for c in columns if c.percent)
    ]
    return bar_chart(
        bars,
        title="Preference reconstruction with 95% intervals",
        chart_id=chart_id,
        domain=(0.0, 1.0),
        value_format=percent,
        references=[(0.5, "50%")],
    )


def _principle_charts(principles: list[dict[str, Any]]) -> list[Any]:
    charts = []
    for key, title, color in (
        ("relevance", "Relevance: share of pairs where the principle applies", PALETTE["accent"]),
        ("accuracy", "Accuracy where the principle applies", PALETTE["for"]),
        ("decisive", "Decisive share: named the deciding principle", PALETTE["invalid"]),
    ):
        bars = [
            Bar(
                label=f"{p['number']}. {p['text']}",
                value=p[key]["value"],
                low=p[key]["lo"],
                high=p[key]["hi"],
                color=color,
                note=f"{p[key]['k']:g} of {p[key]['n']}",
            )
            for p in principles
        ]
        charts.append(
            (
                title,
                bar_chart(
                    bars,
                    title=title,
                    chart_id=f"principles-{key}",
                    domain=(0.0, 1.0),
                    value_format=percent,
                    label_chars=36,
                ),
            )
        )
    return charts


_JUDGE_COLUMNS = ("a", "b", "abstain", "inconsistent")


def _metric_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The report table turned on its side for one evaluation, each with its definition."""
    return [
        {
            "title": c["title"],
            "definition": c["definition"],
            "value": c["value"],
            "interval": c["interval"],
            "estimate": c["estimate"],
        }
        for c in row["cells"]
    ]


def _confusion_rows(metrics: dict[str, Any]) -> list[tuple[str, list[int]]]:
    confusion = metrics.get("confusion") or {}
    rows = [
        (f"Response {side.upper()}", [confusion.get(side, {}).get(c, 0) for c in _JUDGE_COLUMNS])
        for side in ("a", "b")
    ]
    if metrics.get("n_ties"):
        ties = metrics.get("tie_outcomes") or {}
        rows.append(("Tie or both bad (not scored)", [ties.get(c, 0) for c in _JUDGE_COLUMNS]))
    return rows


@login_required
def evaluation_detail(request, study_id: int, evaluation_id: int):
    evaluation = _evaluation_for(request, study_id, evaluation_id)
    results = evaluation.results or {}
    metrics = results.get("metrics")
    columns = evaluation_reports.columns_for([evaluation])
    row = evaluation_reports.evaluation_row(evaluation, columns)
    judgements = results.get("judgements") or []
    context = {
        "study": evaluation.study,
        "evaluation": evaluation,
        "embedded_model": embedded_model_of(
            evaluation, evaluation.constitution.run if evaluation.constitution else None
        ),
        "small_sample": small_sample_warning(row["n_scored"], MIN_N_PAIRS, "scored pairs")
        if metrics
        else "",
        "row": row,
        "metric_rows": _metric_rows(row) if metrics else [],
        "confusion": _confusion_rows(metrics) if metrics else [],
        "principle_rows": [
            {
                "number": p["number"],
                "text": p["text"],
                "relevance": evaluation_reports.format_estimate(p["relevance"]),
                "accuracy": evaluation_reports.format_estimate(p["accuracy"]),
                "decisive": evaluation_reports.format_estimate(p["decisive"]),
            }
            for p in (metrics or {}).get("principles", [])
        ],
        "columns": columns,
        "metrics": metrics,
        "status": evaluation_reports.evaluation_status(evaluation),
        "settings": {
            k: v
            for k, v in (evaluation.config or {}).items()
            if k not in ("labels", "principles", "ground_truth", "eval") and not k.startswith("_")
        }
        | (evaluation.config or {}).get("eval", {}),
        "principles": (evaluation.config or {}).get("principles"),
        "ground_truth": (evaluation.config or {}).get("ground_truth"),
        "summary_chart": _summary_chart(metrics, "summary", columns) if metrics else None,
        "principle_charts": _principle_charts(metrics["principles"])
        if metrics and metrics.get("principles")
        else [],
        "similarity": results.get("similarity"),
        "similarity_reference": results.get("similarity_reference"),
        "similarity_llm": results.get("similarity_llm"),
        "similarity_llm_reference": results.get("similarity_llm_reference"),
        "judgements": judgements[:200],
        "n_judgements": len(judgements),
        "partners": Evaluation.objects.filter(
            study=evaluation.study, comparison_group=evaluation.comparison_group
        )
        .exclude(pk=evaluation.pk)
        .count(),
    }
    return render(request, "constitutions/evaluation_detail.html", context)


@login_required
def evaluation_status(request, study_id: int, evaluation_id: int):
    evaluation = _evaluation_for(request, study_id, evaluation_id)
    return JsonResponse(evaluation_reports.evaluation_status(evaluation))


@login_required
@require_POST
def evaluation_cancel(request, study_id: int, evaluation_id: int):
    evaluation = _evaluation_for(request, study_id, evaluation_id)
    evaluations.evaluation_cancel(evaluation=evaluation)
    messages.info(request, "Cancelling: running batches stop within a second or two.")
    return redirect("evaluation_detail", study_id=study_id, evaluation_id=evaluation.pk)


@login_required
@require_POST
def evaluation_resume(request, study_id: int, evaluation_id: int):
    evaluation = _evaluation_for(request, study_id, evaluation_id)
    try:
        evaluations.evaluation_resume(evaluation=evaluation)
    except EvaluationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Resumed: stored batches are kept, only the rest is judged.")
    return redirect("evaluation_detail", study_id=study_id, evaluation_id=evaluation.pk)


@login_required
def evaluation_compare(request, study_id: int, group: str):
    study, rows_in = _group_for(request, study_id, group)
    columns = evaluation_reports.columns_for(rows_in)
    rows = [evaluation_reports.evaluation_row(e, columns) for e in rows_in]
    done = [r for r in rows if r["metrics"]]
    charts = [
        (
            title,
            bar_chart(
                _metric_bars(done, key),
                title=f"{title} with 95% intervals",
                chart_id=f"compare-{key}",
                domain=(0.0, 1.0),
                value_format=percent,
                references=[(0.5, "50%")] if key.startswith("accuracy") else [],
                label_chars=36,
            ),
        )
        for key, title in ((c.key, c.title) for c in columns if c.percent)
    ]
    context = {
        "study": study,
        "group": group,
        "rows": rows,
        "columns": columns,
        "charts": charts if done else [],
        "differences": evaluation_reports.comparison_differences(rows_in),
        "has_similarity": any(r["similarity"] is not None for r in rows),
        "any_active": any(r["evaluation"].is_active for r in rows),
        "train_split": any(r["split"] == "train" for r in rows),
        "embedded_model": embedded_model_of(*rows_in),
        "small_sample": small_sample_warning(
            min(r["n_scored"] or 0 for r in done), MIN_N_PAIRS, "scored pairs"
        )
        if done
        else "",
    }
    return render(request, "constitutions/evaluation_compare.html", context)


# --------------------------------------------------------------------------- exports


def _csv_response(rows: list[list[Any]], filename: str) -> HttpResponse:
    response = HttpResponse(csv_text(None, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def evaluation_csv_response(evaluation: Evaluation) -> HttpResponse:
    rows = [list(evaluation_reports.PAIR_CSV_HEADER)]
    rows += evaluation_reports.evaluation_pair_rows(evaluation=evaluation)
    return _csv_response(rows, f"evaluation-{evaluation.pk}-pairs.csv")


def evaluation_json_response(evaluation: Evaluation) -> HttpResponse:
    document = evaluation_reports.evaluation_export_document(evaluation=evaluation)
    response = HttpResponse(
        json.dumps(document, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="evaluation-{evaluation.pk}.json"'
    return response


def comparison_csv_response(group: str, rows: list[Evaluation]) -> HttpResponse:
    return _csv_response(
        evaluation_reports.comparison_csv_rows(rows), f"evaluation-comparison-{group[:12]}.csv"
    )


@login_required
def evaluation_export_csv(request, study_id: int, evaluation_id: int):
    return evaluation_csv_response(_evaluation_for(request, study_id, evaluation_id))


@login_required
def evaluation_export_json(request, study_id: int, evaluation_id: int):
    return evaluation_json_response(_evaluation_for(request, study_id, evaluation_id))


@login_required
def evaluation_compare_csv(request, study_id: int, group: str):
    _study, rows = _group_for(request, study_id, group)
    return comparison_csv_response(group, rows)
