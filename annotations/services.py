"""Writes for studies and memberships. Views, API and commands call these."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
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


@transaction.atomic
def membership_add(*, study: Study, username: str, role: str) -> Membership:
    """Give an existing user a role in a study (idempotent)."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.")
    User = get_user_model()
    try:
        user = User.objects.get(username=username)
    except User.DoesNotExist:
        raise ValueError(f"No user named {username!r}.") from None
    membership, _ = Membership.objects.get_or_create(user=user, study=study, role=role)
    return membership
