"""Participant pages after their own statements: rating others' statements, and the
study's questions about the participant.

Who the participant is comes from their session only (see annotations.views_participant);
every form carries Django's CSRF token.
"""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from annotations import participant_steps as steps
from annotations.bridging import VoteError, vote_progress, vote_submit
from annotations.models import VoteChoice
from annotations.questionnaire import (
    PREFER_NOT,
    PREFER_NOT_LABEL,
    QuestionnaireError,
    questionnaire_submit,
)
from annotations.views_participant import next_step, participant_at_step

VOTE_BUTTONS = [
    (VoteChoice.AGREE, "Agree"),
    (VoteChoice.DISAGREE, "Disagree"),
    (VoteChoice.PASS, "Pass / unsure"),
]


@require_http_methods(["GET", "POST"])
def participant_votes_page(request, entry_token: str):
    """One statement of the participant's sample at a time; a vote moves to the next."""
    study, participant, early = participant_at_step(request, entry_token, steps.VOTES)
    if participant is None:
        return early
    error = ""
    status = 200
    if request.method == "POST":
        try:
            vote_submit(
                participant=participant,
                statement_id=request.POST.get("statement"),
                vote=request.POST.get("vote"),
            )
        except VoteError as exc:
            error = exc.message
            status = 409 if exc.code in ("finished", "not_in_sample") else 400
        else:
            return next_step(study, participant)
    progress = vote_progress(participant=participant)
    if progress.next is None:  # pragma: no cover - participant_step said a vote is pending
        return next_step(study, participant)
    context = {
        "study": study,
        "progress": progress,
        "statement": progress.next,
        "buttons": VOTE_BUTTONS,
        "error": error,
        **steps.step_position(participant=participant, study=study, step=steps.VOTES),
    }
    return render(request, "annotations/participant_votes.html", context, status=status)


@require_http_methods(["GET", "POST"])
def participant_about_page(request, entry_token: str):
    """The study's questions about the participant; each offers "Prefer not to say"."""
    study, participant, early = participant_at_step(request, entry_token, steps.ABOUT)
    if participant is None:
        return early
    questions = [dict(q) for q in study.attribute_questions]
    errors: dict[str, str] = {}
    message = ""
    status = 200
    if request.method == "POST":
        answers = {q["key"]: _answer(q, request.POST.get(f"q_{q['key']}", "")) for q in questions}
        try:
            questionnaire_submit(participant=participant, study=study, answers=answers)
        except QuestionnaireError as exc:
            message, errors = exc.message, exc.errors
            status = 409 if exc.code == "duplicate" else 400
        else:
            return next_step(study, participant)
        for q in questions:
            q["selected"] = request.POST.get(f"q_{q['key']}", "")
    for q in questions:
        q["error"] = errors.get(q["key"], "")
        q["choices"] = [(str(i), label) for i, label in enumerate(q["options"])]
    context = {
        "study": study,
        "questions": questions,
        "message": message,
        "prefer_not": PREFER_NOT,
        "prefer_not_label": PREFER_NOT_LABEL,
        **steps.step_position(participant=participant, study=study, step=steps.ABOUT),
    }
    return render(request, "annotations/participant_about.html", context, status=status)


# Never an option: options are text stored in JSON, which cannot hold a NUL character.
_NOT_OFFERED = "\x00"


def _answer(question: dict, posted: str) -> str | None:
    """The form posts an option's index (or PREFER_NOT); the service takes its text."""
    if posted == PREFER_NOT:
        return PREFER_NOT
    if not posted:
        return None
    index = int(posted) if posted.isascii() and posted.isdigit() else -1
    return question["options"][index] if 0 <= index < len(question["options"]) else _NOT_OFFERED
