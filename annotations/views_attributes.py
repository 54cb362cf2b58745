"""Attributes of people: the aggregated page, the Prolific upload and the export.

Only aggregates leave annotations.attributes; groups smaller than the study's minimum
are suppressed there, so nothing here can show them.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotations import attributes
from annotations.access import study_for
from gcai.csvsafe import csv_lines


class ProlificUploadForm(forms.Form):
    file = forms.FileField(
        label="Prolific demographic export (CSV)",
        help_text='Download it from your Prolific study ("Download demographic data"). '
        'Rows are matched on "Participant id".',
    )


class MinGroupSizeForm(forms.Form):
    min_group_size = forms.IntegerField(
        min_value=2,
        max_value=1000,
        label="Minimum group size",
        help_text="Groups of fewer people are never shown, exported or used.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def study_attributes(request, study_id: int):
    study = study_for(request.user, study_id)
    upload = ProlificUploadForm()
    size_form = MinGroupSizeForm(initial={"min_group_size": study.min_group_size})
    report = None
    status = 200
    if request.method == "POST" and "min_group_size" in request.POST:
        size_form = MinGroupSizeForm(request.POST)
        if size_form.is_valid():
            study.min_group_size = size_form.cleaned_data["min_group_size"]
            study.save(update_fields=["min_group_size"])
            messages.success(request, "Minimum group size saved.")
            return redirect("study_attributes", study_id=study.pk)
        status = 400
    elif request.method == "POST":
        upload = ProlificUploadForm(request.POST, request.FILES)
        if upload.is_valid():
            try:
                report = attributes.attributes_import_prolific(
                    study=study, file=upload.cleaned_data["file"]
                ).as_dict()
            except attributes.AttributeImportError as exc:
                upload.add_error("file", f"{exc} Nothing was imported.")
                status = 400
        else:
            status = 400
    context = {
        "study": study,
        "summary": attributes.attribute_summary(study=study),
        "upload": upload,
        "size_form": size_form,
        "report": report,
    }
    return render(request, "annotations/attributes.html", context, status=status)


@login_required
@require_GET
def study_attributes_export(request, study_id: int):
    study = study_for(request.user, study_id)
    rows = attributes.attribute_export_rows(study=study)
    response = StreamingHttpResponse(
        csv_lines(attributes.EXPORT_HEADER, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-attributes.csv"'
    return response
