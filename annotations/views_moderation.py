"""Researcher page: the moderation queue for participants' value statements."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from annotations.access import study_for
from annotations.api_annotate import statement_queryset
from annotations.bridging import vote_counts, votes_export_csv
from annotations.models import Moderation
from annotations.statements import (
    StatementError,
    statement_states,
    statements_moderate,
    statements_moderation_restore,
)

PAGE_SIZE = 50
UNDO_SESSION_KEY = "gcai_moderation_undo"
_VERBS = {
    Moderation.APPROVED: "approved",
    Moderation.REJECTED: "rejected",
    Moderation.PENDING: "returned to pending",
}


def _parse_action(post) -> tuple[str, list[str]]:
    """Row buttons send ``approved:<id>``; bulk buttons send ``approved`` plus ticked ids."""
    action = post.get("action", "")
    state, _, single = action.partition(":")
    ids = [single] if single else post.getlist("ids")
    return state, ids


def _moderate(request, study) -> None:
    """Apply a row or bulk action and remember the states before it, for one undo."""
    moderation, ids = _parse_action(request.POST)
    before = statement_states(study=study, statement_ids=ids)
    try:
        n = statements_moderate(
            study=study, statement_ids=ids, moderation=moderation, user=request.user
        )
    except StatementError as exc:
        messages.error(request, exc.message)
        return
    noun = "statement" if n == 1 else "statements"
    summary = f"{n} {noun} {_VERBS[moderation]}"
    request.session[UNDO_SESSION_KEY] = {
        "study": study.pk,
        "states": {str(pk): previous for pk, previous in before.items()},
        "summary": summary,
    }
    messages.success(request, f"{summary}.")


def _undo(request, study) -> None:
    undo = request.session.pop(UNDO_SESSION_KEY, None)
    if not undo or undo.get("study") != study.pk:
        messages.error(request, "Nothing to undo.")
        return
    try:
        statements_moderation_restore(study=study, states=undo["states"], user=request.user)
    except StatementError as exc:
        messages.error(request, f"Could not undo: {exc.message}")
        return
    messages.success(request, f"Undone: {undo['summary']}; the statements are back as they were.")


@login_required
@require_http_methods(["GET", "POST"])
def moderation_queue(request, study_id: int):
    study = study_for(request.user, study_id)
    state = request.GET.get("state", Moderation.PENDING)
    if state not in [*Moderation.values, "all"]:
        state = Moderation.PENDING
    if request.method == "POST":
        if request.POST.get("action") == "undo":
            _undo(request, study)
        else:
            _moderate(request, study)
        query = urlencode({"state": state, "page": request.GET.get("page", "1")})
        return redirect(f"{reverse('moderation_queue', args=[study.pk])}?{query}")

    counts = study.statements.aggregate(
        pending=Count("id", filter=Q(moderation=Moderation.PENDING)),
        approved=Count("id", filter=Q(moderation=Moderation.APPROVED)),
        rejected=Count("id", filter=Q(moderation=Moderation.REJECTED)),
        all=Count("id"),
    )
    qs = statement_queryset(study=study, moderation=None if state == "all" else state)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    # Others' ratings of each statement: totals only, never who voted how.
    votes = vote_counts(statement_ids=[s.pk for s in page.object_list])
    for s in page.object_list:
        s.vote_totals = votes.get(s.pk)
    tabs = [
        {"state": key, "label": label, "count": counts[key]}
        for key, label in [
            (Moderation.PENDING, "Pending"),
            (Moderation.APPROVED, "Approved"),
            (Moderation.REJECTED, "Rejected"),
            ("all", "All"),
        ]
    ]
    undo = request.session.get(UNDO_SESSION_KEY)
    context = {
        "study": study,
        "page": page,
        "state": state,
        "tabs": tabs,
        "undo": undo if undo and undo.get("study") == study.pk else None,
        "votes_enabled": study.vote_sample_size > 0,
    }
    return render(request, "annotations/moderation.html", context)


@login_required
@require_GET
def export_votes(request, study_id: int):
    """Every rating of a statement, one row each; voters under pseudonyms only."""
    study = study_for(request.user, study_id)
    response = StreamingHttpResponse(
        votes_export_csv(study=study), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-votes.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
