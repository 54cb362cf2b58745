"""Reads for studies: overview counts used by the dashboard and the API."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from annotations.access import studies_for
from annotations.models import Moderation, Role, Study


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
    from annotations.models import Annotation, PreferencePair

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
