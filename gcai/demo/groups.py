"""Two groups of simulated annotators on the demo's quick slice, for per-group constitutions.

The bundled data has no annotations by people, only GPT-4's judgements. To show what
"whose values?" looks like, this adds ten simulated annotators with an attribute
``reading_style``: five "brief" ones who always pick the shorter response and say so,
and five "thorough" ones who pick the longer one. They are marked as simulated in each
annotation's metadata. The demo's statement authors get the attribute too (alternately).

:func:`demo_group_comparison` adds them after the demo's own constitutions and
evaluations are built (so those stay built from the bundled judgements) and queues one
per-group GCAI comparison on ``reading_style``, which the worker builds in the background
while the demo serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from annotations.attributes import attributes_set_external
from annotations.models import Annotation, Dataset, Study
from gcai.groups.models import GroupComparison
from gcai.groups.services import (
    GroupComparisonError,
    group_comparison_create,
    group_comparison_start,
)

ATTRIBUTE = "reading_style"
GROUPS = {
    "brief": ("shorter", "It is concise and gets to the point without padding."),
    "thorough": ("longer", "It is more detailed and complete, it explains more."),
}
PER_GROUP = 5
ANNOTATING = 2  # per group; the others only hold the attribute (and write statements)


@transaction.atomic
def demo_groups(*, study: Study, dataset: Dataset) -> int:
    """Add the simulated annotators and attributes (idempotent); returns annotations added."""
    people: dict[str, dict[str, str]] = {}
    created = 0
    pairs = list(dataset.pairs.order_by("pk"))
    authors = sorted(
        set(
            study.statements.exclude(external_participant="").values_list(
                "external_participant", flat=True
            )
        )
    )
    for g, (value, (side, reason)) in enumerate(GROUPS.items()):
        ids = [f"demo-{value}-{i}" for i in range(1, PER_GROUP + 1)]
        for person in ids:
            people[person] = {ATTRIBUTE: value}
        for person in ids[:ANNOTATING]:
            known = set(
                Annotation.objects.filter(pair__in=pairs, external_annotator=person).values_list(
                    "pair_id", flat=True
                )
            )
            rows = []
            for pair in pairs:
                if pair.pk in known or len(pair.response_a) == len(pair.response_b):
                    continue
                a_shorter = len(pair.response_a) < len(pair.response_b)
                preferred = "a" if a_shorter == (side == "shorter") else "b"
                rows.append(
                    Annotation(
                        pair=pair,
                        external_annotator=person,
                        preferred=preferred,
                        reason=reason,
                        metadata={"simulated": f"always picks the {side} response"},
                    )
                )
            Annotation.objects.bulk_create(rows)
            created += len(rows)
        for author in authors[g::2]:
            people[author] = {ATTRIBUTE: value}
    attributes_set_external(study=study, people=people)
    return created


def demo_group_comparison(
    *,
    study: Study,
    dataset: Dataset,
    train_pairs: int,
    eval_limit: int,
    method_config: dict[str, Any],
    say: Callable[[str], None],
) -> GroupComparison | None:
    """Add the simulated groups and queue a per-group GCAI comparison (once per study)."""
    added = demo_groups(study=study, dataset=dataset)
    if added:
        say(f"Added {added} annotations by simulated '{ATTRIBUTE}' groups (marked simulated).")
    existing = (
        GroupComparison.objects.filter(study=study, attribute=ATTRIBUTE).order_by("pk").first()
    )
    if existing is not None:
        return existing
    try:
        comparison = group_comparison_create(
            study=study,
            attribute=ATTRIBUTE,
            methods=["gcai"],
            dataset_ids=[dataset.pk],
            max_training_pairs=train_pairs,
            eval_limit=eval_limit,
            batch_size=4,
            method_config=method_config,
        )
    except GroupComparisonError as exc:
        say(f"Per-group comparison skipped: {exc}")
        return None
    comparison.title = f"Demo: whose values? GCAI per {ATTRIBUTE} group"
    comparison.save(update_fields=["title"])
    transaction.on_commit(lambda: group_comparison_start(comparison=comparison))
    say(
        f"Queued a per-group GCAI comparison by '{ATTRIBUTE}' ({len(comparison.groups)} groups); "
        "the worker builds it in the background."
    )
    return comparison
