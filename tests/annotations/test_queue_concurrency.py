"""Many annotators at once against PostgreSQL: K is never exceeded and nothing is lost."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections
from django.db.models import Count

from annotations import queue
from annotations.models import Annotation, AssignmentStatus, PairAssignment, Role
from tests.factories import (
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    StudyFactory,
    UserFactory,
)

N_ANNOTATORS = 20
N_PAIRS = 40
K = 2

pytestmark = pytest.mark.django_db(transaction=True)
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locking under real concurrency needs PostgreSQL (SQLite serialises writes)",
)
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite set-up")


def _annotate_until_empty(user, study, barrier, skip_rate, seed, results, errors):
    rng = random.Random(seed)
    submitted = skipped = 0
    try:
        barrier.wait(timeout=60)
        while True:
            assignment = queue.pair_next_for_annotator(user=user, study=study)
            if assignment is None:
                # Like a person pressing "check again": a pair someone else still holds
                # may come back if they skip it. Stop once nobody holds anything.
                if PairAssignment.objects.filter(
                    pair__dataset__study=study, status=AssignmentStatus.LEASED
                ).exists():
                    time.sleep(0.02)
                    continue
                break
            if rng.random() < skip_rate:
                queue.assignment_skip(user=user, study=study, pair_id=assignment.pair_id)
                skipped += 1
                continue
            queue.annotation_submit(
                user=user,
                study=study,
                pair_id=assignment.pair_id,
                choice=rng.choice(["first", "second", "tie"]),
                reason=f"Reason from {user.username}: clearer and more accurate.",
            )
            submitted += 1
    except Exception as exc:  # reported by the test below
        errors.append(repr(exc))
    finally:
        results[user.username] = (submitted, skipped)
        connections.close_all()  # each thread opened its own connection


@postgres_only
@pytest.mark.parametrize("skip_rate", [0.0, 0.2])
def test_twenty_annotators_fill_every_pair_exactly_k_times(skip_rate):
    run_annotators(N_ANNOTATORS, N_PAIRS, skip_rate)


@sqlite_only
def test_on_sqlite_concurrent_annotators_are_serialised_correctly():
    # IMMEDIATE transactions take the write lock up front: slower, never wrong.
    run_annotators(6, 12, skip_rate=0.2)


def run_annotators(n_annotators: int, n_pairs: int, skip_rate: float) -> None:
    study = StudyFactory()
    dataset = DatasetFactory(study=study, annotation_overlap=K)
    pairs = [PairFactory(dataset=dataset) for _ in range(n_pairs)]
    users = []
    for i in range(n_annotators):
        user = UserFactory(username=f"concurrent{i}")
        MembershipFactory(user=user, study=study, role=Role.ANNOTATOR)
        users.append(user)

    barrier = threading.Barrier(n_annotators)
    results: dict[str, tuple[int, int]] = {}
    errors: list[str] = []
    threads = [
        threading.Thread(
            target=_annotate_until_empty,
            args=(user, study, barrier, skip_rate, i, results, errors),
        )
        for i, user in enumerate(users)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "an annotator thread hung"
    assert errors == []

    per_pair = dict(
        Annotation.objects.filter(pair__dataset=dataset)
        .values_list("pair_id")
        .annotate(n=Count("id"))
    )
    assert per_pair == {p.pk: K for p in pairs}, "every pair ends with exactly K annotations"
    submits = sum(s for s, _ in results.values())
    assert submits == n_pairs * K == Annotation.objects.count(), "none lost, none extra"
    # No person labelled a pair twice (also a database constraint) ...
    twice = Counter(Annotation.objects.values_list("pair_id", "annotator_id"))
    assert max(twice.values()) == 1
    # ... every submission closed its lease, and no lease is left open.
    assert PairAssignment.objects.filter(status=AssignmentStatus.SUBMITTED).count() == n_pairs * K
    assert not PairAssignment.objects.filter(status=AssignmentStatus.LEASED).exists()
    skips = sum(k for _, k in results.values())
    assert PairAssignment.objects.filter(status=AssignmentStatus.SKIPPED).count() == skips
    if skip_rate:
        assert skips > 0
        # A skipped pair never came back to the person who skipped it.
        for a in PairAssignment.objects.filter(status=AssignmentStatus.SKIPPED):
            assert not Annotation.objects.filter(pair=a.pair, annotator=a.annotator).exists()
