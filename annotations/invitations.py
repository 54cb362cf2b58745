"""Study invitations: how researchers add members.

A researcher makes an invitation for a role and passes its link on; the person who opens
it, logged in, accepts (or declines) it. Nobody is added to a study without saying yes,
and nothing here answers whether an account exists, so membership cannot be used to
probe user names or to pull someone into a study.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.models import Invitation, Membership, Role, Study

INVITATION_DAYS = 7


class InvitationError(ValueError):
    """An invitation that cannot be used; the message is safe to show to its holder."""


def invitation_create(
    *, study: Study, role: str, created_by: Any, note: str = ""
) -> tuple[Invitation, str]:
    """Make an invitation; returns it and its token (shown once, only its hash is kept)."""
    if role not in Role.values:
        raise InvitationError(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        study=study,
        role=role,
        note=note.strip()[:100],
        token_hash=Invitation.hash_token(token),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    return invitation, token


def invitation_for_token(token: str) -> Invitation:
    """The pending invitation behind ``token``; InvitationError if used, revoked, expired
    or unknown (one message for all, so a link reveals nothing more)."""
    invitation = (
        Invitation.objects.select_related("study")
        .filter(token_hash=Invitation.hash_token(token or ""))
        .first()
    )
    if invitation is None or not invitation.is_pending:
        raise InvitationError(
            "This invitation link is not valid any more: it was used, withdrawn or has "
            "expired. Ask the researcher who sent it for a new one."
        )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: Any) -> Membership:
    """Make ``user`` a member in the invitation's role; the link then stops working."""
    invitation = invitation_for_token(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending:  # accepted by someone else a moment ago
        raise InvitationError("This invitation link has just been used.")
    membership, _ = Membership.objects.get_or_create(
        user=user, study=invitation.study, role=invitation.role
    )
    invitation.accepted_by = user
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_by", "accepted_at"])
    return membership


def invitation_revoke(*, study: Study, invitation_id: int) -> None:
    """Withdraw a pending invitation of ``study`` (no-op when already used or withdrawn)."""
    Invitation.objects.filter(
        study=study, pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())


def invitations_pending(*, study: Study):
    """The study's invitations that can still be accepted, newest first."""
    return Invitation.objects.filter(
        study=study,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).order_by("-created_at")
