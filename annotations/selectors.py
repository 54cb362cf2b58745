"""Reads for studies: overview counts used by the dashboard and the API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Q, QuerySet

from annotations.access import studies_for
from annotations.models import (
    Annotation,
    Dataset,
    Membership,
    Moderation,
    PreferencePair,
    Role,
    Split,
    Study,
)


def study_list_for_user(*, user: Any) -> QuerySet[Study]:
    """Studies the user researches, annotated with headline counts (one query)."""
    return (
        studies_for(user, role=Role.RESEARCHER)
        .annotate(
            n_datasets=Count("datasets", distinct=True),
            n_participants=Count("participants", distinct=True),
            n_statements=Count("statements", distinct=True),
        )
        .order_by("-created_at")
    )


def study_overview(*, study: Study) -> dict[str, Any]:
    pairs = PreferencePair.objects.filter(dataset__study=study)
    statements = study.statements.aggregate(
        pending=Count("id", filter=Q(moderation=Moderation.PENDING)),
        approved=Count("id", filter=Q(moderation=Moderation.APPROVED)),
        rejected=Count("id", filter=Q(moderation=Moderation.REJECTED)),
    )
    return {
        "datasets": study.datasets.count(),
        "pairs": pairs.count(),
        "annotations": Annotation.objects.filter(pair__dataset__study=study).count(),
        "participants": study.participants.count(),
        "statements": statements,
        "annotators": study.memberships.filter(role=Role.ANNOTATOR).count(),
    }


def datasets_without_training_pairs(*, study: Study) -> list[Dataset]:
    """The study's datasets with pairs but none in the train split: runs cannot start on
    them until a split is assigned (the Build page links each to its split form)."""
    return list(
        Dataset.objects.filter(study=study)
        .annotate(
            n_pairs=Count("pairs"),
            n_train=Count("pairs", filter=Q(pairs__split=Split.TRAIN)),
        )
        .filter(n_pairs__gt=0, n_train=0)
        .order_by("name")
    )


def dataset_label_counts(*, dataset_id: int) -> dict[str, int]:
    """Where a dataset's preferences and reasons live: on the pairs themselves (the
    file's ``preferred`` / ``reason`` columns) or in annotations (its ``annotations``
    lists and the annotators' work). One query."""
    counts = PreferencePair.objects.filter(dataset_id=dataset_id).aggregate(
        pairs=Count("id"),
        with_preference=Count("id", filter=~Q(source_preference="none")),
        with_reason=Count("id", filter=~Q(source_reason="")),
    )
    counts["annotations"] = Annotation.objects.filter(pair__dataset_id=dataset_id).count()
    return counts


def annotator_pseudonyms(study: Study, user_ids: Iterable[int]) -> dict[int, str]:
    """Study pseudonyms of annotator accounts; never usernames or emails."""
    out: dict[int, str] = {}
    rows = (
        Membership.objects.filter(study=study, user_id__in=set(user_ids))
        .order_by("user_id", "role")  # "annotator" sorts before "researcher"
        .values_list("user_id", "role", "pseudonym")
    )
    for user_id, role, pseudonym in rows:
        if role == Role.ANNOTATOR or user_id not in out:
            out.setdefault(user_id, pseudonym)
    return out


def annotation_author(annotation: Annotation, pseudonyms: dict[int, str]) -> str:
    """Who wrote an annotation, as a pseudonym only."""
    if annotation.annotator_id:
        return pseudonyms.get(annotation.annotator_id) or "annotator without pseudonym"
    if annotation.participant_id:
        return annotation.participant.pseudonym
    return annotation.external_annotator or "unknown"
