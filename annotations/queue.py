"""The annotator queue: who labels which pair, and when.

Every pair of a dataset is labelled by ``Dataset.annotation_overlap`` (K) annotators.
A pair is handed out as a lease (a ``PairAssignment`` row) that expires after
``settings.GCAI_LEASE_SECONDS``; a pair's *slots* are its submitted assignments plus its
unexpired leases, and a new lease is only granted while slots < K.

Concurrency. Every write that can add a slot to a pair first locks that pair's row:

- PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks a candidate nobody else is
  leasing right now, then the slots are counted again under the lock (the candidate
  query's snapshot may predate another transaction's commit), so K can never be exceeded.
- SQLite: the settings open every transaction with ``BEGIN IMMEDIATE``, so the whole
  lease transaction is serialised; slower, equally correct.

Policies:

- Never the same pair twice to one person: one ``PairAssignment`` per (pair, annotator)
  (database constraint); a pair the person submitted, skipped or flagged never comes back
  to them.
- Skip and flag free the slot at once, so the pair goes back to the pool for others.
- A lease that expires frees its slot for others; if nobody took it, its holder may still
  submit, and gets the same pair back when they return.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from annotations.models import (
    Annotation,
    AssignmentStatus,
    Choice,
    Dataset,
    Membership,
    PairAssignment,
    PreferencePair,
    Role,
    Study,
)

REASON_MAX_LENGTH = 5000
NOTE_MAX_LENGTH = 2000
# How many candidates one request tries before giving up when others keep winning races.
_MAX_ATTEMPTS = 20


class ScreenChoice:
    """A choice as the annotator saw it: the first (left/top) or second response, or a tie."""

    FIRST = "first"
    SECOND = "second"
    TIE = "tie"
    values = (FIRST, SECOND, TIE)


class QueueError(Exception):
    """A refused queue operation. ``message`` is safe to show; ``code`` is stable for clients."""

    def __init__(self, message: str, *, code: str, conflict: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        # True: the request clashes with the current state (HTTP 409); False: bad input (400).
        self.conflict = conflict


@dataclass(frozen=True)
class Progress:
    done: int  # annotations this person submitted in the study
    in_progress: int  # unexpired leases held now (0 or 1)
    skipped: int
    flagged: int
    available: int  # pairs that could still be handed to this person
    total: int  # pairs in the study

    @property
    def assigned(self) -> int:
        return self.done + self.in_progress

    @property
    def percent(self) -> int:
        reachable = self.done + self.in_progress + self.available
        return round(100 * self.done / reachable) if reachable else 100

    def as_dict(self) -> dict[str, int]:
        return {
            "done": self.done,
            "in_progress": self.in_progress,
            "assigned": self.assigned,
            "skipped": self.skipped,
            "flagged": self.flagged,
            "available": self.available,
            "total": self.total,
            "percent": self.percent,
        }


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _active_slots(now: datetime) -> Q:
    """Assignments that occupy one of a pair's K slots."""
    return Q(status=AssignmentStatus.SUBMITTED) | Q(
        status=AssignmentStatus.LEASED, lease_expires_at__gt=now
    )


def _finished_by_user(user: Any) -> QuerySet[PairAssignment]:
    """Pairs this person must never be handed again."""
    return PairAssignment.objects.filter(
        annotator=user,
        status__in=[
            AssignmentStatus.SUBMITTED,
            AssignmentStatus.SKIPPED,
            AssignmentStatus.FLAGGED,
        ],
    )


def _full_pairs(*, dataset: Dataset, now: datetime) -> QuerySet[PairAssignment]:
    """Ids of the pairs of ``dataset`` whose K slots are all taken (as a subquery).

    An aggregate that PostgreSQL hashes once per query, so its cost grows with the
    number of assignments rather than pairs x assignments.
    """
    return (
        PairAssignment.objects.filter(_active_slots(now), pair__dataset_id=dataset.pk)
        .values("pair_id")
        .annotate(n=Count("id"))
        .filter(n__gte=dataset.annotation_overlap)
        .values("pair_id")
    )


def _candidates(*, dataset: Dataset, user: Any, now: datetime) -> QuerySet[PreferencePair]:
    """Pairs of ``dataset`` with a free slot that ``user`` may be handed, oldest first."""
    return (
        PreferencePair.objects.filter(dataset_id=dataset.pk)
        .exclude(pk__in=_full_pairs(dataset=dataset, now=now))
        .exclude(pk__in=_finished_by_user(user).values("pair_id"))
        .exclude(pk__in=Annotation.objects.filter(annotator=user).values("pair_id"))
        .order_by("id")
    )


def _open_rows(*, user: Any, study: Study) -> list[PairAssignment]:
    """This person's leases in ``study``, current or lapsed (one query, few rows)."""
    return list(
        PairAssignment.objects.filter(
            annotator=user,
            pair__dataset__study=study,
            status__in=[AssignmentStatus.LEASED, AssignmentStatus.EXPIRED],
        )
        .select_related("pair", "pair__dataset")
        .order_by("leased_at")
    )


def _lease_seconds() -> int:
    return int(settings.GCAI_LEASE_SECONDS)


def _require_annotator(*, user: Any, study: Study, lock: bool) -> None:
    refused = QueueError("Only annotators of this study can label its pairs.", code="not_annotator")
    if not getattr(user, "is_authenticated", False):
        raise refused
    qs = Membership.objects.filter(user=user, study=study, role=Role.ANNOTATOR)
    if lock:
        # Serialises one person's own requests (two tabs) without touching anyone else.
        qs = qs.select_for_update()
    if qs.first() is None:
        raise refused


def pair_next_for_annotator(
    *,
    user: Any,
    study: Study,
    dataset: Dataset | None = None,
    now: datetime | None = None,
) -> PairAssignment | None:
    """Lease the next pair for ``user`` in ``study`` (or return the lease they already hold).

    Returns None when nothing is left for this person. The lease records the randomised
    screen order (``shown_swapped``) and the display time (``shown_at``).
    """
    now = _now(now)
    with transaction.atomic():
        _require_annotator(user=user, study=study, lock=True)
        rows = _open_rows(user=user, study=study)
        for row in rows:
            if row.status == AssignmentStatus.LEASED and row.lease_expires_at > now:
                return row
        lapsed = [r.pk for r in rows if r.status == AssignmentStatus.LEASED]
        if lapsed:
            # The record says what happened to leases that ran out unused.
            PairAssignment.objects.filter(pk__in=lapsed).update(
                status=AssignmentStatus.EXPIRED, finished_at=now
            )
        renewable = {r.pair_id for r in rows}

        datasets = [dataset] if dataset is not None else list(study.datasets.order_by("id"))
        for ds in datasets:
            assignment = _lease_from_dataset(dataset=ds, user=user, now=now, renewable=renewable)
            if assignment is not None:
                return assignment
    return None


def _lease_from_dataset(
    *, dataset: Dataset, user: Any, now: datetime, renewable: set[int]
) -> PairAssignment | None:
    tried: list[int] = []
    for _ in range(_MAX_ATTEMPTS):
        candidates = _candidates(dataset=dataset, user=user, now=now).exclude(pk__in=tried)
        pair = candidates.select_for_update(skip_locked=True).first()
        if pair is None and not tried:
            # Nothing free, or what is left is locked this instant by someone else's lease
            # or submission: wait for that (it is brief) rather than report "nothing left".
            # Only while holding no pair lock ourselves, so two waits can never deadlock.
            pair = candidates.select_for_update().first()
        if pair is None:
            return None
        tried.append(pair.pk)
        # Count again under the lock: the candidate query may have run on a snapshot taken
        # before a concurrent lease on this pair was committed.
        slots = PairAssignment.objects.filter(_active_slots(now), pair=pair).count()
        if slots >= dataset.annotation_overlap:
            continue
        return _lease(pair=pair, user=user, now=now, renew=pair.pk in renewable)
    return None


def _lease(*, pair: PreferencePair, user: Any, now: datetime, renew: bool) -> PairAssignment:
    fields = {
        "status": AssignmentStatus.LEASED,
        "shown_swapped": secrets.randbelow(2) == 1,
        "leased_at": now,
        "lease_expires_at": now + timedelta(seconds=_lease_seconds()),
        "shown_at": now,
        "finished_at": None,
        "note": "",
    }
    # A lease of this person's that lapsed unused is renewed rather than duplicated. No
    # race here: the pair's row lock and the person's membership lock are both held.
    if renew:
        PairAssignment.objects.filter(pair=pair, annotator=user).update(**fields)
        assignment = PairAssignment.objects.get(pair=pair, annotator=user)
    else:
        assignment = PairAssignment.objects.create(pair=pair, annotator=user, **fields)
    assignment.pair = pair
    return assignment


def _locked_assignment(*, user: Any, study: Study, pair_id: Any) -> PairAssignment:
    """Lock the pair (same order as leasing: pair, then assignment) and this person's row."""
    try:
        pair = (
            PreferencePair.objects.select_for_update()
            .select_related("dataset")
            .get(pk=int(pair_id), dataset__study=study)
        )
    except (PreferencePair.DoesNotExist, ValueError, TypeError):
        raise QueueError("This pair is not assigned to you.", code="not_leased") from None
    assignment = (
        PairAssignment.objects.select_for_update().filter(pair=pair, annotator=user).first()
    )
    if assignment is None:
        raise QueueError("This pair is not assigned to you.", code="not_leased")
    assignment.pair = pair
    return assignment


def _check_open(assignment: PairAssignment, *, now: datetime) -> None:
    """Refuse unless ``assignment`` is this person's open lease (or a lapsed one still free)."""
    status = assignment.status
    if status == AssignmentStatus.SUBMITTED:
        raise QueueError("You have already submitted this pair.", code="duplicate")
    if status in (AssignmentStatus.SKIPPED, AssignmentStatus.FLAGGED):
        raise QueueError(
            "You already skipped or flagged this pair; it has gone to someone else.",
            code="closed",
        )
    if assignment.lease_expires_at <= now or status == AssignmentStatus.EXPIRED:
        others = (
            PairAssignment.objects.filter(_active_slots(now), pair_id=assignment.pair_id)
            .exclude(pk=assignment.pk)
            .count()
        )
        if others >= assignment.pair.dataset.annotation_overlap:
            raise QueueError(
                "Your time on this pair ran out and it was given to someone else. "
                "Your text is still in the box: copy it if you want to keep it.",
                code="lease_lost",
            )


def to_pair_terms(choice: str, *, shown_swapped: bool) -> str:
    """Translate a screen-order choice into the pair's own a/b terms."""
    if choice == ScreenChoice.TIE:
        return Choice.TIE
    first, second = (Choice.B, Choice.A) if shown_swapped else (Choice.A, Choice.B)
    return first if choice == ScreenChoice.FIRST else second


def screen_choice_of(annotation: Annotation) -> str:
    """The annotator's choice in the order they saw it (inverse of ``to_pair_terms``)."""
    if annotation.preferred == Choice.TIE:
        return ScreenChoice.TIE
    first = Choice.B if annotation.shown_swapped else Choice.A
    return ScreenChoice.FIRST if annotation.preferred == first else ScreenChoice.SECOND


def annotation_submit(
    *,
    user: Any,
    study: Study,
    pair_id: Any,
    choice: str,
    reason: str,
    now: datetime | None = None,
) -> Annotation:
    """Store ``user``'s choice and reason for a pair leased to them.

    ``choice`` is in screen order (``first``/``second``/``tie``) and is stored in the
    pair's own a/b terms using the order recorded on the lease. The reason is stored as
    typed (only checked for length). Refused, with nothing changed, for a pair not leased
    to the caller, a second submission, a bad choice or a reason that is too short.
    """
    now = _now(now)
    if choice not in ScreenChoice.values:
        raise QueueError(
            "Choose which response is better (A or B), or Tie.", code="bad_choice", conflict=False
        )
    reason = reason or ""
    if len(reason.strip()) < study.reason_min_length:
        raise QueueError(
            f"Please explain your choice in at least {study.reason_min_length} characters.",
            code="reason_too_short",
            conflict=False,
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise QueueError(
            f"Please keep the reason under {REASON_MAX_LENGTH} characters.",
            code="reason_too_long",
            conflict=False,
        )
    with transaction.atomic():
        _require_annotator(user=user, study=study, lock=False)
        assignment = _locked_assignment(user=user, study=study, pair_id=pair_id)
        _check_open(assignment, now=now)
        shown_at = assignment.shown_at or assignment.leased_at
        duration_ms = max(0, int((now - shown_at).total_seconds() * 1000))
        try:
            with transaction.atomic():
                annotation = Annotation.objects.create(
                    pair=assignment.pair,
                    annotator=user,
                    preferred=to_pair_terms(choice, shown_swapped=assignment.shown_swapped),
                    reason=reason,
                    shown_swapped=assignment.shown_swapped,
                    shown_at=shown_at,
                    submitted_at=now,
                    duration_ms=duration_ms,
                )
        except IntegrityError:
            raise QueueError("You have already submitted this pair.", code="duplicate") from None
        assignment.status = AssignmentStatus.SUBMITTED
        assignment.finished_at = now
        assignment.save(update_fields=["status", "finished_at"])
    return annotation


def _close(
    *, user: Any, study: Study, pair_id: Any, status: str, note: str, now: datetime | None
) -> PairAssignment:
    now = _now(now)
    if len(note) > NOTE_MAX_LENGTH:
        raise QueueError(
            f"Please keep the note under {NOTE_MAX_LENGTH} characters.",
            code="note_too_long",
            conflict=False,
        )
    with transaction.atomic():
        _require_annotator(user=user, study=study, lock=False)
        assignment = _locked_assignment(user=user, study=study, pair_id=pair_id)
        if assignment.status == AssignmentStatus.SUBMITTED:
            raise QueueError("You have already submitted this pair.", code="duplicate")
        if assignment.status in (AssignmentStatus.SKIPPED, AssignmentStatus.FLAGGED):
            raise QueueError("You already skipped or flagged this pair.", code="closed")
        assignment.status = status
        assignment.finished_at = now
        assignment.note = note
        assignment.save(update_fields=["status", "finished_at", "note"])
    return assignment


def assignment_skip(
    *, user: Any, study: Study, pair_id: Any, note: str = "", now: datetime | None = None
) -> PairAssignment:
    """Give a leased pair back. Requeue policy: its slot is free for others at once,
    and it is never handed to this person again."""
    return _close(
        user=user,
        study=study,
        pair_id=pair_id,
        status=AssignmentStatus.SKIPPED,
        note=note,
        now=now,
    )


def assignment_flag(
    *, user: Any, study: Study, pair_id: Any, note: str = "", now: datetime | None = None
) -> PairAssignment:
    """Flag a leased pair as too hard or broken. Like a skip (the slot goes to someone
    else) but listed for the researchers on the study dashboard with the note."""
    return _close(
        user=user,
        study=study,
        pair_id=pair_id,
        status=AssignmentStatus.FLAGGED,
        note=note.strip(),
        now=now,
    )


# Counting a large dataset's pairs on every item costs more than the rest of the request,
# and the number only changes on import; a progress bar may lag an import by this long.
_SIZE_CACHE_SECONDS = 30


def _dataset_size(dataset: Dataset) -> int:
    # The creation time guards against a reused id (SQLite reuses them after a rollback).
    key = f"gcai:queue:pairs:{dataset.pk}:{dataset.created_at.timestamp()}"
    size = cache.get(key)
    if size is None:
        size = PreferencePair.objects.filter(dataset_id=dataset.pk).count()
        cache.set(key, size, _SIZE_CACHE_SECONDS)
    return size


def annotation_progress(*, user: Any, study: Study, now: datetime | None = None) -> Progress:
    """Where ``user`` stands in ``study``: done / in progress / still available / total.

    Counted without scanning every pair (this runs on every item): available = pairs -
    full pairs - pairs this person already has (done, skipped, flagged or holding) that
    are not full.
    """
    now = _now(now)
    rows = list(
        PairAssignment.objects.filter(annotator=user, pair__dataset__study=study).values_list(
            "pair_id", "pair__dataset_id", "status", "lease_expires_at"
        )
    )
    annotated = list(
        Annotation.objects.filter(annotator=user, pair__dataset__study=study).values_list(
            "pair_id", "pair__dataset_id"
        )
    )
    in_progress = sum(1 for _, _, st, exp in rows if st == AssignmentStatus.LEASED and exp > now)
    skipped = sum(1 for _, _, st, _ in rows if st == AssignmentStatus.SKIPPED)
    flagged = sum(1 for _, _, st, _ in rows if st == AssignmentStatus.FLAGGED)
    taken = {AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED, AssignmentStatus.FLAGGED}
    mine: dict[int, set[int]] = {}
    for pair_id, dataset_id, status, expires in rows:
        if status in taken or (status == AssignmentStatus.LEASED and expires > now):
            mine.setdefault(dataset_id, set()).add(pair_id)
    for pair_id, dataset_id in annotated:
        mine.setdefault(dataset_id, set()).add(pair_id)

    total = available = 0
    for ds in study.datasets.order_by("id"):
        n_pairs = _dataset_size(ds)
        full = _full_pairs(dataset=ds, now=now)
        own = mine.get(ds.pk, set())
        own_full = full.filter(pair_id__in=own).count() if own else 0
        available += n_pairs - full.count() - (len(own) - own_full)
        total += n_pairs
    return Progress(
        done=len(annotated),
        in_progress=in_progress,
        skipped=skipped,
        flagged=flagged,
        available=max(0, available),
        total=total,
    )
