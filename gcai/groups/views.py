"""Researcher pages: per-group constitutions and their divergence report."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.access import object_for, study_for
from annotations.attributes import attribute_summary
from gcai.csvsafe import csv_lines
from gcai.groups import report as reports
from gcai.groups import services
from gcai.groups.forms import GroupComparisonForm
from gcai.groups.models import GroupComparison


def _comparison_for(request, study_id: int, comparison_id: int) -> GroupComparison:
    study = study_for(request.user, study_id)
    return object_for(
        GroupComparison.objects.filter(study=study).select_related("study"),
        request.user,
        comparison_id,
    )


def _attributes(study) -> list[str]:
    """Attributes with at least two shown groups: the only ones a comparison can use."""
    return [a["key"] for a in attribute_summary(study=study) if len(a["values"]) >= 2]


def heat(value: float | None) -> str:
    """A cell colour: red at 0, white at chance (0.5), green at 1."""
    if value is None:
        return "background:#eee"
    v = max(0.0, min(1.0, value))
    if v >= 0.5:
        t = (v - 0.5) * 2
        r, g, b = round(255 - 155 * t), round(255 - 55 * t), round(255 - 155 * t)
    else:
        t = (0.5 - v) * 2
        r, g, b = 255, round(255 - 155 * t), round(255 - 155 * t)
    return f"background:rgb({r},{g},{b})"


@login_required
@require_http_methods(["GET", "POST"])
def group_comparison_list(request, study_id: int):
    study = study_for(request.user, study_id)
    form = GroupComparisonForm(request.POST or None, attributes=_attributes(study))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                comparison = services.group_comparison_create(
                    study=study,
                    attribute=data["attribute"],
                    methods=data["methods"],
                    user=request.user,
                    seed=data["seed"] or 0,
                    max_training_pairs=data["max_training_pairs"],
                    eval_limit=data["eval_limit"],
                )
            except services.GroupComparisonError as exc:
                form.add_error(None, str(exc))
            else:
                services.group_comparison_start(comparison=comparison)
                messages.success(request, "Building one constitution per group.")
                return redirect("group_comparison_detail", study.pk, comparison.pk)
        status = 400
    rows = list(GroupComparison.objects.filter(study=study))
    statuses = reports.comparison_statuses(rows)
    comparisons = [(c, statuses[c.pk]) for c in rows]
    return render(
        request,
        "groups/list.html",
        {"study": study, "form": form, "comparisons": comparisons},
        status=status,
    )


@login_required
@require_GET
def group_comparison_detail(request, study_id: int, comparison_id: int):
    comparison = _comparison_for(request, study_id, comparison_id)
    try:
        report = reports.divergence_report(comparison)
    except reports.ReportUnavailable as exc:
        return render(
            request,
            "groups/detail.html",
            {"study": comparison.study, "comparison": comparison, "unavailable": str(exc)},
        )
    for matrix in report["matrix"].values():
        for line in matrix["cells"]:
            for cell in line:
                cell["style"] = heat((cell["accuracy"] or {}).get("value"))
    return render(
        request,
        "groups/detail.html",
        {"study": comparison.study, "comparison": comparison, "report": report},
    )


@login_required
@require_POST
def group_comparison_resume(request, study_id: int, comparison_id: int):
    comparison = _comparison_for(request, study_id, comparison_id)
    services.group_comparison_resume(comparison=comparison)
    messages.success(request, "Continuing: failed steps are resumed from where they stopped.")
    return redirect("group_comparison_detail", study_id, comparison.pk)


@login_required
@require_POST
def group_comparison_cancel(request, study_id: int, comparison_id: int):
    comparison = _comparison_for(request, study_id, comparison_id)
    services.group_comparison_cancel(comparison=comparison)
    messages.success(request, "Cancelling the comparison's runs and evaluations.")
    return redirect("group_comparison_detail", study_id, comparison.pk)


@login_required
@require_GET
def group_comparison_export(request, study_id: int, comparison_id: int, fmt: str):
    comparison = _comparison_for(request, study_id, comparison_id)
    try:
        report = reports.divergence_report(comparison, with_principles=fmt == "json")
    except reports.ReportUnavailable as exc:
        return HttpResponse(str(exc), status=403, content_type="text/plain")
    name = f"study-{comparison.study_id}-groups-{comparison.pk}"
    if fmt == "csv":
        response = StreamingHttpResponse(
            csv_lines(reports.CSV_HEADER, reports.matrix_csv_rows(report)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    response = HttpResponse(json.dumps(report, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{name}.json"'
    return response
