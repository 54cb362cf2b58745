"""Access-test registrations for study invitations (tests/test_entry_points.py)."""

from __future__ import annotations

from typing import Any

from tests import entry_points


@entry_points.register("invitation_revoke")
def _revoke(owned: dict[str, Any]) -> dict[str, Any]:
    from annotations.invitations import invitation_create

    invitation, _token = invitation_create(
        study=owned["study"], role="annotator", created_by=owned.get("researcher")
    )
    return {"study_id": owned["study"].pk, "invitation_id": invitation.pk}


entry_points.PUBLIC["invitation_accept"] = (
    "invitation link: unguessable single-use token (only its hash is stored); needs a "
    "logged-in account and an explicit accept"
)
