"""Writes for runs, constitutions and evaluations."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    ConstitutionStatus,
    WorkerPing,
)
from gcai.constitutions.quality import (
    QualityGateError,
    constitution_quality_flags,
    flags_as_dicts,
    gate_message,
    override_record,
)


def worker_ping(*, token: str, timeout_s: float = 10.0) -> bool:
    """Send a task through the broker and wait until a worker has written to the database."""
    from gcai.constitutions.tasks import record_worker_ping

    WorkerPing.objects.create(token=token)
    transaction.on_commit(lambda: record_worker_ping.delay(token))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if WorkerPing.objects.filter(token=token, processed_at__isnull=False).exists():
            return True
        time.sleep(0.1)
    return False


def worker_ping_record(*, token: str, worker: str) -> None:
    WorkerPing.objects.filter(token=token).update(processed_at=timezone.now(), worker=worker[:200])


# --------------------------------------------------------------------------- constitutions


class ConstitutionError(ValueError):
    """A constitution change that is not allowed; the message is safe to show."""


@transaction.atomic
def constitution_publish(
    *, constitution: Constitution, override: bool = False, user: Any = None
) -> Constitution:
    """Freeze a draft after the quality gate.

    Principles that are not one well-formed sentence, duplicates and principles without
    evidence (grounding is the point) block publication with :class:`QualityGateError`
    unless ``override`` is set; an override is recorded with the flags, ``user`` and time.
    """
    constitution = Constitution.objects.select_for_update().get(pk=constitution.pk)
    if constitution.is_published:
        return constitution
    if not constitution.items.exists():
        raise ConstitutionError(
            "A constitution needs at least one principle before it is published."
        )
    flags = flags_as_dicts(constitution_quality_flags(constitution=constitution))
    if flags and not override:
        raise QualityGateError(gate_message(flags, action="published"), flags)
    constitution.status = ConstitutionStatus.PUBLISHED
    constitution.published_at = timezone.now()
    constitution.quality_override = override_record(flags, user) if flags else {}
    constitution.save(update_fields=["status", "published_at", "quality_override"])
    return constitution


@transaction.atomic
def constitution_new_version(
    *,
    constitution: Constitution,
    items: list[dict],
    user=None,
    title: str | None = None,
) -> Constitution:
    """Edit a constitution: wording, order and which principles stay.

    ``items`` is the new ordered list of ``{"principle": <Principle id>, "text": str}``;
    only principles already in ``constitution`` may appear. A draft is edited in place; a
    published constitution is immutable, so editing it creates the next version (a
    draft) that points back to it.
    """
    # Re-read under a lock: a stale object could still say "draft" after publication.
    constitution = Constitution.objects.select_for_update().get(pk=constitution.pk)
    current = {item.principle_id: item for item in constitution.items.all()}
    if not items:
        raise ConstitutionError("Keep at least one principle.")
    seen: set[int] = set()
    cleaned: list[tuple[int, str]] = []
    for n, item in enumerate(items, 1):
        try:
            pid = int(item["principle"])
        except (KeyError, TypeError, ValueError):
            raise ConstitutionError(f"Item {n}: missing principle id.") from None
        if pid not in current:
            raise ConstitutionError(f"Item {n}: principle {pid} is not part of this constitution.")
        if pid in seen:
            raise ConstitutionError(f"Item {n}: principle {pid} appears twice.")
        seen.add(pid)
        text = " ".join(str(item.get("text", "")).split())
        if not text:
            raise ConstitutionError(f"Item {n}: the wording cannot be empty.")
        if len(text) > 1000:
            raise ConstitutionError(f"Item {n}: keep the wording under 1,000 characters.")
        cleaned.append((pid, text))

    if constitution.is_published:
        latest = (
            Constitution.objects.filter(study=constitution.study, title=constitution.title)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        )
        target = Constitution.objects.create(
            study=constitution.study,
            run=constitution.run,
            method=constitution.method,
            title=title or constitution.title,
            version=(latest or constitution.version) + 1,
            previous=constitution,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
    else:
        target = constitution
        if title:
            target.title = title
            target.save(update_fields=["title"])
        target.items.all().delete()
    ConstitutionPrinciple.objects.bulk_create(
        [
            ConstitutionPrinciple(constitution=target, principle_id=pid, position=i, text=text)
            for i, (pid, text) in enumerate(cleaned, 1)
        ]
    )
    return target
