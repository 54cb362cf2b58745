"""Researcher pages: training-data export of a constitution, steering evaluations.

Ownership comes from annotations.access (a stranger's study or object is a 404); the
work is done by gcai.modeling.exports, services and selectors.
"""

from __future__ import annotations

import itertools
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.access import object_for, study_for
from gcai.constitutions.models import Constitution
from gcai.modeling import exports, selectors, services
from gcai.modeling.exports import ExportError
from gcai.modeling.forms import ExportForm, SteeringForm
from gcai.modeling.models import SteeringKind, SteeringRun
from gcai.modeling.services import SteeringError

PREVIEW_ROWS = 3


def _constitution_for(request, study_id: int, constitution_id: int) -> Constitution:
    study = study_for(request.user, study_id)
    return object_for(
        Constitution.objects.filter(study=study).select_related("study"),
        request.user,
        constitution_id,
    )


def _run_for(request, study_id: int, run_id: int) -> SteeringRun:
    study = study_for(request.user, study_id)
    return object_for(
        SteeringRun.objects.filter(study=study).select_related(
            "study", "constitution", "constitution_b"
        ),
        request.user,
        run_id,
    )


# --------------------------------------------------------------------------- export


_SETTINGS = (
    "kind",
    "style",
    "placement",
    "reword",
    "reword_from",
    "reword_to",
    "header",
    "relevant_only",
)


def _plan_from_query(request, constitution: Constitution):
    """The form (bound to the query string once submitted) and the plan, or None with
    the reason on the form. Unsubmitted, the defaults apply."""
    if "kind" not in request.GET:
        form = ExportForm(constitution=constitution)
        settings = {name: form.fields[name].initial or False for name in _SETTINGS}
        try:
            return form, exports.export_plan(constitution=constitution, settings=settings)
        except ExportError:
            return form, None
    form = ExportForm(request.GET, constitution=constitution)
    if not form.is_valid():
        return form, None
    data = form.cleaned_data
    try:
        plan = exports.export_plan(
            constitution=constitution,
            settings=form.settings_dict(),
            dataset_ids=[d.pk for d in data["datasets"]],
            evaluation_id=data["evaluation"].pk if data["evaluation"] else None,
        )
    except ExportError as exc:
        form.add_error(None, str(exc))
        return form, None
    return form, plan


@login_required
@require_GET
def training_export(request, study_id: int, constitution_id: int):
    constitution = _constitution_for(request, study_id, constitution_id)
    form, plan = _plan_from_query(request, constitution)
    error = ""
    if plan is None and not form.errors:
        try:
            exports.export_plan(constitution=constitution)
        except ExportError as exc:
            error = str(exc)
    provenance = exports.export_provenance(plan) if plan else None
    preview = []
    if plan is not None:
        preview = [
            json.dumps(row, ensure_ascii=False, indent=1)
            for row in itertools.islice(exports.export_rows(plan, "train"), PREVIEW_ROWS)
        ]
    query = request.GET.urlencode()
    return render(
        request,
        "modeling/export.html",
        {
            "study": constitution.study,
            "constitution": constitution,
            "form": form,
            "plan": plan,
            "error": error,
            "provenance": provenance,
            "preview": preview,
            "query": query,
        },
    )


@login_required
@require_GET
def training_export_file(request, study_id: int, constitution_id: int, part: str):
    constitution = _constitution_for(request, study_id, constitution_id)
    if part not in exports.PARTS:
        raise Http404("No such file.")
    form, plan = _plan_from_query(request, constitution)
    if plan is None:
        return HttpResponse(
            "; ".join(str(e) for errors in form.errors.values() for e in errors)
            or "This constitution cannot be exported (only published ones can).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    response = StreamingHttpResponse(
        exports.export_lines(plan, part), content_type="application/jsonl; charset=utf-8"
    )
    name = f"constitution-{constitution.pk}-v{constitution.version}-{plan.settings.kind}-{part}"
    response["Content-Disposition"] = f'attachment; filename="{name}.jsonl"'
    return response


@login_required
@require_GET
def training_export_provenance(request, study_id: int, constitution_id: int):
    constitution = _constitution_for(request, study_id, constitution_id)
    form, plan = _plan_from_query(request, constitution)
    if plan is None:
        errors = {k: [str(e) for e in v] for k, v in form.errors.items()}
        return JsonResponse({"errors": errors or {"constitution": ["not exportable"]}}, status=400)
    response = JsonResponse(
        exports.export_provenance(plan), json_dumps_params={"indent": 2, "ensure_ascii": False}
    )
    response["Content-Disposition"] = (
        f'attachment; filename="constitution-{constitution.pk}-provenance.json"'
    )
    return response


# --------------------------------------------------------------------------- steering


@login_required
def steering_list(request, study_id: int):
    study = study_for(request.user, study_id)
    runs = selectors.steering_runs_for_study(study=study)
    return render(request, "modeling/steering_list.html", {"study": study, "runs": runs})


@login_required
@require_http_methods(["GET", "POST"])
def steering_new(request, study_id: int):
    study = study_for(request.user, study_id)
    initial = {}
    if request.GET.get("constitution", "").isdigit():
        initial["constitution"] = int(request.GET["constitution"])
    form = SteeringForm(request.POST or None, request.FILES or None, study=study, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            upload = data["prompts_file"]
            if upload:
                prompts = services.prompts_from_file(data=upload.read(), name=upload.name)
                source = {"kind": "file", "name": upload.name}
            else:
                prompts = services.prompts_from_datasets(
                    study=study, split=data["split"], limit=data["limit"], seed=data["seed"]
                )
                source = {"kind": "dataset", "split": data["split"]}
            run = services.steering_create(
                study=study,
                constitution=data["constitution"],
                constitution_b=data["constitution_b"],
                kind=data["kind"],
                prompts=prompts,
                prompt_source=source,
                target=form.target(),
                placement=data["placement"],
                reword=data["reword"],
                max_tokens=data["max_tokens"],
                seed=data["seed"],
                batch_size=data["batch_size"],
                user=request.user,
            )
        except SteeringError as exc:
            form.add_error(None, str(exc))
        else:
            services.steering_start(run=run)
            messages.success(request, f"Started on {len(prompts)} prompts.")
            return redirect("steering_detail", study_id=study.pk, run_id=run.pk)
    return render(request, "modeling/steering_form.html", {"study": study, "form": form})


@login_required
def steering_detail(request, study_id: int, run_id: int):
    run = _run_for(request, study_id, run_id)
    context = {"study": run.study, "run": run, "prompt_count": len(run.config.get("prompts", []))}
    if run.kind == SteeringKind.CRITIQUE:
        context["critique_rows"] = selectors.critique_detail_rows(run)
    else:
        context["comparisons"] = selectors.steering_comparisons(run)
    return render(request, "modeling/steering_detail.html", context)


@login_required
@require_POST
def steering_cancel(request, study_id: int, run_id: int):
    run = _run_for(request, study_id, run_id)
    services.steering_cancel(run=run)
    return redirect("steering_detail", study_id=run.study_id, run_id=run.pk)


@login_required
@require_POST
def steering_resume(request, study_id: int, run_id: int):
    run = _run_for(request, study_id, run_id)
    try:
        services.steering_resume(run=run)
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("steering_detail", study_id=run.study_id, run_id=run.pk)


@login_required
@require_GET
def steering_export(request, study_id: int, run_id: int):
    """The report as JSON, or a critique run's SFT rows as JSON lines (streamed)."""
    run = _run_for(request, study_id, run_id)
    if run.kind == SteeringKind.CRITIQUE:
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in selectors.critique_rows(run))
        response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="critique-{run.pk}.jsonl"'
        return response
    document = {"run": run.pk, "status": run.status, "config": run.config, "results": run.results}
    response = JsonResponse(document, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="steering-{run.pk}.json"'
    return response
