"""Pair labels: people only, the dataset's label as fallback, ties by a recorded setting."""

from __future__ import annotations

import pytest

from gcai.constitutions import evaluations, runs
from gcai.constitutions.labels import pair_label
from gcai.constitutions.models import EvaluationKind, Method
from gcai.core.types import Preference
from tests.factories import AnnotationFactory, DatasetFactory, PairFactory

pytestmark = pytest.mark.django_db


def _machine(pair, preferred: str, name: str) -> None:
    AnnotationFactory(
        pair=pair,
        annotator=None,
        external_annotator=name,
        preferred=preferred,
        reason="",
        metadata={"annotator_type": "principle", "annotator_description": "Select ..."},
    )


def test_machine_annotators_never_label_held_out_pairs(study):
    dataset = DatasetFactory(study=study)
    # No dataset label: three principle annotators say "b". Nobody human annotated it.
    machine_only = PairFactory(dataset=dataset, split="test", source_preference="none")
    # Dataset label "a"; principle annotators outvote it with "b".
    outvoted = PairFactory(dataset=dataset, split="test", source_preference="a")
    for i in range(3):
        _machine(machine_only, "b", f"principle-{i}")
        _machine(outvoted, "b", f"principle-{i}")
    # A person's choice wins over the dataset's label.
    human = PairFactory(dataset=dataset, split="test", source_preference="a")
    AnnotationFactory(pair=human, preferred="b")

    labels = evaluations.evaluation_labels(study=study, split="test")

    assert machine_only.pk not in labels
    assert labels[outvoted.pk] == "a"
    assert labels[human.pk] == "b"
    evaluation = evaluations.evaluation_create(study=study, kind=EvaluationKind.NO_CONSTITUTION)
    assert evaluation.config["labels"] == {str(outvoted.pk): "a", str(human.pk): "b"}


def test_a_split_annotator_pair_follows_the_recorded_tie_setting(study):
    dataset = DatasetFactory(study=study)
    split = PairFactory(dataset=dataset, split="test", source_preference="none")
    AnnotationFactory(pair=split, preferred="a")
    AnnotationFactory(pair=split, preferred="b")
    clear = PairFactory(dataset=dataset, split="test", source_preference="b")

    # Default, as the reference: no majority means no label; the pair is not scored.
    default = evaluations.evaluation_create(study=study, kind=EvaluationKind.NO_CONSTITUTION)
    assert default.config["ties"] == "exclude"
    assert default.config["labels"] == {str(clear.pk): "b"}

    kept = evaluations.evaluation_create(
        study=study, kind=EvaluationKind.NO_CONSTITUTION, ties="tie"
    )
    assert kept.config["ties"] == "tie"
    assert kept.config["labels"] == {str(split.pk): "tie", str(clear.pk): "b"}

    with pytest.raises(evaluations.EvaluationError, match="ties: must be one of"):
        evaluations.evaluation_create(study=study, kind=EvaluationKind.ORTHOGONAL, ties="coin")


def test_training_labels_follow_the_run_tie_setting(study):
    dataset = DatasetFactory(study=study)
    split = PairFactory(dataset=dataset, split="train", source_preference="none")
    AnnotationFactory(pair=split, preferred="a")
    AnnotationFactory(pair=split, preferred="b")
    tied = PairFactory(dataset=dataset, split="train", source_preference="tie")
    decided = PairFactory(dataset=dataset, split="train", source_preference="a")
    _machine(decided, "b", "model-x")

    run = runs.run_create(study=study, method=Method.ICAI)
    assert run.config["ties"] == "exclude"
    got = {int(p.id): p.preferred for p in runs.run_pairs(run)}
    assert got == {split.pk: Preference.NONE, tied.pk: Preference.NONE, decided.pk: Preference.A}

    run = runs.run_create(study=study, method=Method.ICAI, ties="tie")
    got = {int(p.id): p.preferred for p in runs.run_pairs(run)}
    assert got == {split.pk: Preference.TIE, tied.pk: Preference.TIE, decided.pk: Preference.A}


@pytest.mark.parametrize(
    ("source", "people", "ties", "expected"),
    [
        ("a", [], "exclude", ("a", "dataset")),
        ("none", ["b", "b", "a"], "exclude", ("b", "human")),
        ("a", ["b"], "exclude", ("b", "human")),
        ("none", ["a", "b"], "exclude", ("none", "split_excluded")),
        ("none", ["a", "b"], "tie", ("tie", "split_tie")),
        ("none", ["tie", "tie", "a"], "exclude", ("none", "tie_excluded")),
        ("both_bad", [], "tie", ("both_bad", "dataset")),
        ("none", [], "tie", ("none", "unlabelled")),
    ],
)
def test_pair_label_rules(source, people, ties, expected):
    outcome = pair_label(source, people, ties=ties)
    assert (outcome.label.value, outcome.source) == expected
