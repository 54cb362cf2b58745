"""Selectors for the researcher's study dashboard.

A fixed number of queries whatever the size of the study: rows are fetched as tuples
once and summarised in Python (medians and agreement are not portable SQL between
PostgreSQL and SQLite anyway).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from annotations.models import (
    Annotation,
    AssignmentStatus,
    Membership,
    Moderation,
    PairAssignment,
    Role,
    Study,
)

FLAGGED_LIMIT = 20


def agreement(units: Iterable[Iterable[Hashable]]) -> dict[str, Any]:
    """Agreement among annotators who labelled the same pairs.

    ``units`` holds, per pair, the choices made on it. Pairs with fewer than two
    choices carry no information about agreement and are left out. Reports
    Krippendorff's alpha (nominal; any number of raters per pair), Fleiss' kappa when
    every pair has the same number of raters, and raw pairwise agreement.
    """
    # Imported here: gcai.core.stats pulls in SciPy, which costs seconds at start-up of
    # every web worker otherwise.
    from gcai.core.stats import fleiss_kappa, krippendorff_alpha_nominal

    rated = [list(u) for u in units]
    rated = [u for u in rated if len(u) >= 2]
    result: dict[str, Any] = {
        "pairs": len(rated),
        "ratings": sum(len(u) for u in rated),
        "alpha": None,
        "fleiss_kappa": None,
        "percent_agreement": None,
    }
    if not rated:
        return result
    result["alpha"] = krippendorff_alpha_nominal(rated)
    agree = total = 0
    for unit in rated:
        counts = Counter(unit)
        agree += sum(c * (c - 1) // 2 for c in counts.values())
        total += len(unit) * (len(unit) - 1) // 2
    result["percent_agreement"] = round(100 * agree / total, 1) if total else None
    sizes = {len(u) for u in rated}
    if len(sizes) == 1:
        categories = sorted({v for u in rated for v in u}, key=str)
        table = [[Counter(u)[c] for c in categories] for u in rated]
        result["fleiss_kappa"] = fleiss_kappa(table)
    return result


def _median(values: list[int]) -> int | None:
    return int(statistics.median(values)) if values else None


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 1000, 1)


def study_dashboard(*, study: Study, now: datetime | None = None) -> dict[str, Any]:
    """Everything the study dashboard shows: per-dataset progress and annotations per
    pair, per-annotator progress and median time per item, agreement among overlapping
    annotators, statements by moderation state and recently flagged pairs."""
    now = now or timezone.now()
    datasets = list(study.datasets.annotate(n_pairs=Count("pairs")).order_by("id"))

    rows = list(
        Annotation.objects.filter(pair__dataset__study=study).values_list(
            "pair_id", "pair__dataset_id", "annotator_id", "preferred", "duration_ms"
        )
    )
    by_pair: dict[int, list[str]] = defaultdict(list)
    pair_dataset: dict[int, int] = {}
    durations: dict[int | None, list[int]] = defaultdict(list)
    all_durations: list[int] = []
    done_by: Counter[int] = Counter()
    for pair_id, dataset_id, annotator_id, preferred, duration_ms in rows:
        by_pair[pair_id].append(preferred)
        pair_dataset[pair_id] = dataset_id
        if annotator_id is not None:
            done_by[annotator_id] += 1
        if duration_ms is not None:
            durations[annotator_id].append(duration_ms)
            all_durations.append(duration_ms)

    assignment_rows = (
        PairAssignment.objects.filter(pair__dataset__study=study)
        .values("annotator_id", "pair__dataset_id")
        .annotate(
            in_progress=Count(
                "id", filter=Q(status=AssignmentStatus.LEASED, lease_expires_at__gt=now)
            ),
            skipped=Count("id", filter=Q(status=AssignmentStatus.SKIPPED)),
            flagged=Count("id", filter=Q(status=AssignmentStatus.FLAGGED)),
        )
    )
    per_annotator: dict[int, Counter[str]] = defaultdict(Counter)
    per_dataset: dict[int, Counter[str]] = defaultdict(Counter)
    for row in assignment_rows:
        for key in ("in_progress", "skipped", "flagged"):
            per_annotator[row["annotator_id"]][key] += row[key]
            per_dataset[row["pair__dataset_id"]][key] += row[key]

    units_by_dataset: dict[int, list[list[str]]] = defaultdict(list)
    for pair_id, units in by_pair.items():
        units_by_dataset[pair_dataset[pair_id]].append(units)

    dataset_rows = []
    for ds in datasets:
        counts = [len(u) for u in units_by_dataset[ds.pk]]
        histogram = Counter(counts)
        histogram[0] = ds.n_pairs - len(counts)
        k = ds.annotation_overlap
        complete = sum(n for c, n in histogram.items() if c >= k)
        filled = sum(min(c, k) * n for c, n in histogram.items())
        slots = ds.n_pairs * k
        dataset_rows.append(
            {
                "id": ds.pk,
                "name": ds.name,
                "overlap": k,
                "pairs": ds.n_pairs,
                "annotations": sum(counts),
                "complete_pairs": complete,
                "percent": round(100 * filled / slots) if slots else 0,
                "annotations_per_pair": [
                    {"annotations": c, "pairs": histogram[c]}
                    for c in sorted(histogram)
                    if histogram[c] or c <= k
                ],
                "in_progress": per_dataset[ds.pk]["in_progress"],
                "flagged": per_dataset[ds.pk]["flagged"],
                "skipped": per_dataset[ds.pk]["skipped"],
                "agreement": agreement(units_by_dataset[ds.pk]),
            }
        )

    members = Membership.objects.filter(study=study, role=Role.ANNOTATOR).select_related("user")
    annotators = [
        {
            "user_id": m.user_id,
            "username": m.user.get_username(),
            "pseudonym": m.pseudonym,
            "done": done_by[m.user_id],
            "in_progress": per_annotator[m.user_id]["in_progress"],
            "skipped": per_annotator[m.user_id]["skipped"],
            "flagged": per_annotator[m.user_id]["flagged"],
            "median_ms": _median(durations[m.user_id]),
            "median_s": _seconds(_median(durations[m.user_id])),
        }
        for m in members.order_by("user__username")
    ]

    statements = study.statements.aggregate(
        pending=Count("id", filter=Q(moderation=Moderation.PENDING)),
        approved=Count("id", filter=Q(moderation=Moderation.APPROVED)),
        rejected=Count("id", filter=Q(moderation=Moderation.REJECTED)),
        total=Count("id"),
    )
    flagged = [
        {
            "pair_id": a.pair_id,
            "external_id": a.pair.external_id,
            "dataset": a.pair.dataset.name,
            "annotator": a.annotator.get_username(),
            "note": a.note,
            "at": a.finished_at,
        }
        for a in PairAssignment.objects.filter(
            pair__dataset__study=study, status=AssignmentStatus.FLAGGED
        )
        .select_related("pair__dataset", "annotator")
        .order_by("-finished_at")[:FLAGGED_LIMIT]
    ]
    return {
        "datasets": dataset_rows,
        "annotators": annotators,
        "timing": {
            "median_ms": _median(all_durations),
            "median_s": _seconds(_median(all_durations)),
            "items": len(all_durations),
        },
        "agreement": agreement(by_pair.values()),
        "statements": statements,
        "flagged": flagged,
        "totals": {
            "pairs": sum(d["pairs"] for d in dataset_rows),
            "annotations": len(rows),
            "complete_pairs": sum(d["complete_pairs"] for d in dataset_rows),
        },
    }
