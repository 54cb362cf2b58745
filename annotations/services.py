"""Writes for studies. Views, API and commands call these (members join through
``annotations.invitations``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from annotations.models import Membership, Role, Study


@transaction.atomic
def study_create(*, user: Any, name: str, description: str = "", **fields: Any) -> Study:
    """Create a study; its creator becomes its first researcher."""
    name = name.strip()
    if not name:
        raise ValueError("A study needs a name.")
    study = Study.objects.create(name=name, description=description, created_by=user, **fields)
    Membership.objects.create(user=user, study=study, role=Role.RESEARCHER)
    return study


class StudyChangeRefused(ValueError):
    """A study change refused for one field, with a message for the researcher."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# Apps above this one (surveys) register checks that refuse changes to study texts they
# show participants, e.g. while a blinded survey is open. (study, changed fields) ->
# (field, reason) or None.
StudyGuard = Callable[[Study, set[str]], "tuple[str, str] | None"]
_STUDY_GUARDS: list[StudyGuard] = []


def study_guard_register(guard: StudyGuard) -> None:
    if guard not in _STUDY_GUARDS:
        _STUDY_GUARDS.append(guard)


def study_locked_fields(*, study: Study) -> set[str]:
    """Fields of ``study`` a registered guard would refuse to change right now (the
    admin shows them read-only)."""
    every = {f.name for f in Study._meta.concrete_fields}
    return {refusal[0] for guard in _STUDY_GUARDS if (refusal := guard(study, every))}


@transaction.atomic
def study_update(*, study: Study, **fields: Any) -> Study:
    """Change a study's settings; raises StudyChangeRefused when a registered guard
    refuses one of the changed fields (the study is then left as it was)."""
    current = Study.objects.select_for_update().get(pk=study.pk)
    changed = {name for name, value in fields.items() if getattr(current, name) != value}
    for guard in _STUDY_GUARDS:
        refusal = guard(current, changed)
        if refusal:
            raise StudyChangeRefused(*refusal)
    for name in changed:
        setattr(current, name, fields[name])
    current.save()
    return current
