"""Researcher pages for studies. Ownership checks come from annotations.access."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods

from annotations import selectors, services
from annotations.access import has_role, studies_for, study_for
from annotations.dashboard import study_dashboard
from annotations.forms import TEXT_FIELDS, InvitationForm, StudyForm
from annotations.invitations import invitations_pending
from annotations.models import Role


@login_required
def home(request):
    studies = selectors.study_list_for_user(user=request.user)
    annotating = studies_for(request.user, role=Role.ANNOTATOR)
    return render(request, "annotations/home.html", {"studies": studies, "annotating": annotating})


@login_required
@require_http_methods(["GET", "POST"])
def study_create(request):
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = {
            k: v
            for k, v in form.cleaned_data.items()
            if k not in ("name", "description", *TEXT_FIELDS)
        }
        study = services.study_create(
            user=request.user,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            value_questions=form.value_questions(),
            attribute_questions=form.attribute_questions(),
            **fields,
        )
        messages.success(request, f"Study “{study.name}” created.")
        return redirect("study_detail", study_id=study.pk)
    return render(request, "annotations/study_form.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def study_edit(request, study_id: int):
    study = study_for(request.user, study_id)
    form = StudyForm(request.POST or None, instance=study)
    if request.method == "POST" and form.is_valid():
        fields = {k: v for k, v in form.cleaned_data.items() if k not in TEXT_FIELDS}
        try:
            study = services.study_update(
                study=study,
                value_questions=form.value_questions(),
                attribute_questions=form.attribute_questions(),
                **fields,
            )
        except services.StudyChangeRefused as exc:
            form.add_error(exc.field, str(exc))
        else:
            messages.success(request, "Study settings saved.")
            return redirect("study_detail", study_id=study.pk)
        study.refresh_from_db()
    return render(request, "annotations/study_form.html", {"form": form, "study": study})


def _url_or_empty(name: str, *args) -> str:
    """Reverse ``name`` if that page exists in this installation (pages of other
    sections are optional), else ""."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@login_required
def study_detail(request, study_id: int):
    """The study dashboard: progress, agreement, moderation state, invite links."""
    study = study_for(request.user, study_id)
    entry_url = request.build_absolute_uri(reverse("participant_entry", args=[study.entry_token]))
    context = {
        "study": study,
        "overview": selectors.study_overview(study=study),
        "dashboard": study_dashboard(study=study),
        "memberships": study.memberships.select_related("user").order_by("role", "user__username"),
        "invitation_form": InvitationForm(),
        "invitations": invitations_pending(study=study),
        "datasets": study.datasets.all(),
        "data_url": _url_or_empty("study_data", study.pk),
        "export_pairs_url": _url_or_empty("study_export_pairs", study.pk),
        "export_statements_url": _url_or_empty("study_export_statements", study.pk),
        "is_annotator": has_role(request.user, study, Role.ANNOTATOR),
        "entry_url": entry_url,
        "prolific_url": entry_url
        + "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}",
    }
    return render(request, "annotations/study_detail.html", context)
