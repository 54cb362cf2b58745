"""The study Data page: upload -> preview -> import, and file exports.

An upload is staged on disk under an unguessable token between the preview and the
confirmed import, so a large file is sent once and read twice (first rows for the
preview, everything for the import) without ever sitting in memory or in the session.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotations import exports, imports, selectors
from annotations.access import study_for
from annotations.importers import DataImportError
from annotations.importers.readers import too_large_message
from annotations.io_forms import DataImportForm, SplitForm
from annotations.models import Dataset, Moderation, Split, Study
from annotations.splits import pairs_assign_split
from gcai.dbid import is_db_id

REPORT_SESSION_KEY = "gcai_import_report"
STAGE_MAX_AGE_SECONDS = 24 * 3600


# --- Staged uploads ------------------------------------------------------------------------
def _stage_dir(study: Study) -> Path:
    return Path(settings.VAR_DIR) / "imports" / str(study.pk)


def _staged_path(study: Study, token: str) -> Path:
    return _stage_dir(study) / f"{token}.upload"


def _stage(study: Study, upload) -> str:
    directory = _stage_dir(study)
    directory.mkdir(parents=True, exist_ok=True)
    # Abandoned previews would otherwise pile up: drop the day-old ones on each upload.
    cutoff = time.time() - STAGE_MAX_AGE_SECONDS
    for old in directory.glob("*.upload"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    limit = int(settings.GCAI_IMPORT_MAX_BYTES)
    if upload.size is not None and upload.size > limit:
        raise DataImportError(too_large_message(upload.size, limit), field="file")
    token = secrets.token_hex(16)
    path = _staged_path(study, token)
    written = 0
    with path.open("wb") as out:
        for chunk in upload.chunks():
            written += len(chunk)
            if written > limit:
                break
            out.write(chunk)
    if written > limit:
        # A refused upload is not kept for a second try: it is deleted at once.
        path.unlink(missing_ok=True)
        raise DataImportError(too_large_message(None, limit), field="file")
    return token


# --- Page ------------------------------------------------------------------------------------
def _data_context(study: Study, **extra: Any) -> dict[str, Any]:
    Constitution = apps.get_model("constitutions", "Constitution")
    Survey = apps.get_model("surveys", "Survey")
    datasets = study.datasets.annotate(
        n_pairs=Count("pairs", distinct=True),
        n_train=Count("pairs", filter=Q(pairs__split=Split.TRAIN), distinct=True),
        n_test=Count("pairs", filter=Q(pairs__split=Split.TEST), distinct=True),
        n_unassigned=Count("pairs", filter=Q(pairs__split=Split.UNASSIGNED), distinct=True),
        n_annotations=Count("pairs__annotations", distinct=True),
    ).order_by("name")
    statements = study.statements.aggregate(
        total=Count("id"),
        approved=Count("id", filter=Q(moderation=Moderation.APPROVED)),
        pending=Count("id", filter=Q(moderation=Moderation.PENDING)),
    )
    context = {
        "study": study,
        "datasets": datasets,
        "statements": statements,
        "constitutions": Constitution.objects.filter(study=study).order_by("title", "-version"),
        "surveys": Survey.objects.filter(study=study).order_by("-created_at"),
        "pair_exports": [("jsonl", "JSONL"), ("csv", "CSV"), ("icai_json", "ICAI JSON")],
        "split_form": SplitForm(),
    }
    context.update(extra)
    return context


@login_required
@require_GET
def data_page(request, study_id: int):
    """Upload form, last import report, datasets with export buttons, other exports."""
    study = study_for(request.user, study_id)
    report = request.session.pop(REPORT_SESSION_KEY, None)
    labels = None
    if report and report.get("kind") == "pairs" and report.get("dataset_id"):
        labels = selectors.dataset_label_counts(dataset_id=report["dataset_id"])
    context = _data_context(study, form=DataImportForm(), report=report, labels=labels)
    return render(request, "annotations/data.html", context)


def _preview(study: Study, data: dict[str, Any]):
    path = _staged_path(study, data["token"])
    skip_invalid = bool(data.get("skip_invalid"))
    if data["kind"] == "statements":
        return imports.statements_preview(
            file=path, mapping=data.get("mapping") or None, skip_invalid=skip_invalid
        )
    return imports.pairs_preview(
        file=path,
        format=data.get("format") or None,
        mapping=data.get("mapping") or None,
        seed=data.get("seed") or 0,
        skip_invalid=skip_invalid,
    )


def _render_preview(request, study: Study, form: DataImportForm, *, error: str = ""):
    data = form.cleaned_data
    preview = None
    try:
        if not _staged_path(study, data["token"]).exists():
            raise DataImportError("the upload was refused and deleted; upload a smaller file")
        preview = _preview(study, data)
    except DataImportError as exc:
        error = error or str(exc)
        if exc.field == "file":  # too large: no other format or mapping can help
            _staged_path(study, data["token"]).unlink(missing_ok=True)
    if preview is not None and preview.error:
        error = error or preview.error
    confirm = DataImportForm(
        initial={
            **{k: v for k, v in data.items() if k != "file"},
            "format": data.get("format")
            or (preview.format if preview and data["kind"] == "pairs" else ""),
        }
    )
    context = {
        "study": study,
        "preview": preview,
        "error": error,
        "confirm": confirm,
        "kind": data["kind"],
        "filename": data.get("filename", ""),
        "dataset_exists": study.datasets.filter(name=data.get("dataset", "")).exists(),
    }
    return render(request, "annotations/data_preview.html", context, status=400 if error else 200)


@login_required
@require_POST
def data_preview(request, study_id: int):
    """Stage the upload (or reuse a staged one) and show the detected format and first rows."""
    study = study_for(request.user, study_id)
    form = DataImportForm(request.POST, request.FILES)
    if not form.is_valid():
        context = _data_context(study, form=form, report=None)
        return render(request, "annotations/data.html", context, status=400)
    if form.cleaned_data.get("file") is not None:
        try:
            form.cleaned_data["token"] = _stage(study, form.cleaned_data["file"])
        except DataImportError as exc:
            form.add_error("file", f"Nothing was imported. {str(exc)[:1].upper()}{str(exc)[1:]}")
            context = _data_context(study, form=form, report=None)
            return render(request, "annotations/data.html", context, status=400)
    if not _staged_path(study, form.cleaned_data["token"]).exists():
        messages.error(request, "That upload has expired; please upload the file again.")
        return redirect("study_data", study_id=study.pk)
    return _render_preview(request, study, form)


@login_required
@require_POST
def data_import(request, study_id: int):
    """Import a staged upload as previewed (or discard it)."""
    study = study_for(request.user, study_id)
    form = DataImportForm(request.POST)
    if not form.is_valid() or not form.cleaned_data.get("token"):
        messages.error(request, "Nothing to import; upload the file again.")
        return redirect("study_data", study_id=study.pk)
    data = form.cleaned_data
    path = _staged_path(study, data["token"])
    if request.POST.get("action") == "cancel":
        path.unlink(missing_ok=True)
        messages.info(request, "Import cancelled; nothing was saved.")
        return redirect("study_data", study_id=study.pk)
    if not path.exists():
        messages.error(request, "That upload has expired; please upload the file again.")
        return redirect("study_data", study_id=study.pk)
    try:
        if data["kind"] == "statements":
            report = imports.statements_import(
                study=study,
                file=path,
                mapping=data.get("mapping") or None,
                filename=data.get("filename", ""),
                skip_invalid=bool(data.get("skip_invalid")),
            )
        else:
            report = imports.pairs_import(
                study=study,
                dataset_name=data.get("dataset", ""),
                file=path,
                format=data.get("format") or None,
                mapping=data.get("mapping") or None,
                seed=data.get("seed") or 0,
                split_test_fraction=data.get("split_test_fraction"),
                filename=data.get("filename", ""),
                skip_invalid=bool(data.get("skip_invalid")),
            )
    except DataImportError as exc:
        if exc.field == "file":
            path.unlink(missing_ok=True)
        return _render_preview(
            request,
            study,
            form,
            error=f"Nothing was imported. {str(exc)[:1].upper()}{str(exc)[1:]}",
        )
    path.unlink(missing_ok=True)
    request.session[REPORT_SESSION_KEY] = {**report.as_dict(), "summary": report.summary}
    messages.success(request, report.summary)
    return redirect("study_data", study_id=study.pk)


@login_required
@require_POST
def dataset_split(request, study_id: int, dataset_id: int):
    """Assign a seeded, stratified train/test split to a dataset's unassigned pairs."""
    study = study_for(request.user, study_id)
    dataset = get_object_or_404(Dataset, pk=dataset_id, study=study)
    form = SplitForm(request.POST)
    # The dataset's own settings page posts here too and wants to come back to itself.
    back = (
        redirect("study_dataset_settings", study_id=study.pk, dataset_id=dataset.pk)
        if request.POST.get("back") == "dataset"
        else redirect("study_data", study_id=study.pk)
    )
    if not form.is_valid():
        messages.error(request, "Give a test fraction between 0.01 and 0.99.")
        return back
    result = pairs_assign_split(
        dataset=dataset,
        test_fraction=form.cleaned_data["test_fraction"],
        seed=form.cleaned_data.get("seed") or 0,
        reassign=form.cleaned_data.get("reassign", False),
    )
    messages.success(
        request,
        f"{dataset.name}: {result['assigned_train']} pairs to train and "
        f"{result['assigned_test']} to test.",
    )
    return back


# --- Exports ---------------------------------------------------------------------------------
def download(chunks, kind: exports.ExportKind, filename: str) -> StreamingHttpResponse:
    """A streamed file download (also used by the API)."""
    if isinstance(chunks, str):
        chunks = [chunks]
    response = StreamingHttpResponse(chunks, content_type=kind.content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _export_kind(request, table: dict[str, exports.ExportKind], default: str):
    fmt = request.GET.get("fmt", default)
    kind = table.get(fmt)
    if kind is None:
        return fmt, None
    return fmt, kind


def dataset_from_query(study: Study, value: str | None) -> Dataset | None:
    if not value:
        return None
    try:
        pk = int(value)
        if not is_db_id(pk):
            raise ValueError(value)
        return Dataset.objects.get(pk=pk, study=study)
    except (ValueError, Dataset.DoesNotExist):
        raise Http404("No such dataset in this study.") from None


def _bad_format(fmt: str, table: dict[str, Any]) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(
        f"Unknown export format {fmt!r}; use one of: {', '.join(table)}.",
        content_type="text/plain",
    )


@login_required
@require_GET
def export_pairs(request, study_id: int):
    """Pairs with all annotations: ``?fmt=jsonl|csv|icai_json`` and optional ``dataset=<id>``."""
    study = study_for(request.user, study_id)
    fmt, kind = _export_kind(request, exports.PAIR_EXPORTS, "jsonl")
    if kind is None:
        return _bad_format(fmt, exports.PAIR_EXPORTS)
    dataset = dataset_from_query(study, request.GET.get("dataset"))
    name = exports.export_filename(
        "study", study.pk, "pairs", dataset.name if dataset else "", extension=kind.extension
    )
    return download(kind.function(study=study, dataset=dataset), kind, name)


@login_required
@require_GET
def export_statements(request, study_id: int):
    """Value statements with moderation state: ``?fmt=jsonl|csv``."""
    study = study_for(request.user, study_id)
    fmt, kind = _export_kind(request, exports.STATEMENT_EXPORTS, "csv")
    if kind is None:
        return _bad_format(fmt, exports.STATEMENT_EXPORTS)
    name = exports.export_filename("study", study.pk, "statements", extension=kind.extension)
    return download(kind.function(study=study), kind, name)


def constitution_in_study(study: Study, constitution_id: int):
    Constitution = apps.get_model("constitutions", "Constitution")
    return get_object_or_404(
        Constitution.objects.select_related("study", "run"), pk=constitution_id, study=study
    )


def survey_in_study(study: Study, survey_id: int):
    Survey = apps.get_model("surveys", "Survey")
    return get_object_or_404(
        Survey.objects.select_related("constitution_a", "constitution_b"), pk=survey_id, study=study
    )


@login_required
@require_GET
def export_constitution(request, study_id: int, constitution_id: int):
    """A constitution as ``?fmt=json`` (principles, origins, stats, evidence), ``md`` or ``txt``."""
    study = study_for(request.user, study_id)
    constitution = constitution_in_study(study, constitution_id)
    fmt, kind = _export_kind(request, exports.CONSTITUTION_EXPORTS, "json")
    if kind is None:
        return _bad_format(fmt, exports.CONSTITUTION_EXPORTS)
    name = exports.export_filename(
        constitution.title, f"v{constitution.version}", extension=kind.extension
    )
    return download(kind.function(constitution=constitution), kind, name)


@login_required
@require_GET
def export_survey_answers(request, study_id: int, survey_id: int):
    """Survey answers as CSV, one row per answer, participants as pseudonyms."""
    study = study_for(request.user, study_id)
    survey = survey_in_study(study, survey_id)
    kind = exports.SURVEY_EXPORTS["csv"]
    name = exports.export_filename("survey", survey.pk, "answers", extension=kind.extension)
    return download(kind.function(survey=survey), kind, name)
