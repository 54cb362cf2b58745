"""Seeded, stratified train/test split for pairs that arrived without one."""

from __future__ import annotations

from collections import Counter

import pytest

from annotations.models import PreferencePair
from annotations.splits import pairs_assign_split, stratified_split
from tests.factories import DatasetFactory, PairFactory


def _items(n_a: int, n_b: int):
    return [(f"a{i}", f"hash-a{i}", "a") for i in range(n_a)] + [
        (f"b{i}", f"hash-b{i}", "b") for i in range(n_b)
    ]


def test_each_stratum_keeps_its_share_in_test():
    train, test = stratified_split(_items(85, 15), test_fraction=0.2, seed=0)
    assert len(test) == 20
    assert Counter(key[0] for key in test) == {"a": 17, "b": 3}
    assert set(train).isdisjoint(test)
    assert len(train) + len(test) == 100


def test_same_seed_same_split_other_seed_other_split():
    first = stratified_split(_items(50, 50), test_fraction=0.3, seed=1)
    assert first == stratified_split(_items(50, 50), test_fraction=0.3, seed=1)
    assert first[1] != stratified_split(_items(50, 50), test_fraction=0.3, seed=2)[1]


def test_split_does_not_depend_on_input_order():
    items = _items(40, 20)
    _, forward = stratified_split(items, test_fraction=0.25, seed=5)
    _, backward = stratified_split(list(reversed(items)), test_fraction=0.25, seed=5)
    assert sorted(forward) == sorted(backward)


def test_fraction_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split(_items(2, 2), test_fraction=1.0, seed=0)


@pytest.mark.django_db
def test_assign_split_touches_only_unassigned_pairs():
    dataset = DatasetFactory()
    kept = PairFactory(dataset=dataset, split="train", source_preference="a")
    for i in range(40):
        PairFactory(dataset=dataset, split="unassigned", source_preference="a" if i < 30 else "b")
    result = pairs_assign_split(dataset=dataset, test_fraction=0.2, seed=3)
    assert (result["assigned_train"], result["assigned_test"]) == (32, 8)
    assert result["totals"] == {"train": 33, "test": 8, "unassigned": 0}
    kept.refresh_from_db()
    assert kept.split == "train"
    test_labels = Counter(
        PreferencePair.objects.filter(dataset=dataset, split="test").values_list(
            "source_preference", flat=True
        )
    )
    assert test_labels == {"a": 6, "b": 2}
    # Nothing left to assign: a second call changes nothing.
    assert pairs_assign_split(dataset=dataset, test_fraction=0.5, seed=9)["assigned_test"] == 0
