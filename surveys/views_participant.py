"""Participant pages of a survey: entry, consent, instructions, questions, ratings, end.

BLINDED. These pages are reachable by anyone holding the survey link, so they show
"Constitution 1" / "Constitution 2" and plain principle texts only: no method, title,
id or A/B label, in the HTML, form names, URLs or redirects. The templates get their
content solely from the blinded selectors (``survey_screen``, ``rating_items``).

Entry, consent, resume and the Prolific completion URL reuse the shared participant
flow in ``annotations.participants``; the session key is scoped per survey so a
study's statement collection and its surveys never pick up each other's state.
"""

from __future__ import annotations

import hashlib
import time

from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotations.access import participant_for_token
from annotations.browser import browser_key, remember_browser
from annotations.models import Participant
from annotations.participants import (
    AlreadyTakingPartError,
    ParticipantError,
    ProlificRequiredError,
    completion_redirect_url,
    participant_consent,
    participant_enter,
    participant_find,
    remember_in_session,
    token_from_session,
    tokens_in_session,
)
from surveys import selectors, services
from surveys.forms import PageForm, QuestionsForm, RatingsForm
from surveys.models import Survey, SurveyResponse, SurveyStatus
from surveys.participant_steps import participant_steps, rating_count

STEP_URLS = {
    selectors.STEP_CONSENT: "survey_participant_consent",
    selectors.STEP_INSTRUCTIONS: "survey_participant_instructions",
    selectors.STEP_QUESTIONS: "survey_participant_questions",
    selectors.STEP_RATINGS: "survey_participant_ratings",
    selectors.STEP_DONE: "survey_participant_done",
    selectors.STEP_SCREENED_OUT: "survey_participant_ended",
}
_PAGE_CLOCK = "gcai_survey_pages"  # session: "<scope>:<page>" -> epoch ms first shown


def session_scope(survey: Survey) -> str:
    return f"survey:{survey.pk}"


def survey_or_404(entry_token: str) -> Survey:
    survey = selectors.survey_for_entry_token(entry_token=entry_token)
    if survey is None:
        raise Http404("Unknown survey link.")
    return survey


def participant_from_session(request, survey: Survey) -> Participant | None:
    token = token_from_session(request, survey.study_id, scope=session_scope(survey))
    if not token:
        return None
    try:
        return participant_for_token(token, study=survey.study)
    except Http404:
        return None


def _render(request, template: str, context: dict, status: int = 200):
    return render(request, f"surveys/participant/{template}", context, status=status)


def _start_clock(request, survey: Survey, page: str) -> None:
    clocks = dict(request.session.get(_PAGE_CLOCK, {}))
    clocks.setdefault(f"{session_scope(survey)}:{page}", int(time.time() * 1000))
    request.session[_PAGE_CLOCK] = clocks


def _elapsed(request, survey: Survey, page: str, client_ms) -> int | None:
    """Time on the page: the browser's measurement when it sent one (it excludes
    network time), otherwise the server's clock from first display to submission."""
    if client_ms is not None:
        return client_ms
    started = request.session.get(_PAGE_CLOCK, {}).get(f"{session_scope(survey)}:{page}")
    return int(time.time() * 1000) - started if started else None


def _go(survey: Survey, step: str) -> HttpResponseRedirect:
    return redirect(STEP_URLS[step], entry_token=survey.entry_token)


def _flow(request, entry_token: str, page: str):
    """Resolve survey, participant and response for a step page.

    Returns (survey, participant, response, None), or a redirect as the last item when
    the participant belongs on another page (not entered yet, step done, or not there
    yet), so reloading, going back or returning later always lands on the right page.
    """
    survey = survey_or_404(entry_token)
    participant = participant_from_session(request, survey)
    if participant is None:
        return survey, None, None, redirect("survey_participant_enter", entry_token=entry_token)
    response = selectors.response_for_participant(survey=survey, participant=participant)
    step = selectors.response_step(survey=survey, response=response)
    if step != page:
        return survey, participant, response, _go(survey, step)
    return survey, participant, response, None


class SurveyClosedError(ParticipantError):
    """The survey no longer admits new participants."""


def entry_status(exc: ParticipantError) -> int:
    """HTTP status for a refused entry (pages and API alike)."""
    if isinstance(exc, SurveyClosedError):
        return 410
    if isinstance(exc, AlreadyTakingPartError):
        return 409
    if isinstance(exc, ProlificRequiredError):
        return 403
    return 400


def enter_survey(
    request,
    survey: Survey,
    *,
    prolific_pid: str | None,
    prolific_study_id: str | None,
    prolific_session_id: str | None,
) -> tuple[Participant, SurveyResponse | None]:
    """Admit (or resume) the participant behind this request and remember them in the
    session; shared by the entry page and the participant API."""
    scope = session_scope(survey)
    who = {
        "prolific_pid": prolific_pid,
        "prolific_study_id": prolific_study_id,
        "prolific_session_id": prolific_session_id,
        "existing_token": token_from_session(request, survey.study_id, scope=scope),
        "session_tokens": tokens_in_session(request),
        "browser_key": browser_key(request, scope),
    }
    if survey.status == SurveyStatus.OPEN:
        participant, _created = participant_enter(study=survey.study, **who)
        response = selectors.response_for_participant(survey=survey, participant=participant)
    else:
        # Closed: only participants who already started may come back and finish.
        found = participant_find(study=survey.study, **who)
        response = found and selectors.response_for_participant(survey=survey, participant=found)
        if found is None or response is None:
            raise SurveyClosedError("This survey has closed. Thank you for your interest.")
        participant = found
    remember_in_session(request, participant, scope=scope)
    return participant, response


@require_GET
def survey_participant_enter(request, entry_token: str):
    """The link participants receive (Prolific appends PROLIFIC_PID, STUDY_ID, SESSION_ID)."""
    survey = survey_or_404(entry_token)
    try:
        _participant, response = enter_survey(
            request,
            survey,
            prolific_pid=request.GET.get("PROLIFIC_PID"),
            prolific_study_id=request.GET.get("STUDY_ID"),
            prolific_session_id=request.GET.get("SESSION_ID"),
        )
    except ParticipantError as exc:
        return _render(request, "error.html", {"message": str(exc)}, status=entry_status(exc))
    return remember_browser(
        request, _go(survey, selectors.response_step(survey=survey, response=response))
    )


@require_http_methods(["GET", "POST"])
def survey_participant_consent(request, entry_token: str):
    survey, participant, _response, elsewhere = _flow(request, entry_token, "consent")
    if elsewhere:
        return elsewhere
    form = PageForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if "decline" in request.POST:
            return _render(request, "declined.html", {})
        try:
            participant_consent(participant=participant)
            services.response_start(
                survey=survey,
                participant=participant,
                consent_ms=_elapsed(request, survey, "consent", form.cleaned_data["elapsed_ms"]),
            )
        except services.SurveyError as exc:
            return _render(request, "error.html", {"message": str(exc)}, status=400)
        return _go(survey, selectors.STEP_INSTRUCTIONS)
    _start_clock(request, survey, "consent")
    consent = survey.consent_text or survey.study.consent_text
    steps = participant_steps(survey=survey, current=selectors.STEP_CONSENT)
    return _render(
        request,
        "consent.html",
        {"survey": survey, "consent": consent, "form": form, "steps": steps},
    )


@require_http_methods(["GET", "POST"])
def survey_participant_instructions(request, entry_token: str):
    survey, _participant, response, elsewhere = _flow(request, entry_token, "instructions")
    if elsewhere:
        return elsewhere
    form = PageForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        services.instructions_acknowledge(
            response=response,
            elapsed_ms=_elapsed(request, survey, "instructions", form.cleaned_data["elapsed_ms"]),
        )
        return _go(survey, selectors.STEP_QUESTIONS)
    _start_clock(request, survey, "instructions")
    n_questions = survey.questions.count()
    return _render(
        request,
        "instructions.html",
        {
            "survey": survey,
            "form": form,
            "n_questions": n_questions,
            "n_ratings": rating_count(survey=survey),
            "steps": participant_steps(survey=survey, current=selectors.STEP_INSTRUCTIONS),
        },
    )


def _draft_key(response: SurveyResponse, page: str) -> str:
    """Where static/js/survey.js keeps unsent answers in this browser (localStorage).

    One key per response, so a second person on a shared computer never gets someone
    else's answers. A one-way digest in letters only: it reveals no id or token."""
    digest = hashlib.sha256(f"{response.participant.token}:{response.pk}".encode()).hexdigest()
    return "survey-draft-" + "".join(chr(ord("a") + int(c, 16)) for c in digest[:20]) + page


def _next_step(survey: Survey, response: SurveyResponse) -> HttpResponseRedirect:
    response.refresh_from_db()
    return _go(survey, selectors.response_step(survey=survey, response=response))


@require_http_methods(["GET", "POST"])
def survey_participant_questions(request, entry_token: str):
    survey, _participant, response, elsewhere = _flow(request, entry_token, "questions")
    if elsewhere:
        return elsewhere
    screen = selectors.survey_screen(survey=survey, response=response)
    form = QuestionsForm(request.POST if request.method == "POST" else None, screen=screen)
    if request.method == "POST" and form.is_valid():
        try:
            services.answers_submit(
                response=response,
                answers=form.answers(),
                elapsed_ms=_elapsed(request, survey, "questions", form.cleaned_data["elapsed_ms"]),
            )
        except services.SurveyError as exc:
            form.add_error(None, str(exc))
        else:
            return _next_step(survey, response)
    _start_clock(request, survey, "questions")
    steps = participant_steps(survey=survey, current=selectors.STEP_QUESTIONS)
    return _render(
        request,
        "questions.html",
        {"screen": screen, "form": form, "steps": steps, "draft_key": _draft_key(response, "q")},
    )


@require_http_methods(["GET", "POST"])
def survey_participant_ratings(request, entry_token: str):
    survey, _participant, response, elsewhere = _flow(request, entry_token, "ratings")
    if elsewhere:
        return elsewhere
    items = selectors.rating_items(response=response)
    form = RatingsForm(request.POST if request.method == "POST" else None, items=items)
    if request.method == "POST" and form.is_valid():
        try:
            services.ratings_submit(
                response=response,
                ratings=form.ratings(),
                elapsed_ms=_elapsed(request, survey, "ratings", form.cleaned_data["elapsed_ms"]),
            )
        except services.SurveyError as exc:
            form.add_error(None, str(exc))
        else:
            return _next_step(survey, response)
    _start_clock(request, survey, "ratings")
    return _render(
        request,
        "ratings.html",
        {
            "form": form,
            "scale": list(selectors.LIKERT_LABELS.items()),
            "steps": participant_steps(survey=survey, current=selectors.STEP_RATINGS),
            "draft_key": _draft_key(response, "r"),
        },
    )


def _finish(request, entry_token: str, page: str, code_field: str, template: str):
    survey, participant, _response, elsewhere = _flow(request, entry_token, page)
    if elsewhere:
        return elsewhere
    code = getattr(survey, code_field)
    # The code is always on the page as text (a blocked redirect or a closed tab must
    # not cost the participant their credit); Prolific participants also get the link.
    redirect_url = completion_redirect_url(code) if participant.prolific_pid else ""
    return _render(request, template, {"code": code, "redirect_url": redirect_url})


@require_GET
def survey_participant_done(request, entry_token: str):
    """Completed: the completion code, and for Prolific participants the way back."""
    return _finish(request, entry_token, selectors.STEP_DONE, "completion_code", "done.html")


@require_GET
def survey_participant_ended(request, entry_token: str):
    """Failed an attention check: told so, with the screen-out code and the way back."""
    return _finish(
        request, entry_token, selectors.STEP_SCREENED_OUT, "screenout_code", "ended.html"
    )
