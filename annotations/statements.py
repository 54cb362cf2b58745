"""Value statements: participants write them, researchers moderate them.

Statements are stored exactly as typed and always rendered escaped. Only approved
statements feed the GCAI general-principles stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.bridging import vote_sample_draw
from annotations.models import Moderation, Participant, Study, ValueStatement
from annotations.participant_steps import participant_step
from gcai.dbid import is_db_id

STATEMENT_MIN_CHARS = 20
STATEMENT_MAX_CHARS = 2000
BULK_MAX = 1000


class StatementError(ValueError):
    """Refused input; ``errors`` maps a field (``"statements"`` or ``"statements.N"``) to a
    message safe to show to the participant."""

    def __init__(
        self, message: str, *, errors: dict[str, str] | None = None, code: str = "invalid"
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.code = code


@dataclass(frozen=True)
class StatementInput:
    question: int  # index into Study.questions()
    text: str


def statement_slots(study: Study) -> list[dict[str, Any]]:
    """The guided page's slots: one per allowed statement, questions taken in turn."""
    questions = study.questions()
    return [
        {
            "index": i,
            "number": i + 1,
            "question_index": i % len(questions),
            "question": questions[i % len(questions)],
            "required": i < study.statements_min,
        }
        for i in range(study.statements_max)
    ]


def _validate(study: Study, items: Sequence[StatementInput]) -> list[StatementInput]:
    questions = study.questions()
    errors: dict[str, str] = {}
    kept: list[tuple[int, StatementInput]] = []
    for i, item in enumerate(items):
        length = len((item.text or "").strip())
        if length == 0:
            continue  # an optional box left empty
        if not 0 <= item.question < len(questions):
            errors[f"statements.{i}"] = "This question does not belong to the study."
        elif length < STATEMENT_MIN_CHARS:
            errors[f"statements.{i}"] = (
                f"Please write at least {STATEMENT_MIN_CHARS} characters (this one has {length})."
            )
        elif len(item.text) > STATEMENT_MAX_CHARS:
            errors[f"statements.{i}"] = (
                f"Please keep each statement under {STATEMENT_MAX_CHARS} characters "
                f"(this one has {len(item.text)})."
            )
        kept.append((i, item))
    if errors:
        raise StatementError("Some statements need attention.", errors=errors)
    lo, hi = study.statements_min, study.statements_max
    if not lo <= len(kept) <= hi:
        wanted = f"{lo}" if lo == hi else f"between {lo} and {hi}"
        raise StatementError(
            f"Please write {wanted} statement{'s' if hi != 1 else ''} (you wrote {len(kept)}).",
            errors={"statements": f"Write {wanted} statements."},
            code="count",
        )
    return [item for _, item in kept]


def statements_submit(
    *, participant: Participant, study: Study, items: Sequence[StatementInput]
) -> list[ValueStatement]:
    """Store a participant's statements in one go, draw the others' statements they will
    rate, and mark their participation complete when no step is left.

    Refused with nothing stored when the participant belongs to another study, has not
    consented, has already submitted, or when any statement is out of bounds.
    """
    if participant.study_id != study.pk:
        raise StatementError(
            "This participation belongs to another study; nothing was saved.",
            code="wrong_study",
        )
    valid = _validate(study, items)
    questions = study.questions()
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.consented_at is None:
            raise StatementError(
                "Please read and accept the consent form first.", code="no_consent"
            )
        if locked.completed_at is not None or locked.statements.exists():
            raise StatementError(
                "You have already submitted your statements. Thank you!", code="duplicate"
            )
        created = ValueStatement.objects.bulk_create(
            [
                ValueStatement(
                    study=study,
                    participant=locked,
                    question=questions[item.question],
                    text=item.text,
                )
                for item in valid
            ]
        )
        # Others' statements to rate are drawn now, before this participant's own can
        # be approved; with none to rate (or no other step) the participation is complete.
        vote_sample_draw(participant=locked, study=study)
        participant_step(participant=locked, study=study)
    participant.completed_at = locked.completed_at
    participant.vote_sample = locked.vote_sample
    return created


def statements_moderate(
    *, study: Study, statement_ids: Iterable[Any], moderation: str, user: Any
) -> int:
    """Set the moderation state of statements of ``study``; returns how many changed.

    All or nothing: ids that are not statements of this study refuse the whole request.
    """
    if moderation not in Moderation.values:
        raise StatementError(
            f"Unknown moderation state {moderation!r}; use {', '.join(Moderation.values)}.",
            code="bad_state",
        )
    try:
        ids = sorted({int(i) for i in statement_ids})
    except (TypeError, ValueError):
        raise StatementError("Statement ids must be numbers.", code="bad_ids") from None
    if not all(is_db_id(i) for i in ids):
        raise StatementError(
            "Statement ids must be whole numbers from 1 to 9223372036854775807.", code="bad_ids"
        )
    if not ids:
        raise StatementError("Select at least one statement.", code="empty")
    if len(ids) > BULK_MAX:
        raise StatementError(f"At most {BULK_MAX} statements at a time.", code="too_many")
    with transaction.atomic():
        qs = ValueStatement.objects.filter(study=study, pk__in=ids)
        found = set(qs.values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise StatementError(
                f"Not statements of this study: {', '.join(map(str, missing[:10]))}.",
                code="not_found",
            )
        return qs.update(moderation=moderation, moderated_at=timezone.now(), moderated_by=user)


def statement_states(*, study: Study, statement_ids: Iterable[Any]) -> dict[int, str]:
    """The current moderation state of each of ``study``'s statements among the ids
    (other ids are ignored), kept before a change so that it can be undone."""
    try:
        ids = {int(i) for i in statement_ids}
    except (TypeError, ValueError):
        return {}
    rows = ValueStatement.objects.filter(study=study, pk__in=ids).values_list("pk", "moderation")
    return dict(rows)


def statements_moderation_restore(*, study: Study, states: dict[Any, str], user: Any) -> int:
    """Put statements back in the states recorded by :func:`statement_states` (undo).

    All or nothing, like :func:`statements_moderate`; returns how many changed.
    """
    by_state: dict[str, list[int]] = {}
    for pk, state in states.items():
        by_state.setdefault(state, []).append(int(pk))
    with transaction.atomic():
        return sum(
            statements_moderate(study=study, statement_ids=ids, moderation=state, user=user)
            for state, ids in sorted(by_state.items())
        )
