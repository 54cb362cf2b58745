"""Structural rules live in the database, not only in Python."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.models import Annotation, PreferencePair
from gcai.constitutions.models import Constitution, ConstitutionPrinciple, Principle
from tests.factories import (
    AnnotationFactory,
    PairFactory,
    ParticipantFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_one_annotation_per_pair_and_annotator():
    annotation = AnnotationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(
            pair=annotation.pair, annotator=annotation.annotator, preferred="b"
        )


def test_two_annotators_may_label_the_same_pair():
    pair = PairFactory()
    AnnotationFactory(pair=pair)
    AnnotationFactory(pair=pair)
    assert pair.annotations.count() == 2


def test_annotation_choice_is_checked_by_the_database():
    pair = PairFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(pair=pair, annotator=UserFactory(), preferred="left")


def test_annotation_needs_exactly_one_author():
    pair = PairFactory()
    participant = ParticipantFactory(study=pair.dataset.study)
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(
            pair=pair, annotator=UserFactory(), participant=participant, preferred="a"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(pair=pair, preferred="a")
    Annotation.objects.create(pair=pair, external_annotator="ext-7", preferred="tie")


def test_pair_content_hash_is_unique_per_dataset():
    pair = PairFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PreferencePair.objects.create(
            dataset=pair.dataset,
            prompt=pair.prompt,
            response_a=pair.response_a,
            response_b=pair.response_b,
        )


def test_same_prolific_pid_cannot_enter_a_study_twice():
    participant = ParticipantFactory(prolific_pid="5f00aa")
    with pytest.raises(IntegrityError), transaction.atomic():
        ParticipantFactory(study=participant.study, prolific_pid="5f00aa")
    ParticipantFactory(study=participant.study)  # no PID: fine
    ParticipantFactory(study=participant.study)


def _published_constitution():
    study = StudyFactory()
    principle = Principle.objects.create(study=study, text="Be honest.", origin="general")
    constitution = Constitution.objects.create(study=study, title="C", method="gcai")
    ConstitutionPrinciple.objects.create(
        constitution=constitution, principle=principle, position=1, text="Be honest."
    )
    constitution.status = "published"
    constitution.published_at = timezone.now()
    constitution.save()
    return constitution, principle


def test_published_constitution_cannot_be_changed():
    constitution, _ = _published_constitution()
    with pytest.raises(IntegrityError), transaction.atomic():
        Constitution.objects.filter(pk=constitution.pk).update(title="Changed")
    constitution.refresh_from_db()
    assert constitution.title == "C"


def test_published_constitution_principles_cannot_be_changed_or_added():
    constitution, _principle = _published_constitution()
    with pytest.raises(IntegrityError), transaction.atomic():
        ConstitutionPrinciple.objects.filter(constitution=constitution).update(text="Be sneaky.")
    other = Principle.objects.create(study=constitution.study, text="Be kind.", origin="general")
    with pytest.raises(IntegrityError), transaction.atomic():
        ConstitutionPrinciple.objects.create(
            constitution=constitution, principle=other, position=2, text="Be kind."
        )


def test_study_with_published_constitution_can_still_be_deleted():
    constitution, _ = _published_constitution()
    constitution.study.delete()
    assert not Constitution.objects.filter(pk=constitution.pk).exists()
