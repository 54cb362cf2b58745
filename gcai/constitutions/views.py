"""Researcher pages for pipeline runs and constitutions.

Views stay thin: access through :mod:`annotations.access`, reads through
:mod:`gcai.constitutions.selectors`, writes through :mod:`gcai.constitutions.runs`
(the run engine) and :mod:`gcai.constitutions.services`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations import selectors as dataset_selectors
from annotations.access import study_for
from annotations.models import Study
from gcai.constitutions import run_exports, runs, selectors, services, stage_views
from gcai.constitutions.consensus import principles_consensus
from gcai.constitutions.forms import (
    ComparisonForm,
    ConstitutionEditForm,
    ConstitutionItemFormSet,
    RunForm,
    constitution_items_from_formset,
)
from gcai.constitutions.llm import embedded_model_of
from gcai.constitutions.models import Constitution, Method, PipelineRun
from gcai.constitutions.quality import QualityGateError, flags_as_dicts, quality_flags_for
from gcai.constitutions.run_progress import run_overall

LIST_LIMIT = 100


def _run_for(request, study_id: int, run_id: int) -> PipelineRun:
    """A run of a study the user researches, else 404 (the study check is the access rule)."""
    study = study_for(request.user, study_id)
    run = get_object_or_404(PipelineRun.objects.filter(study=study), pk=run_id)
    run.study = study  # spare a query: templates and selectors read run.study
    return run


def _constitution_for(request, study_id: int, constitution_id: int) -> Constitution:
    study = study_for(request.user, study_id)
    constitution = get_object_or_404(
        Constitution.objects.filter(study=study).select_related("run", "previous"),
        pk=constitution_id,
    )
    constitution.study = study
    return constitution


def _page_number(request) -> int:
    try:
        return max(1, int(request.GET.get("page", 1)))
    except ValueError:
        return 1


# --------------------------------------------------------------------------- study section


def _section_context(
    study: Study, *, run_form: RunForm | None = None, comparison_form: ComparisonForm | None = None
) -> dict:
    run_rows = list(selectors.run_list(study=study)[:LIST_LIMIT])
    return {
        "study": study,
        "runs": run_rows,
        "groups": selectors.run_comparison_groups(runs=run_rows),
        "constitutions": list(selectors.constitution_list(study=study)[:LIST_LIMIT]),
        "list_limit": LIST_LIMIT,
        "run_form": run_form or RunForm(study=study),
        "comparison_form": comparison_form or ComparisonForm(study=study),
        "split_datasets": dataset_selectors.datasets_without_training_pairs(study=study),
    }


@login_required
@require_GET
def study_constitutions(request, study_id: int):
    study = study_for(request.user, study_id)
    return render(request, "constitutions/section.html", _section_context(study))


@login_required
@require_POST
def run_create(request, study_id: int):
    study = study_for(request.user, study_id)
    form = RunForm(request.POST, study=study)
    if form.is_valid():
        try:
            with transaction.atomic():
                run = runs.run_create(study=study, user=request.user, **form.run_kwargs())
                runs.run_start(run=run)
        except ValueError as exc:
            form.add_engine_error(exc)
        else:
            messages.success(request, f"Run “{run}” queued.")
            return redirect("run_detail", study_id=study.pk, run_id=run.pk)
    context = _section_context(study, run_form=form)
    return render(request, "constitutions/section.html", context, status=400)


@login_required
@require_POST
def runs_create_comparison(request, study_id: int):
    study = study_for(request.user, study_id)
    form = ComparisonForm(request.POST, study=study)
    if form.is_valid():
        try:
            with transaction.atomic():
                gcai_run, icai_run = runs.runs_create_comparison(
                    study=study, user=request.user, **form.comparison_kwargs()
                )
                runs.run_start(run=gcai_run)
                runs.run_start(run=icai_run)
        except ValueError as exc:
            form.add_engine_error(exc)
        else:
            messages.success(
                request, "GCAI and the ICAI baseline are queued on the same training pairs."
            )
            url = reverse("run_compare", kwargs={"study_id": study.pk})
            return redirect(f"{url}?a={gcai_run.pk}&b={icai_run.pk}")
    context = _section_context(study, comparison_form=form)
    return render(request, "constitutions/section.html", context, status=400)


# --------------------------------------------------------------------------- runs


@login_required
@require_GET
def run_detail(request, study_id: int, run_id: int):
    run = _run_for(request, study_id, run_id)
    stages = selectors.run_stages_list(run=run)
    principles = selectors.run_principles(run=run)
    bridging = principles_consensus(
        study=run.study,
        items=[(p.rank, p, p.text) for p in principles],
        attribute=request.GET.get("attribute"),
        order=request.GET.get("order", "position"),
    )
    views = [stage_views.stage_artifact_view(run=run, info=info) for info in stages]
    partners = []
    if run.comparison_group:
        partners = list(
            PipelineRun.objects.filter(study=run.study, comparison_group=run.comparison_group)
            .exclude(pk=run.pk)
            .order_by("pk")
        )
    context = {
        "study": run.study,
        "run": run,
        "stage_title": selectors.stage_title(run.stage),
        "stages": stages,
        "overall": run_overall(run=run, stages=stages),
        "groups": stage_views.stage_groups(views=views, method=run.method),
        "stored_count": sum(1 for s in stages if s.stored),
        "principles": principles,
        "bridging": bridging,
        "constitutions": list(run.constitutions.order_by("version", "pk")),
        "partners": partners,
        "n_training_pairs": run.training_pairs.count(),
        "config": selectors.run_config_display(run=run),
        "embedded_model": embedded_model_of(run),
    }
    return render(request, "constitutions/run_detail.html", context)


@login_required
@require_GET
def run_stage(request, study_id: int, run_id: int, stage: str):
    run = _run_for(request, study_id, run_id)
    info = selectors.run_stage_get(run=run, stage=stage)
    if info is None:
        raise Http404("No such stage.")
    view = stage_views.stage_artifact_view(
        run=run, info=info, page=_page_number(request), status=request.GET.get("status", "")
    )
    context = {
        "study": run.study,
        "run": run,
        "view": view,
        "batches": selectors.run_batches_list(run=run, stage=stage) if info.batched else [],
    }
    return render(request, "constitutions/run_stage.html", context)


def _json_download(chunks, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def run_stage_export(request, study_id: int, run_id: int, stage: str):
    run = _run_for(request, study_id, run_id)
    try:
        batch = int(request.GET.get("batch", -1))
    except ValueError:
        raise Http404("No such batch.") from None
    chunks = run_exports.stage_artifact_stream(run=run, stage=stage, batch=batch)
    if chunks is None:
        raise Http404("This stage has no stored output.")
    suffix = "" if batch < 0 else f"-batch{batch}"
    return _json_download(chunks, f"run-{run.pk}-{stage}{suffix}.json")


@login_required
@require_GET
def run_export(request, study_id: int, run_id: int):
    run = _run_for(request, study_id, run_id)
    return _json_download(run_exports.run_artifacts_stream(run=run), f"run-{run.pk}-stages.json")


@login_required
@require_POST
def run_cancel(request, study_id: int, run_id: int):
    run = _run_for(request, study_id, run_id)
    if run.is_active:
        runs.run_cancel(run=run)
        messages.success(request, "Cancelling: running batches stop within a few seconds.")
    else:
        messages.error(request, "Only a queued or running run can be cancelled.")
    return redirect("run_detail", study_id=run.study_id, run_id=run.pk)


@login_required
@require_POST
def run_resume(request, study_id: int, run_id: int):
    run = _run_for(request, study_id, run_id)
    try:
        runs.run_resume(run=run)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Resuming from the last stored stage.")
    return redirect("run_detail", study_id=run.study_id, run_id=run.pk)


@login_required
@require_GET
def run_compare(request, study_id: int):
    study = study_for(request.user, study_id)
    study_runs = PipelineRun.objects.filter(study=study)
    choices = list(study_runs.order_by("-created_at", "-pk").only("id", "title", "method")[:200])
    a_id, b_id = request.GET.get("a"), request.GET.get("b")
    context = {"study": study, "choices": choices, "a_id": a_id, "b_id": b_id}
    if a_id and b_id:
        try:
            run_a = get_object_or_404(study_runs, pk=int(a_id))
            run_b = get_object_or_404(study_runs, pk=int(b_id))
        except ValueError:
            raise Http404("No such run.") from None
        context["comparison"] = selectors.run_comparison_get(run_a=run_a, run_b=run_b)
    return render(request, "constitutions/run_compare.html", context)


# --------------------------------------------------------------------------- constitutions


EVIDENCE_CAP = 5
EVIDENCE_CAP_MORE = 50


@login_required
@require_GET
def constitution_detail(request, study_id: int, constitution_id: int):
    constitution = _constitution_for(request, study_id, constitution_id)
    more = request.GET.get("evidence") == "more"
    items = selectors.constitution_items(constitution=constitution)
    evidence = selectors.principle_evidence_get(
        study=constitution.study,
        principle_ids=[item.principle_id for item in items],
        cap=EVIDENCE_CAP_MORE if more else EVIDENCE_CAP,
    )
    bridging = principles_consensus(
        study=constitution.study,
        items=[(item.position, item.principle, item.text) for item in items],
        attribute=request.GET.get("attribute"),
        order=request.GET.get("order", "position"),
    )
    context = {
        "study": constitution.study,
        "constitution": constitution,
        "bridging": bridging,
        "rows": [(item, evidence[item.principle_id]) for item in items],
        "versions": selectors.constitution_versions_list(constitution=constitution),
        "evidence_more": more,
        "evidence_cap": EVIDENCE_CAP_MORE if more else EVIDENCE_CAP,
        "is_gcai": constitution.method == Method.GCAI,
        "embedded_model": embedded_model_of(constitution.run),
        "quality_flags": []
        if constitution.is_published
        else flags_as_dicts(
            quality_flags_for(items, {pid: ev.counts for pid, ev in evidence.items()})
        ),
    }
    return render(request, "constitutions/constitution_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def constitution_edit(request, study_id: int, constitution_id: int):
    constitution = _constitution_for(request, study_id, constitution_id)
    items = selectors.constitution_items(constitution=constitution)
    initial = [
        {"principle": i.principle_id, "text": i.text, "position": i.position, "keep": True}
        for i in items
    ]
    data = request.POST if request.method == "POST" else None
    formset = ConstitutionItemFormSet(data, initial=initial, prefix="items")
    title_form = ConstitutionEditForm(data, initial={"title": constitution.title})
    error = ""
    if data is not None and formset.is_valid() and title_form.is_valid():
        title = title_form.cleaned_data["title"]
        try:
            target = services.constitution_new_version(
                constitution=constitution,
                items=constitution_items_from_formset(formset),
                user=request.user,
                title=title if title != constitution.title else None,
            )
        except services.ConstitutionError as exc:
            error = str(exc)
        else:
            if target.pk == constitution.pk:
                messages.success(request, "Draft saved.")
            else:
                messages.success(
                    request,
                    f"Saved as version {target.version}, a new draft; v{constitution.version} stays published.",
                )
            return redirect(
                "constitution_detail", study_id=constitution.study_id, constitution_id=target.pk
            )
    by_principle = {i.principle_id: i for i in items}
    rows = []
    for form in formset.forms:
        pid = form["principle"].value()
        try:
            item = by_principle.get(int(pid))
        except (TypeError, ValueError):
            item = None
        rows.append((form, item))
    context = {
        "study": constitution.study,
        "constitution": constitution,
        "formset": formset,
        "title_form": title_form,
        "rows": rows,
        "error": error,
    }
    return render(
        request,
        "constitutions/constitution_edit.html",
        context,
        status=400 if data is not None else 200,
    )


@login_required
@require_POST
def constitution_publish(request, study_id: int, constitution_id: int):
    constitution = _constitution_for(request, study_id, constitution_id)
    try:
        services.constitution_publish(
            constitution=constitution,
            override=request.POST.get("override") == "1",
            user=request.user,
        )
    except QualityGateError as exc:
        messages.error(request, str(exc))
    except services.ConstitutionError as exc:
        messages.error(request, f"Not published: {exc}")
    else:
        messages.success(request, f"Version {constitution.version} is published and now immutable.")
    return redirect(
        "constitution_detail", study_id=constitution.study_id, constitution_id=constitution.pk
    )


@login_required
@require_GET
def pair_detail(request, study_id: int, pair_id: int):
    """A preference pair as evidence: linked from every principle it supports."""
    from annotations.models import PreferencePair
    from gcai.constitutions.evidence import pair_evidence_get

    study = study_for(request.user, study_id)
    try:
        context = pair_evidence_get(study=study, pair_id=pair_id)
    except PreferencePair.DoesNotExist:
        raise Http404("No such pair in this study.") from None
    return render(request, "constitutions/pair_detail.html", {"study": study, **context})
