"""Train/test split assignment for pairs that arrived without one.

Seeded and stratified by source preference, so the held-out pairs keep the dataset's
balance of a/b/tie labels (AlpacaEval is ~85% "a": an unstratified split can hand the
test set a noticeably different base rate). The order inside each stratum comes from a
hash of the seed and the pair's content hash rather than a shuffled database order, so
the same pairs land in the same split whatever their ids or import order.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable

from django.db import transaction
from django.db.models import Count

from annotations.models import Dataset, PreferencePair, Split

UPDATE_CHUNK = 1000


def stratified_split(
    items: Iterable[tuple[Hashable, str, str]], *, test_fraction: float, seed: int
) -> tuple[list[Hashable], list[Hashable]]:
    """(train keys, test keys) from ``(key, content_hash, stratum)`` triples.

    Each stratum sends ``round(n * test_fraction)`` items (halves rounded up) to test.
    """
    if not 0 < test_fraction < 1:
        raise ValueError("The test fraction must be between 0 and 1 (e.g. 0.2).")
    strata: dict[str, list[tuple[str, Hashable]]] = defaultdict(list)
    for key, content_hash, stratum in items:
        rank = hashlib.sha256(f"{seed}\x00{content_hash}".encode()).hexdigest()
        strata[stratum].append((rank, key))
    train: list[Hashable] = []
    test: list[Hashable] = []
    for stratum in sorted(strata):
        ranked = sorted(strata[stratum], key=lambda item: item[0])
        n_test = math.floor(len(ranked) * test_fraction + 0.5)
        test.extend(key for _, key in ranked[:n_test])
        train.extend(key for _, key in ranked[n_test:])
    return train, test


@transaction.atomic
def pairs_assign_split(
    *, dataset: Dataset, test_fraction: float = 0.2, seed: int = 0, reassign: bool = False
) -> dict:
    """Give every unassigned pair of ``dataset`` a train or test split.

    Pairs that already have a split keep it, unless ``reassign``: then every pair of the
    dataset is split afresh (runs and evaluations keep the pair ids they stored).
    Returns the counts assigned now and the dataset's totals per split afterwards.
    """
    if not 0 < test_fraction < 1:
        raise ValueError("The test fraction must be between 0 and 1 (e.g. 0.2).")
    if reassign:
        PreferencePair.objects.filter(dataset=dataset).update(split=Split.UNASSIGNED)
    rows = (
        PreferencePair.objects.filter(dataset=dataset, split=Split.UNASSIGNED)
        .values_list("id", "content_hash", "source_preference")
        .iterator(chunk_size=5000)
    )
    train, test = stratified_split(rows, test_fraction=test_fraction, seed=seed)
    for split, ids in ((Split.TRAIN, train), (Split.TEST, test)):
        for start in range(0, len(ids), UPDATE_CHUNK):
            PreferencePair.objects.filter(pk__in=ids[start : start + UPDATE_CHUNK]).update(
                split=split
            )
    totals = {s: 0 for s in Split.values}
    for split, count in _split_counts(dataset):
        totals[split] = count
    return {"assigned_train": len(train), "assigned_test": len(test), "totals": totals}


def _split_counts(dataset: Dataset):
    return (
        PreferencePair.objects.filter(dataset=dataset)
        .values_list("split")
        .annotate(n=Count("id"))
        .order_by()
    )
