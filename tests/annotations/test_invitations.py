"""Members join a study only by accepting an invitation; making one reveals nothing
about which accounts exist."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from annotations.models import Invitation, Membership, Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _invite(owner_client, study, role="annotator", note="for Ann"):
    response = owner_client.post(
        reverse("invitation_create", args=[study.pk]), {"role": role, "note": note}
    )
    assert response.status_code == 201
    html = response.content.decode()
    link = re.search(r'id="invitation-link" class="copy-field" readonly value="([^"]+)"', html)
    return link.group(1).replace("http://testserver", "")


def test_an_invitee_becomes_a_member_only_by_accepting(owner_client, study):
    path = _invite(owner_client, study)
    ann = UserFactory(username="ann")
    invitee = Client()
    invitee.force_login(ann)
    page = invitee.get(path)
    assert page.status_code == 200
    assert "Join “Owned study”?" in page.content.decode()
    assert not Membership.objects.filter(user=ann).exists()  # opening is not joining
    accepted = invitee.post(path, {"decision": "accept"})
    assert accepted["Location"] == reverse("home")
    assert Membership.objects.filter(user=ann, study=study, role=Role.ANNOTATOR).exists()
    # The link works once.
    other = Client()
    other.force_login(UserFactory(username="bob"))
    assert other.get(path).status_code == 404
    assert other.post(path, {"decision": "accept"}).status_code == 404
    assert not Membership.objects.filter(user__username="bob").exists()


def test_declining_changes_nothing_and_the_link_stays_usable(owner_client, study):
    path = _invite(owner_client, study)
    invitee = Client()
    invitee.force_login(UserFactory(username="ann"))
    invitee.post(path, {"decision": "decline"})
    assert not Membership.objects.filter(user__username="ann").exists()
    assert Invitation.objects.get().accepted_at is None


def test_anonymous_visitors_are_asked_to_log_in_first(client, owner_client, study):
    path = _invite(owner_client, study)
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_inviting_never_names_an_account(owner_client, study):
    # There is no user-name field at all: the form asks for a role and a note.
    page = owner_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert 'name="username"' not in page
    assert 'id="invite-member"' in page
    # A forged user name is ignored: nobody is added, nothing is said about accounts.
    UserFactory(username="victim")
    response = owner_client.post(
        reverse("invitation_create", args=[study.pk]), {"role": "researcher", "username": "victim"}
    )
    assert response.status_code == 201
    assert "victim" not in response.content.decode()
    assert not Membership.objects.filter(user__username="victim").exists()


def test_withdrawn_and_expired_invitations_do_not_work(owner_client, study):
    withdrawn = _invite(owner_client, study)
    invitation = Invitation.objects.get()
    owner_client.post(reverse("invitation_revoke", args=[study.pk, invitation.pk]))
    invitee = Client()
    invitee.force_login(UserFactory(username="ann"))
    assert invitee.get(withdrawn).status_code == 404
    expired = _invite(owner_client, study)
    with time_machine.travel(Invitation.objects.latest("created_at").expires_at, tick=False):
        assert invitee.post(expired, {"decision": "accept"}).status_code == 404
    assert not Membership.objects.filter(user__username="ann").exists()


def test_only_a_hash_of_the_token_is_stored(owner_client, study):
    path = _invite(owner_client, study)
    token = path.rstrip("/").rsplit("/", 1)[-1]
    assert not Invitation.objects.filter(token_hash=token).exists()
    assert Invitation.objects.filter(token_hash=Invitation.hash_token(token)).exists()


def test_strangers_cannot_invite_to_or_withdraw_from_a_study(owner_client, other_researcher, study):
    _invite(owner_client, study)
    invitation = Invitation.objects.get()
    stranger = Client()
    stranger.force_login(other_researcher)
    create = stranger.post(reverse("invitation_create", args=[study.pk]), {"role": "researcher"})
    assert create.status_code == 404
    revoke = stranger.post(reverse("invitation_revoke", args=[study.pk, invitation.pk]))
    assert revoke.status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert Invitation.objects.count() == 1
