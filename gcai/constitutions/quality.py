"""The quality gate before a constitution reaches people (publication, survey opening).

The checks themselves are :func:`gcai.core.quality.quality_check`; this module feeds
them a constitution's wording and evidence counts and records an override.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from gcai.constitutions.evidence import evidence_total, principle_evidence_counts
from gcai.constitutions.models import Constitution, ConstitutionPrinciple
from gcai.core.quality import PrincipleInput, QualityFlag, quality_check


class QualityGateError(ValueError):
    """Flagged principles and no override; ``flags`` says which and why."""

    def __init__(self, message: str, flags: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.flags = flags


KIND_LABELS = {
    "malformed": "Not one well-formed sentence",
    "duplicate": "Duplicate",
    "no_evidence": "No evidence",
}


def quality_flags_for(
    items: Sequence[ConstitutionPrinciple], counts: dict[int, dict[str, int]]
) -> list[QualityFlag]:
    """The gate's flags for ``items`` given their evidence counts (no queries)."""
    return quality_check(
        [
            PrincipleInput(i.position, i.text, evidence_total(counts[i.principle_id]))
            for i in sorted(items, key=lambda i: i.position)
        ]
    )


def constitution_quality_flags(*, constitution: Constitution) -> list[QualityFlag]:
    """Malformed, duplicate and unsupported principles of ``constitution`` (5 queries)."""
    items = list(constitution.items.all())
    counts = principle_evidence_counts(principle_ids=[i.principle_id for i in items])
    return quality_flags_for(items, counts)


def flags_as_dicts(flags: list[QualityFlag], *, label: str = "") -> list[dict[str, Any]]:
    """Flags as JSON-able dicts with a readable ``label`` of their kind; ``label`` names the
    constitution when several are checked."""
    out = [{**f.to_dict(), "kind_label": KIND_LABELS.get(f.kind, f.kind)} for f in flags]
    return [{**d, "constitution": label} for d in out] if label else out


def gate_message(
    flags: list[dict[str, Any]], *, action: str, confirm: str = "Publish anyway"
) -> str:
    """One sentence for an error message: how many principles are flagged, and how to go on."""
    n = len({(f.get("constitution", ""), f["position"]) for f in flags})
    return (
        f"Not {action}: the quality check flagged {n} principle{'s' if n != 1 else ''} "
        f"({len(flags)} issue{'s' if len(flags) != 1 else ''}). Fix the wording or drop "
        f'them, or confirm with "{confirm}" (override=true in the API).'
    )


def override_record(flags: list[dict[str, Any]], user: Any) -> dict[str, Any]:
    """What is stored when someone publishes despite flags: the flags, who and when."""
    authenticated = getattr(user, "is_authenticated", False)
    return {
        "flags": flags,
        "user_id": user.pk if authenticated else None,
        "username": user.get_username() if authenticated else "",
        "at": timezone.now().isoformat(),
    }
