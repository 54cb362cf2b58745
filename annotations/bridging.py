"""Bridging votes: participants rate other participants' approved value statements.

After writing their own statements, each participant is shown a random sample of
approved statements written by others (``Study.vote_sample_size``; 0 turns the step
off) and rates each one agree, disagree or pass, as in Polis. The sample is drawn once,
with a seed derived from the participant, and stored on the participant, so a reload
shows the same statements in the same order and a statement approved later never
reshuffles it. A statement that is rejected after it was drawn is no longer asked.

Researchers see votes only as totals per statement; the export names voters by their
pseudonyms (the same ``Participant.pseudonym`` every other export uses).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.models import (
    Moderation,
    Participant,
    StatementVote,
    Study,
    ValueStatement,
    VoteChoice,
)
from gcai.csvsafe import csv_lines
from gcai.dbid import is_db_id


class VoteError(ValueError):
    """A refused vote; the message is safe to show to the participant."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _seed(participant: Participant) -> int:
    # Derived from the participant's secret token: stable for them, unrelated between
    # participants, and not guessable from the pseudonym researchers see.
    digest = hashlib.sha256(f"gcai-votes:{participant.token}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def vote_candidates(*, study: Study, participant: Participant) -> list[int]:
    """Ids of the approved statements of ``study`` not written by ``participant``."""
    return list(
        ValueStatement.objects.filter(study=study, moderation=Moderation.APPROVED)
        .exclude(participant=participant)
        .order_by("id")
        .values_list("id", flat=True)
    )


def vote_sample_draw(*, participant: Participant, study: Study) -> list[int]:
    """Draw and store ``participant``'s sample if it has not been drawn yet; return it.

    Call inside the transaction that locks the participant row.
    """
    if participant.vote_sample is not None:
        return list(participant.vote_sample)
    size = study.vote_sample_size
    candidates = vote_candidates(study=study, participant=participant) if size else []
    rng = random.Random(_seed(participant))
    sample = rng.sample(candidates, min(size, len(candidates)))
    participant.vote_sample = sample
    participant.save(update_fields=["vote_sample"])
    return sample


@dataclass(frozen=True)
class VoteProgress:
    """Where a participant is in their sample: the next statement to rate (or None)."""

    total: int  # statements of the sample that can still be shown or were rated
    done: int
    next: ValueStatement | None

    @property
    def number(self) -> int:
        return self.done + 1


def vote_progress(*, participant: Participant) -> VoteProgress:
    """The next statement of the sample still approved and not yet rated (two queries)."""
    sample = list(participant.vote_sample or [])
    if not sample:
        return VoteProgress(total=0, done=0, next=None)
    askable = set(
        ValueStatement.objects.filter(
            pk__in=sample, study_id=participant.study_id, moderation=Moderation.APPROVED
        )
        .exclude(participant=participant)
        .values_list("pk", flat=True)
    )
    voted = set(participant.votes.values_list("statement_id", flat=True))
    shown = [pk for pk in sample if pk in askable or pk in voted]
    remaining = [pk for pk in shown if pk not in voted]
    statement = ValueStatement.objects.get(pk=remaining[0]) if remaining else None
    return VoteProgress(total=len(shown), done=len(shown) - len(remaining), next=statement)


def votes_pending(*, participant: Participant) -> bool:
    return vote_progress(participant=participant).next is not None


def _statement_id(value: Any) -> int:
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise VoteError(
            "Unknown statement; please reload the page.", code="bad_statement"
        ) from None
    if not is_db_id(pk):
        raise VoteError("Unknown statement; please reload the page.", code="bad_statement")
    return pk


def vote_submit(*, participant: Participant, statement_id: Any, vote: Any) -> StatementVote:
    """Record (or change) ``participant``'s vote on a statement of their sample.

    Refused (nothing stored) for a vote that is not agree / disagree / pass, a statement
    that is not in the participant's sample (their own, another study's, never drawn)
    or no longer approved, and once the participant has finished.
    """
    if vote not in VoteChoice.values:
        raise VoteError("Choose agree, disagree or pass.", code="bad_vote")
    pk = _statement_id(statement_id)
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.completed_at is not None:
            raise VoteError("You have already finished. Thank you!", code="finished")
        if locked.consented_at is None or locked.vote_sample is None:
            raise VoteError("Please write your own statements first.", code="not_yet")
        statement = (
            ValueStatement.objects.filter(
                pk=pk, study_id=locked.study_id, moderation=Moderation.APPROVED
            )
            .exclude(participant=locked)
            .first()
        )
        if statement is None or pk not in locked.vote_sample:
            raise VoteError(
                "This statement is not one of those you were asked to rate.",
                code="not_in_sample",
            )
        row, _ = StatementVote.objects.update_or_create(
            participant=locked,
            statement=statement,
            defaults={"vote": vote, "updated_at": timezone.now()},
        )
    return row


# --------------------------------------------------------------------------- researchers


def vote_counts(*, statement_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """statement id -> {"agree", "disagree", "pass", "total"} (one query)."""
    out: dict[int, dict[str, int]] = {}
    rows = (
        StatementVote.objects.filter(statement_id__in=list(statement_ids))
        .values_list("statement_id", "vote")
        .order_by()
    )
    for statement_id, vote in rows:
        counts = out.setdefault(statement_id, {**dict.fromkeys(VoteChoice.values, 0), "total": 0})
        counts[vote] += 1
        counts["total"] += 1
    return out


def vote_ballots(*, statement_ids: Iterable[int]) -> list[tuple[int, int, str]]:
    """(statement id, participant id, vote) of every vote on the statements (one query).

    Internal: for aggregates such as group-aware consensus, never for display.
    """
    return list(
        StatementVote.objects.filter(statement_id__in=list(statement_ids))
        .order_by("statement_id", "participant_id")
        .values_list("statement_id", "participant_id", "vote")
    )


VOTE_CSV_COLUMNS = ["statement_id", "statement_author", "voter", "vote", "voted_at"]


def votes_export_rows(*, study: Study) -> Iterator[list[Any]]:
    """One row per vote: voters and authors by pseudonym only (never a Prolific id)."""
    rows = (
        StatementVote.objects.filter(statement__study=study)
        .select_related("participant", "statement__participant")
        .order_by("statement_id", "id")
        .iterator(chunk_size=2000)
    )
    for v in rows:
        yield [
            v.statement_id,
            v.statement.author_pseudonym,
            v.participant.pseudonym,
            v.vote,
            v.updated_at.isoformat(),
        ]


def votes_export_csv(*, study: Study) -> Iterator[str]:
    return csv_lines(VOTE_CSV_COLUMNS, votes_export_rows(study=study))
