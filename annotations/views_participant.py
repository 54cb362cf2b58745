"""Public pages for participants: entry link, consent, value statements, completion.

The URL carries only the study's entry token (shared by everyone invited); who the
participant is lives in their session, never in a URL. Returning in the same browser, or
with Prolific's proof of the same submission, resumes where they left off; a Prolific id
alone does not (see annotations.participants).
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotations import participant_steps as steps
from annotations.api_annotate import participant_request_allowed, study_for_entry
from annotations.browser import browser_key, remember_browser
from annotations.models import Participant, Study
from annotations.participants import (
    AlreadyTakingPartError,
    ParticipantError,
    ProlificRequiredError,
    completion_redirect_url,
    participant_consent,
    participant_enter,
    remember_in_session,
    token_from_session,
    tokens_in_session,
)
from annotations.statements import (
    STATEMENT_MAX_CHARS,
    STATEMENT_MIN_CHARS,
    StatementError,
    StatementInput,
    statement_slots,
    statements_submit,
)


def _error(request, study: Study | None, message: str, *, status: int) -> HttpResponse:
    return render(
        request,
        "annotations/participant_error.html",
        {"study": study, "message": message},
        status=status,
    )


def too_many(request, study: Study | None) -> HttpResponse:
    return _error(
        request,
        study,
        "Too many requests in a short time. Please wait a minute and try again.",
        status=429,
    )


STEP_ROUTES = {
    steps.CONSENT: "participant_consent",
    steps.STATEMENTS: "participant_statements",
    steps.VOTES: "participant_votes",
    steps.ABOUT: "participant_about",
    steps.DONE: "participant_done",
}


def next_step(study: Study, participant: Participant):
    step = steps.participant_step(participant=participant, study=study)
    return redirect(STEP_ROUTES[step], entry_token=study.entry_token)


def participant_of(request, study: Study) -> tuple[Participant | None, HttpResponse | None]:
    """The participant this session entered ``study`` as, or the page explaining why not."""
    token = token_from_session(request, study.pk)
    participant = Participant.objects.filter(token=token).first() if token else None
    if participant is None:
        return None, _error(
            request,
            study,
            "We could not find your progress in this browser. Please open the link you "
            "were given again (on Prolific: the study link); you will continue where you "
            "left off.",
            status=403,
        )
    if participant.study_id != study.pk:
        return None, _error(
            request,
            study,
            "This participation belongs to another study, so nothing was changed. Please "
            "open the link you were given for this study.",
            status=403,
        )
    return participant, None


def participant_at_step(
    request, entry_token: str, step: str
) -> tuple[Study, Participant | None, HttpResponse | None]:
    """The study and participant of a step page, or the response that replaces the page:
    why this browser has no participation, the rate limit, or a redirect when the
    participant's next step is another one."""
    study = study_for_entry(entry_token)
    participant, refusal = participant_of(request, study)
    if participant is None:
        return study, None, refusal
    if not participant_request_allowed(request, token=participant.token):
        return study, None, too_many(request, study)
    if steps.participant_step(participant=participant, study=study) != step:
        return study, None, next_step(study, participant)
    return study, participant, None


@require_GET
def participant_entry(request, entry_token: str):
    study = study_for_entry(entry_token)
    if not participant_request_allowed(request):
        return too_many(request, study)
    try:
        participant, _created = participant_enter(
            study=study,
            prolific_pid=request.GET.get("PROLIFIC_PID"),
            prolific_study_id=request.GET.get("STUDY_ID"),
            prolific_session_id=request.GET.get("SESSION_ID"),
            existing_token=token_from_session(request, study.pk),
            session_tokens=tokens_in_session(request),
            browser_key=browser_key(request, "study"),
        )
    except AlreadyTakingPartError as exc:
        return _error(request, study, str(exc), status=409)
    except ProlificRequiredError as exc:
        return _error(request, study, str(exc), status=403)
    except ParticipantError as exc:
        return _error(request, study, str(exc), status=400)
    remember_in_session(request, participant)
    # Redirecting drops the Prolific parameters from the address bar and history.
    return remember_browser(request, next_step(study, participant))


@require_http_methods(["GET", "POST"])
def participant_consent_page(request, entry_token: str):
    study = study_for_entry(entry_token)
    participant, refusal = participant_of(request, study)
    if participant is None:
        return refusal
    if not participant_request_allowed(request, token=participant.token):
        return too_many(request, study)
    if request.method == "POST":
        if request.POST.get("decision") == "decline":
            return render(
                request,
                "annotations/participant_declined.html",
                {"study": study, "prolific": bool(participant.prolific_pid)},
            )
        if request.POST.get("agree") != "yes":
            return render(
                request,
                "annotations/participant_consent.html",
                {"study": study, "error": "Tick the box to confirm you agree, or decline."},
                status=400,
            )
        participant_consent(participant=participant)
        return next_step(study, participant)
    if participant.consented_at is not None:
        return next_step(study, participant)
    context = {
        "study": study,
        **steps.step_position(participant=participant, study=study, step=steps.CONSENT),
    }
    return render(request, "annotations/participant_consent.html", context)


@require_http_methods(["GET", "POST"])
def participant_statements_page(request, entry_token: str):
    study, participant, early = participant_at_step(request, entry_token, steps.STATEMENTS)
    if participant is None:
        return early
    slots = statement_slots(study)
    errors: dict[str, str] = {}
    message = ""
    status = 200
    if request.method == "POST":
        for slot in slots:
            slot["value"] = request.POST.get(f"statement_{slot['index']}", "")
        items = [StatementInput(question=s["question_index"], text=s["value"]) for s in slots]
        try:
            statements_submit(participant=participant, study=study, items=items)
        except StatementError as exc:
            message, errors = exc.message, exc.errors
            status = 409 if exc.code == "duplicate" else 400
        else:
            return next_step(study, participant)
    for slot in slots:
        slot["error"] = errors.get(f"statements.{slot['index']}", "")
    context = {
        "study": study,
        "slots": slots,
        "message": message,
        "count_error": errors.get("statements", ""),
        "min_chars": STATEMENT_MIN_CHARS,
        "max_chars": STATEMENT_MAX_CHARS,
        "questions": study.questions(),
        **steps.step_position(participant=participant, study=study, step=steps.STATEMENTS),
    }
    return render(request, "annotations/participant_statements.html", context, status=status)


def _completion_url(study: Study, participant: Participant) -> str:
    if participant.prolific_pid and study.prolific_completion_code:
        return completion_redirect_url(study.prolific_completion_code)
    return ""


@require_GET
def participant_done(request, entry_token: str):
    study = study_for_entry(entry_token)
    participant, refusal = participant_of(request, study)
    if participant is None:
        return refusal
    if participant.completed_at is None:
        return next_step(study, participant)
    context = {
        "study": study,
        "statements": participant.statements.order_by("id"),
        "prolific": bool(participant.prolific_pid),
        "has_code": bool(_completion_url(study, participant)),
        **steps.step_position(participant=participant, study=study, step=steps.DONE),
    }
    return render(request, "annotations/participant_done.html", context)


@require_GET
def participant_finish(request, entry_token: str):
    """Send a finished Prolific participant back to Prolific with the completion code."""
    study = study_for_entry(entry_token)
    participant, refusal = participant_of(request, study)
    if participant is None:
        return refusal
    if participant.completed_at is None:
        return next_step(study, participant)
    url = _completion_url(study, participant)
    if not url:
        return redirect("participant_done", entry_token=study.entry_token)
    return redirect(url)
