"""Pages for study invitations: researchers make and withdraw them; the invitee, logged
in, accepts or declines. Logic lives in ``annotations.invitations``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotations.access import study_for
from annotations.forms import InvitationForm
from annotations.invitations import (
    INVITATION_DAYS,
    InvitationError,
    invitation_accept,
    invitation_create,
    invitation_for_token,
    invitation_revoke,
)


@login_required
@require_POST
def invitation_create_view(request, study_id: int):
    study = study_for(request.user, study_id)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role for the invitation.")
        return redirect("study_detail", study_id=study.pk)
    invitation, token = invitation_create(
        study=study,
        role=form.cleaned_data["role"],
        note=form.cleaned_data["note"],
        created_by=request.user,
    )
    link = request.build_absolute_uri(reverse("invitation_accept", args=[token]))
    context = {"study": study, "invitation": invitation, "link": link, "days": INVITATION_DAYS}
    return render(request, "annotations/invitation_created.html", context, status=201)


@login_required
@require_POST
def invitation_revoke_view(request, study_id: int, invitation_id: int):
    study = study_for(request.user, study_id)
    invitation_revoke(study=study, invitation_id=invitation_id)
    messages.success(request, "Invitation withdrawn: its link no longer works.")
    return redirect("study_detail", study_id=study.pk)


@login_required
@require_http_methods(["GET", "POST"])
def invitation_accept_view(request, token: str):
    try:
        invitation = invitation_for_token(token)
    except InvitationError as exc:
        return render(request, "annotations/invitation.html", {"error": str(exc)}, status=404)
    if request.method == "POST":
        if request.POST.get("decision") != "accept":
            messages.info(request, "Invitation declined; nothing was changed.")
            return redirect("home")
        try:
            membership = invitation_accept(token=token, user=request.user)
        except InvitationError as exc:
            return render(request, "annotations/invitation.html", {"error": str(exc)}, status=409)
        messages.success(
            request, f"You joined “{membership.study.name}” as {membership.get_role_display()}."
        )
        return redirect("home")
    return render(request, "annotations/invitation.html", {"invitation": invitation})
