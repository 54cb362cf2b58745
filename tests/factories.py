"""factory_boy factories for the data model."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

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
from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    ConstitutionStatus,
    Evaluation,
    EvaluationKind,
    Method,
    Origin,
    PipelineRun,
    Principle,
)
from gcai.jobs.models import JobStatus
from surveys.models import Survey


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


# --------------------------------------------------------------------------- constitutions


class PipelineRunFactory(factory.django.DjangoModelFactory):
    """A finished run (no stored stages): what a constitution or a survey points back to."""

    class Meta:
        model = PipelineRun

    study = factory.SubFactory(StudyFactory)
    method = Method.GCAI
    status = JobStatus.SUCCEEDED
    title = factory.Sequence(lambda n: f"Run {n}")


class PrincipleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Principle

    run = factory.SubFactory(PipelineRunFactory)
    study = factory.LazyAttribute(lambda o: o.run.study if o.run else StudyFactory())
    text = factory.Sequence(lambda n: f"Select the response that respects rule {n}.")
    origin = factory.LazyAttribute(
        lambda o: Origin.ICAI if o.run and o.run.method != Method.GCAI else Origin.GENERAL
    )


class ConstitutionFactory(factory.django.DjangoModelFactory):
    """A constitution made by a finished run, one item per text in ``principles``.

    ``ConstitutionFactory(published=True)`` publishes it once its items exist
    (published constitutions are immutable).
    """

    class Meta:
        model = Constitution
        skip_postgeneration_save = True

    study = factory.SubFactory(StudyFactory)
    method = Method.GCAI
    run = factory.SubFactory(
        PipelineRunFactory,
        study=factory.SelfAttribute("..study"),
        method=factory.SelfAttribute("..method"),
        title=factory.LazyAttribute(lambda o: f"{o.factory_parent.title} run"),
    )
    title = factory.Sequence(lambda n: f"Constitution {n}")

    @factory.post_generation
    def principles(obj, create, extracted, **kwargs):
        texts = extracted if extracted is not None else [
            "Select the response that is honest about what it does not know.",
            "Select the response that answers the question asked.",
        ]  # fmt: skip
        for position, text in enumerate(texts, start=1):
            principle = PrincipleFactory(run=obj.run, study=obj.study, text=text)
            ConstitutionPrinciple.objects.create(
                constitution=obj, principle=principle, position=position, text=text
            )

    @factory.post_generation
    def published(obj, create, extracted, **kwargs):
        if extracted:
            obj.status = ConstitutionStatus.PUBLISHED
            obj.published_at = timezone.now()
            obj.save(update_fields=["status", "published_at"])


class EvaluationFactory(factory.django.DjangoModelFactory):
    """A queued evaluation of a constitution (``kind`` and ``results`` as given)."""

    class Meta:
        model = Evaluation

    study = factory.SubFactory(StudyFactory)
    constitution = factory.SubFactory(ConstitutionFactory, study=factory.SelfAttribute("..study"))
    kind = EvaluationKind.CONSTITUTION
    status = JobStatus.QUEUED


# --------------------------------------------------------------------------- surveys


class SurveyFactory(factory.django.DjangoModelFactory):
    """A draft survey made through ``surveys.services.survey_create``, so it gets the default
    questions; ``SurveyFactory(opened=True)`` opens it."""

    class Meta:
        model = Survey
        skip_postgeneration_save = True

    study = factory.SubFactory(StudyFactory)
    title = "GCAI vs ICAI"
    constitution_a = factory.SubFactory(
        ConstitutionFactory,
        study=factory.SelfAttribute("..study"),
        method=Method.GCAI,
        title="Grounded v1",
        published=True,
    )
    constitution_b = factory.SubFactory(
        ConstitutionFactory,
        study=factory.SelfAttribute("..study"),
        method=Method.ICAI,
        title="Baseline v1",
        published=True,
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from surveys import services

        return services.survey_create(**kwargs)

    @factory.post_generation
    def opened(obj, create, extracted, **kwargs):
        if extracted:
            from surveys import services

            # Factory constitutions are placeholders, not worded for the quality gate
            # (tested on its own): open past it.
            services.survey_open(survey=obj, override=True)
            obj.refresh_from_db()
