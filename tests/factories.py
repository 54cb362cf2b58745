"""factory_boy factories for the data model."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from annotations.models import (
    Annotation,
    Dataset,
    Membership,
    Participant,
    PreferencePair,
    Role,
    Split,
    Study,
    ValueStatement,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or "pw-for-tests-1")
        if create:
            obj.save(update_fields=["password"])


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    name = factory.Sequence(lambda n: f"Study {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    study = factory.SubFactory(StudyFactory)
    role = Role.RESEARCHER


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    study = factory.SubFactory(StudyFactory)
    name = factory.Sequence(lambda n: f"dataset-{n}")


class PairFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PreferencePair

    dataset = factory.SubFactory(DatasetFactory)
    external_id = factory.Sequence(lambda n: f"p{n}")
    prompt = factory.Sequence(lambda n: f"Question number {n}?")
    response_a = factory.Sequence(lambda n: f"Answer A to {n}.")
    response_b = factory.Sequence(lambda n: f"Answer B to {n}.")
    source_preference = "a"
    split = Split.TRAIN


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    study = factory.SubFactory(StudyFactory)


class AnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Annotation

    pair = factory.SubFactory(PairFactory)
    annotator = factory.SubFactory(UserFactory)
    preferred = "a"
    reason = "It answers the question directly and accurately."


class StatementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ValueStatement

    study = factory.SubFactory(StudyFactory)
    participant = factory.SubFactory(ParticipantFactory, study=factory.SelfAttribute("..study"))
    text = "AI systems should be honest about what they do not know."
    moderation = "approved"
