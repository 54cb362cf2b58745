"""The participant entry flow shared by value-statement collection and surveys.

Participants arrive through a link (often from Prolific, which appends PROLIFIC_PID,
STUDY_ID and SESSION_ID), consent, take part, and are sent back with a completion code.
They are never Django users: an unguessable per-participant token, kept in the session,
identifies them. Returning with the same PROLIFIC_PID resumes instead of duplicating.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.models import Participant, Study

PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete"
_PROLIFIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SESSION_KEY = "gcai_participants"  # session dict: study id -> participant token


class ParticipantError(ValueError):
    """Entry refused with a message safe to show to the participant."""


def _clean_prolific(value: str | None, name: str) -> str:
    value = (value or "").strip()
    if value and not _PROLIFIC_ID.match(value):
        raise ParticipantError(f"The link's {name} parameter is malformed.")
    return value


def participant_enter(
    *,
    study: Study,
    prolific_pid: str | None = None,
    prolific_study_id: str | None = None,
    prolific_session_id: str | None = None,
    existing_token: str | None = None,
) -> tuple[Participant, bool]:
    """Return (participant, created). Resumes a returning Prolific id or session token."""
    if not study.accepting_participants:
        raise ParticipantError("This study is not accepting participants at the moment.")
    pid = _clean_prolific(prolific_pid, "PROLIFIC_PID")
    sid = _clean_prolific(prolific_study_id, "STUDY_ID")
    sess = _clean_prolific(prolific_session_id, "SESSION_ID")
    if pid:
        existing = Participant.objects.filter(study=study, prolific_pid=pid).first()
        if existing:
            return existing, False
    elif existing_token:
        existing = Participant.objects.filter(study=study, token=existing_token).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            participant = Participant.objects.create(
                study=study, prolific_pid=pid, prolific_study_id=sid, prolific_session_id=sess
            )
    except IntegrityError:
        # Two tabs raced on the same PID: the other request created it; resume it.
        return Participant.objects.get(study=study, prolific_pid=pid), False
    return participant, True


def participant_consent(*, participant: Participant) -> None:
    if participant.consented_at is None:
        participant.consented_at = timezone.now()
        participant.save(update_fields=["consented_at"])


def participant_complete(*, participant: Participant) -> None:
    if participant.completed_at is None:
        participant.completed_at = timezone.now()
        participant.save(update_fields=["completed_at"])


def completion_redirect_url(code: str) -> str:
    """Prolific's completion URL for ``code``."""
    return f"{PROLIFIC_COMPLETE_URL}?{urlencode({'cc': code})}"


def remember_in_session(request, participant: Participant, *, scope: str = "study") -> None:
    tokens = dict(request.session.get(SESSION_KEY, {}))
    tokens[f"{scope}:{participant.study_id}"] = participant.token
    request.session[SESSION_KEY] = tokens


def token_from_session(request, study_id: int, *, scope: str = "study") -> str | None:
    return request.session.get(SESSION_KEY, {}).get(f"{scope}:{study_id}")
