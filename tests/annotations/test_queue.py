"""The annotator queue: leases, overlap K, skip/flag policy, submissions in pair terms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations import queue
from annotations.models import Annotation, AssignmentStatus, PairAssignment, Role
from tests.factories import (
    AnnotationFactory,
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


REASON = "The first one answers the actual question."


def make_annotator(study, name):
    user = UserFactory(username=name)
    MembershipFactory(user=user, study=study, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def dataset(study):
    return DatasetFactory(study=study, annotation_overlap=1)


@pytest.fixture
def pairs(dataset):
    return [PairFactory(dataset=dataset) for _ in range(3)]


def test_next_pair_leases_a_pair_and_records_display(study, annotator, pairs):
    assignment = queue.pair_next_for_annotator(user=annotator, study=study)
    assert assignment.pair == pairs[0]
    assert assignment.status == AssignmentStatus.LEASED
    assert assignment.shown_at is not None
    assert assignment.lease_expires_at > timezone.now()


def test_next_pair_returns_the_same_lease_until_it_is_finished(study, annotator, pairs):
    first = queue.pair_next_for_annotator(user=annotator, study=study)
    again = queue.pair_next_for_annotator(user=annotator, study=study)
    assert again.pk == first.pk
    assert again.shown_swapped == first.shown_swapped
    assert PairAssignment.objects.count() == 1


def test_screen_order_is_randomised_per_lease(study, dataset):
    PairFactory(dataset=dataset)
    dataset.annotation_overlap = 40
    dataset.save()
    orders = set()
    for i in range(40):
        user = make_annotator(study, f"ann{i}")
        orders.add(queue.pair_next_for_annotator(user=user, study=study).shown_swapped)
    assert orders == {True, False}


def test_next_pair_skips_pairs_already_annotated(study, annotator, pairs):
    AnnotationFactory(pair=pairs[0], annotator=annotator)
    assert queue.pair_next_for_annotator(user=annotator, study=study).pair == pairs[1]


def test_pair_is_never_handed_to_more_than_k_annotators_at_once(study, pairs):
    first, second = make_annotator(study, "a1"), make_annotator(study, "a2")
    a1 = queue.pair_next_for_annotator(user=first, study=study)
    a2 = queue.pair_next_for_annotator(user=second, study=study)
    assert a1.pair != a2.pair


def test_with_overlap_two_two_people_share_a_pair_but_not_three(study, dataset):
    dataset.annotation_overlap = 2
    dataset.save()
    p1, p2 = PairFactory(dataset=dataset), PairFactory(dataset=dataset)
    got = [
        queue.pair_next_for_annotator(user=make_annotator(study, f"a{i}"), study=study).pair
        for i in range(3)
    ]
    assert got == [p1, p1, p2]


def test_nothing_left_returns_none(study, annotator, pairs):
    for _ in pairs:
        a = queue.pair_next_for_annotator(user=annotator, study=study)
        queue.annotation_submit(
            user=annotator, study=study, pair_id=a.pair_id, choice="first", reason=REASON
        )
    assert queue.pair_next_for_annotator(user=annotator, study=study) is None


def test_expired_lease_is_reclaimed_for_someone_else(study, pairs, settings):
    leaver, other = make_annotator(study, "leaver"), make_annotator(study, "other")
    held = queue.pair_next_for_annotator(user=leaver, study=study)
    later = timezone.now() + timedelta(seconds=settings.GCAI_LEASE_SECONDS + 1)
    taken = queue.pair_next_for_annotator(user=other, study=study, now=later)
    assert taken.pair == held.pair


def test_own_lapsed_lease_comes_back_to_its_holder(study, annotator, pairs, settings):
    held = queue.pair_next_for_annotator(user=annotator, study=study)
    later = timezone.now() + timedelta(seconds=settings.GCAI_LEASE_SECONDS + 1)
    again = queue.pair_next_for_annotator(user=annotator, study=study, now=later)
    assert again.pair == held.pair
    assert again.status == AssignmentStatus.LEASED
    assert again.lease_expires_at > later
    assert PairAssignment.objects.filter(annotator=annotator).count() == 1


@pytest.mark.parametrize(
    ("swapped", "choice", "stored"),
    [
        (False, "first", "a"),
        (False, "second", "b"),
        (True, "first", "b"),
        (True, "second", "a"),
        (True, "tie", "tie"),
    ],
)
def test_submit_stores_the_preference_in_pair_terms(
    study, annotator, pairs, swapped, choice, stored
):
    a = queue.pair_next_for_annotator(user=annotator, study=study)
    PairAssignment.objects.filter(pk=a.pk).update(shown_swapped=swapped)
    annotation = queue.annotation_submit(
        user=annotator, study=study, pair_id=a.pair_id, choice=choice, reason=REASON
    )
    assert annotation.preferred == stored
    assert annotation.shown_swapped is swapped
    assert PairAssignment.objects.get(pk=a.pk).status == AssignmentStatus.SUBMITTED


def test_submit_records_time_from_display(study, annotator, pairs):
    shown = timezone.now()
    a = queue.pair_next_for_annotator(user=annotator, study=study, now=shown)
    annotation = queue.annotation_submit(
        user=annotator,
        study=study,
        pair_id=a.pair_id,
        choice="tie",
        reason=REASON,
        now=shown + timedelta(seconds=42, milliseconds=500),
    )
    assert annotation.duration_ms == 42500
    assert annotation.shown_at == shown


def test_reason_is_stored_exactly_as_typed(study, annotator, pairs):
    typed = "  <script>alert('x')</script> & it is \"better\"\n  "
    a = queue.pair_next_for_annotator(user=annotator, study=study)
    annotation = queue.annotation_submit(
        user=annotator, study=study, pair_id=a.pair_id, choice="first", reason=typed
    )
    assert Annotation.objects.get(pk=annotation.pk).reason == typed


def _refused(code, **kwargs):
    before = (Annotation.objects.count(), list(PairAssignment.objects.values_list("status")))
    with pytest.raises(queue.QueueError) as exc:
        queue.annotation_submit(**kwargs)
    assert exc.value.code == code
    after = (Annotation.objects.count(), list(PairAssignment.objects.values_list("status")))
    assert after == before, "a refused submission must change nothing"
    return exc.value


def test_submit_refuses_a_pair_leased_to_someone_else(study, annotator, pairs):
    other = make_annotator(study, "other")
    theirs = queue.pair_next_for_annotator(user=other, study=study)
    error = _refused(
        "not_leased",
        user=annotator,
        study=study,
        pair_id=theirs.pair_id,
        choice="first",
        reason=REASON,
    )
    assert "not assigned to you" in error.message


def test_submit_refuses_a_pair_never_leased(study, annotator, pairs):
    _refused(
        "not_leased",
        user=annotator,
        study=study,
        pair_id=pairs[2].pk,
        choice="first",
        reason=REASON,
    )


def test_submit_refuses_a_pair_of_another_study(study, annotator, pairs):
    foreign = PairFactory(dataset=DatasetFactory(study=StudyFactory()))
    _refused(
        "not_leased", user=annotator, study=study, pair_id=foreign.pk, choice="first", reason=REASON
    )


def test_submit_refuses_a_duplicate(study, annotator, pairs):
    a = queue.pair_next_for_annotator(user=annotator, study=study)
    kwargs = {"user": annotator, "study": study, "pair_id": a.pair_id, "reason": REASON}
    queue.annotation_submit(choice="first", **kwargs)
    error = _refused("duplicate", choice="second", **kwargs)
    assert "already submitted" in error.message
    assert Annotation.objects.get().preferred in ("a", "b")


@pytest.mark.parametrize(
    ("choice", "reason", "code"),
    [
        ("left", REASON, "bad_choice"),
        ("", REASON, "bad_choice"),
        ("first", "too short", "reason_too_short"),
        ("first", "        spaces only          ", "reason_too_short"),
    ],
)
def test_submit_refuses_bad_input(study, annotator, pairs, choice, reason, code):
    a = queue.pair_next_for_annotator(user=annotator, study=study)
    error = _refused(
        code, user=annotator, study=study, pair_id=a.pair_id, choice=choice, reason=reason
    )
    assert not error.conflict


def test_reason_minimum_is_configurable(study, annotator, pairs):
    study.reason_min_length = 3
    study.save()
    a = queue.pair_next_for_annotator(user=annotator, study=study)
    # One character under the study's minimum is refused, the minimum itself is stored
    # (the default minimum is far longer, so both would fail without the setting).
    _refused(
        "reason_too_short", user=annotator, study=study, pair_id=a.pair_id, choice="tie",
        reason="ok",
    )  # fmt: skip
    annotation = queue.annotation_submit(
        user=annotator, study=study, pair_id=a.pair_id, choice="tie", reason="ok!"
    )
    assert Annotation.objects.get(pk=annotation.pk).reason == "ok!"


def test_late_submission_is_accepted_while_nobody_took_the_pair(study, annotator, pairs, settings):
    a = queue.pair_next_for_annotator(user=annotator, study=study)
    later = timezone.now() + timedelta(seconds=settings.GCAI_LEASE_SECONDS + 60)
    annotation = queue.annotation_submit(
        user=annotator, study=study, pair_id=a.pair_id, choice="first", reason=REASON, now=later
    )
    assert annotation.pk


def test_late_submission_is_refused_when_the_pair_went_to_someone_else(
    study, annotator, pairs, settings
):
    a = queue.pair_next_for_annotator(user=annotator, study=study)
    later = timezone.now() + timedelta(seconds=settings.GCAI_LEASE_SECONDS + 60)
    other = make_annotator(study, "other")
    assert queue.pair_next_for_annotator(user=other, study=study, now=later).pair_id == a.pair_id
    error = _refused(
        "lease_lost",
        user=annotator,
        study=study,
        pair_id=a.pair_id,
        choice="first",
        reason=REASON,
        now=later,
    )
    assert "ran out" in error.message


def test_skipped_pair_goes_to_others_and_never_back_to_the_skipper(study, pairs):
    skipper, other = make_annotator(study, "skipper"), make_annotator(study, "other")
    a = queue.pair_next_for_annotator(user=skipper, study=study)
    queue.assignment_skip(user=skipper, study=study, pair_id=a.pair_id)
    assert queue.pair_next_for_annotator(user=other, study=study).pair_id == a.pair_id
    handed = []
    while (n := queue.pair_next_for_annotator(user=skipper, study=study)) is not None:
        handed.append(n.pair_id)
        queue.annotation_submit(
            user=skipper, study=study, pair_id=n.pair_id, choice="first", reason=REASON
        )
    assert a.pair_id not in handed


def test_flag_keeps_the_note_and_frees_the_slot(study, pairs):
    flagger, other = make_annotator(study, "flagger"), make_annotator(study, "other")
    a = queue.pair_next_for_annotator(user=flagger, study=study)
    flagged = queue.assignment_flag(
        user=flagger, study=study, pair_id=a.pair_id, note=" Response B is cut off "
    )
    assert flagged.status == AssignmentStatus.FLAGGED
    assert flagged.note == "Response B is cut off"
    assert queue.pair_next_for_annotator(user=other, study=study).pair_id == a.pair_id
    with pytest.raises(queue.QueueError):
        queue.annotation_submit(
            user=flagger, study=study, pair_id=a.pair_id, choice="first", reason=REASON
        )


def test_skip_refuses_a_pair_not_leased_to_the_caller(study, annotator, pairs):
    with pytest.raises(queue.QueueError) as exc:
        queue.assignment_skip(user=annotator, study=study, pair_id=pairs[0].pk)
    assert exc.value.code == "not_leased"


def test_only_annotators_get_pairs(study, researcher, pairs):
    with pytest.raises(queue.QueueError) as exc:
        queue.pair_next_for_annotator(user=researcher, study=study)
    assert exc.value.code == "not_annotator"
    assert not PairAssignment.objects.exists()


def test_progress_counts_done_assigned_available_and_total(study, annotator, pairs):
    a = queue.pair_next_for_annotator(user=annotator, study=study)
    queue.annotation_submit(
        user=annotator, study=study, pair_id=a.pair_id, choice="first", reason=REASON
    )
    queue.pair_next_for_annotator(user=annotator, study=study)
    progress = queue.annotation_progress(user=annotator, study=study)
    assert progress.as_dict() == {
        "done": 1,
        "in_progress": 1,
        "assigned": 2,
        "skipped": 0,
        "flagged": 0,
        "available": 1,
        "total": 3,
        "percent": 33,
    }


def test_progress_available_matches_what_the_queue_would_hand_out(study, dataset, settings):
    dataset.annotation_overlap = 2
    dataset.save()
    for _ in range(6):
        PairFactory(dataset=dataset)
    me, a2, a3 = (make_annotator(study, n) for n in ("me", "a2", "a3"))
    # Someone else fills pair 1, another holds pair 2, I skip one and label one.
    for user in (a2, a3):
        a = queue.pair_next_for_annotator(user=user, study=study)
        queue.annotation_submit(
            user=user, study=study, pair_id=a.pair_id, choice="tie", reason=REASON
        )
    queue.pair_next_for_annotator(user=a2, study=study)
    mine = queue.pair_next_for_annotator(user=me, study=study)
    queue.assignment_skip(user=me, study=study, pair_id=mine.pair_id)
    mine = queue.pair_next_for_annotator(user=me, study=study)
    queue.annotation_submit(
        user=me, study=study, pair_id=mine.pair_id, choice="first", reason=REASON
    )
    queue.pair_next_for_annotator(user=me, study=study)  # holding one now

    progress = queue.annotation_progress(user=me, study=study)
    handed = 0
    while (a := queue.pair_next_for_annotator(user=me, study=study)) is not None:
        queue.annotation_submit(
            user=me, study=study, pair_id=a.pair_id, choice="tie", reason=REASON
        )
        handed += 1
    assert (progress.done, progress.in_progress, progress.skipped) == (1, 1, 1)
    assert progress.available == handed - 1  # the held pair is counted as in progress
    assert progress.total == 6
