"""The participant entry flow shared by value-statement collection and surveys.

Participants arrive through a link (often from Prolific, which appends PROLIFIC_PID,
STUDY_ID and SESSION_ID), consent, take part, and are sent back with a completion code.
They are never Django users: an unguessable per-participant token, kept in the session,
identifies them. A PROLIFIC_PID is not a credential: a returning id resumes only in
the browser that entered with it, or with Prolific's proof of the same submission
(matching STUDY_ID and SESSION_ID); anyone else is told it is already taking part.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.models import Participant, Participation, Study

PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete"
_PROLIFIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SESSION_KEY = "gcai_participants"  # session dict: study id -> participant token


class ParticipantError(ValueError):
    """Entry refused with a message safe to show to the participant."""


class AlreadyTakingPartError(ParticipantError):
    """The Prolific id is already taking part, and this browser cannot prove it is theirs."""

    def __init__(self) -> None:
        super().__init__(
            "This Prolific ID is already taking part in this study from another browser or "
            "device. Please continue in the browser where you started, or open the study "
            "again from your Prolific account. For your privacy nothing of the earlier "
            "answers is shown here."
        )


class ProlificRequiredError(ParticipantError):
    """A Prolific-only study was opened without a Prolific id."""

    def __init__(self) -> None:
        super().__init__(
            "This study is taken through Prolific. Please open it from your Prolific "
            "account: the link Prolific gives you carries your Prolific ID. (If you copied "
            "the link, part of it may be missing.)"
        )


def _clean_prolific(value: str | None, name: str) -> str:
    value = (value or "").strip()
    if value and not _PROLIFIC_ID.match(value):
        raise ParticipantError(f"The link's {name} parameter is malformed.")
    return value


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a, b)


def _may_resume(
    participant: Participant,
    *,
    study_id: str,
    session_id: str,
    session_tokens: Collection[str],
    browser_key: str,
) -> bool:
    """A Prolific id is not a credential (it is shown to researchers and easy to learn).
    Only the session or browser that created the participant resumes them, or a request
    carrying Prolific's proof of the same submission: its STUDY_ID and SESSION_ID."""
    if participant.token in session_tokens:
        return True
    if _same(participant.browser_key, browser_key):
        return True
    return _same(participant.prolific_study_id, study_id) and _same(
        participant.prolific_session_id, session_id
    )


def participant_find(
    *,
    study: Study,
    prolific_pid: str | None = None,
    prolific_study_id: str | None = None,
    prolific_session_id: str | None = None,
    existing_token: str | None = None,
    session_tokens: Collection[str] = (),
    browser_key: str = "",
) -> Participant | None:
    """The participant this request may continue as, or None when it is somebody new.

    Raises AlreadyTakingPartError when the Prolific id belongs to a participant this
    request cannot prove to be (see :func:`_may_resume`), and ProlificRequiredError when a
    Prolific-only study is entered without an id by someone this browser has not seen.
    """
    pid = _clean_prolific(prolific_pid, "PROLIFIC_PID")
    sid = _clean_prolific(prolific_study_id, "STUDY_ID")
    sess = _clean_prolific(prolific_session_id, "SESSION_ID")
    proof = {
        "study_id": sid,
        "session_id": sess,
        "session_tokens": set(session_tokens) | ({existing_token} if existing_token else set()),
        "browser_key": browser_key,
    }
    if pid:
        existing = Participant.objects.filter(study=study, prolific_pid=pid).first()
        if existing is None:
            return None
        if _may_resume(existing, **proof):
            return existing
        raise AlreadyTakingPartError()
    if existing_token:
        existing = Participant.objects.filter(study=study, token=existing_token).first()
        if existing:
            return existing
    if study.participation == Participation.PROLIFIC:
        raise ProlificRequiredError()
    if browser_key:
        # Open studies: one participation per browser, even after the session is gone.
        return (
            Participant.objects.filter(study=study, browser_key=browser_key, prolific_pid="")
            .order_by("pk")
            .first()
        )
    return None


def participant_enter(
    *,
    study: Study,
    prolific_pid: str | None = None,
    prolific_study_id: str | None = None,
    prolific_session_id: str | None = None,
    existing_token: str | None = None,
    session_tokens: Collection[str] = (),
    browser_key: str = "",
) -> tuple[Participant, bool]:
    """Return (participant, created): resumes whom :func:`participant_find` allows,
    otherwise creates a participant bound to this browser."""
    if not study.accepting_participants:
        raise ParticipantError("This study is not accepting participants at the moment.")
    found = participant_find(
        study=study,
        prolific_pid=prolific_pid,
        prolific_study_id=prolific_study_id,
        prolific_session_id=prolific_session_id,
        existing_token=existing_token,
        session_tokens=session_tokens,
        browser_key=browser_key,
    )
    if found is not None:
        return found, False
    pid = _clean_prolific(prolific_pid, "PROLIFIC_PID")
    try:
        with transaction.atomic():
            participant = Participant.objects.create(
                study=study,
                prolific_pid=pid,
                prolific_study_id=_clean_prolific(prolific_study_id, "STUDY_ID"),
                prolific_session_id=_clean_prolific(prolific_session_id, "SESSION_ID"),
                browser_key=browser_key,
            )
    except IntegrityError:
        # Two tabs raced on the same PID: the other request created it. Resume it only
        # with the same proof as any returning id.
        found = participant_find(
            study=study,
            prolific_pid=pid,
            prolific_study_id=prolific_study_id,
            prolific_session_id=prolific_session_id,
            session_tokens=session_tokens,
            browser_key=browser_key,
        )
        if found is None:  # pragma: no cover - the row that collided was deleted meanwhile
            raise ParticipantError("Please open the study link again.") from None
        return found, False
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


def tokens_in_session(request) -> set[str]:
    """Every participant token this browser session holds (any flow, any study)."""
    return set(request.session.get(SESSION_KEY, {}).values())
