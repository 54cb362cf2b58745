"""How much human input stands behind a principle: the one count every page shows.

A principle's evidence is stored as links (annotations, value statements, preference
pairs). A reason that came with an imported pair (``source_reason``) has no annotation
row: it is linked through its pair and listed in ``stats["source_reason_pairs"]``. So
"reasons" is annotations with a reason plus those dataset reasons, the same number the
pipeline's stage pages count as judgements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Count

from annotations.models import Annotation, PreferencePair
from annotations.selectors import annotation_author, annotator_pseudonyms
from gcai.constitutions.models import Principle

EVIDENCE_KINDS: tuple[str, ...] = ("annotations", "statements", "pairs")
COUNT_KEYS: tuple[str, ...] = ("reasons", "annotations", "dataset_reasons", "statements", "pairs")
# The key under which run_finish stores the pairs whose imported reason grounded a principle.
SOURCE_REASONS_KEY = "source_reason_pairs"


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_KEYS, 0)


def through(key: str) -> Any:
    """The many-to-many table linking principles to one kind of evidence."""
    return {
        "annotations": Principle.supporting_annotations,
        "statements": Principle.supporting_statements,
        "pairs": Principle.supporting_pairs,
    }[key].through


def principle_evidence_counts(*, principle_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per principle: reasons (annotations + dataset reasons), statements and pairs.

    Four queries whatever the number of principles: one per through table (counted per
    table, not with joined COUNTs, which would multiply rows) and one for the dataset
    reasons kept in the principles' stats.
    """
    out: dict[int, dict[str, int]] = {pid: zero_counts() for pid in principle_ids}
    if not principle_ids:
        return out
    for key in EVIDENCE_KINDS:
        rows = (
            through(key)
            .objects.filter(principle_id__in=principle_ids)
            .values("principle_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            out[row["principle_id"]][key] = row["n"]
    sources = Principle.objects.filter(pk__in=principle_ids).values_list(
        "pk", f"stats__{SOURCE_REASONS_KEY}"
    )
    for pid, pairs in sources:
        out[pid]["dataset_reasons"] = len(pairs) if isinstance(pairs, list) else 0
    for counts in out.values():
        counts["reasons"] = counts["annotations"] + counts["dataset_reasons"]
    return out


def evidence_total(counts: dict[str, int]) -> int:
    """All human input behind a principle (a dataset reason's pair is counted once)."""
    return counts["reasons"] + counts["statements"] + counts["pairs"]


def pair_evidence_get(*, study: Any, pair_id: int) -> dict[str, Any]:
    """One preference pair as evidence: its texts, label, imported reason, the reasons
    people gave on it (pseudonyms only) and the principles it supports (4 queries).

    Raises ``PreferencePair.DoesNotExist`` for a pair outside ``study``.
    """
    pair = PreferencePair.objects.select_related("dataset").get(pk=pair_id, dataset__study=study)
    annotations = list(
        Annotation.objects.filter(pair=pair)
        .exclude(reason="")
        .exclude(metadata__has_key="annotator_type")
        .select_related("participant")
        .order_by("pk")
    )
    names = annotator_pseudonyms(study, [a.annotator_id for a in annotations if a.annotator_id])
    principles = list(
        Principle.objects.filter(supporting_pairs=pair)
        .select_related("run")
        .order_by("run_id", "rank")
    )
    return {
        "pair": pair,
        "reasons": [
            {
                "author": annotation_author(a, names),
                "preferred": a.get_preferred_display(),
                "reason": a.reason,
            }
            for a in annotations
        ],
        "principles": principles,
    }
