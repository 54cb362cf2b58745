"""Who may see and change what: the one place ownership is decided.

Pages, the API and the admin all go through these functions, so a rule changed here
changes everywhere. A study a user may not see is reported as 404, never 403, so
strangers cannot even learn that it exists.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Model, QuerySet
from django.http import Http404
from rest_framework import permissions

from annotations.models import Membership, Participant, Role, Study


def studies_for(user: Any, *, role: str | None = Role.RESEARCHER) -> QuerySet[Study]:
    """Studies in which ``user`` holds ``role`` (any role when ``role`` is None)."""
    if not getattr(user, "is_authenticated", False):
        return Study.objects.none()
    memberships = Membership.objects.filter(user=user)
    if role is not None:
        memberships = memberships.filter(role=role)
    return Study.objects.filter(pk__in=memberships.values("study_id"))


def study_for(user: Any, study_id: Any, *, role: str | None = Role.RESEARCHER) -> Study:
    """The study if ``user`` holds ``role`` in it, else Http404."""
    try:
        return studies_for(user, role=role).get(pk=study_id)
    except (Study.DoesNotExist, ValueError, TypeError):
        raise Http404("No such study.") from None


def has_role(user: Any, study: Study | int, role: str = Role.RESEARCHER) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    study_id = study.pk if isinstance(study, Study) else study
    return Membership.objects.filter(user=user, study_id=study_id, role=role).exists()


def scoped(
    queryset: QuerySet[Any],
    user: Any,
    *,
    study_field: str = "study",
    role: str | None = Role.RESEARCHER,
):
    """Restrict any queryset of study-owned rows to the studies ``user`` holds ``role`` in."""
    return queryset.filter(**{f"{study_field}__in": studies_for(user, role=role)})


def object_for(
    queryset: QuerySet[Any],
    user: Any,
    pk: Any,
    *,
    study_field: str = "study",
    role: str | None = Role.RESEARCHER,
) -> Model:
    """One study-owned object the user may access, else Http404."""
    try:
        return scoped(queryset, user, study_field=study_field, role=role).get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def participant_for_token(token: str, *, study: Study | None = None) -> Participant:
    """The participant holding ``token`` (optionally: only within ``study``), else Http404."""
    qs = Participant.objects.select_related("study")
    if study is not None:
        qs = qs.filter(study=study)
    try:
        return qs.get(token=token)
    except Participant.DoesNotExist:
        raise Http404("Unknown or expired participant link.") from None


class ResearcherRequiredMixin(LoginRequiredMixin):
    """Page mixin: anonymous users go to login; ``self.study`` is set from the URL's study_id
    when the user is a researcher in it, otherwise 404."""

    study_url_kwarg = "study_id"
    study_role: str | None = Role.RESEARCHER

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if self.study_url_kwarg in kwargs:
            self.study = study_for(request.user, kwargs[self.study_url_kwarg], role=self.study_role)
        return super().dispatch(request, *args, **kwargs)


class AnnotatorRequiredMixin(ResearcherRequiredMixin):
    study_role = Role.ANNOTATOR


class IsStudyResearcher(permissions.BasePermission):
    """DRF permission for views whose ``get_study()`` resolves the study from the URL."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        get_study = getattr(view, "get_study", None)
        if get_study is not None:
            get_study()  # raises Http404 for strangers
        return True


class StudyScopedAdminMixin:
    """Admin: staff who are not superusers see only rows of studies they research."""

    study_field = "study"

    def get_queryset(self, request):
        qs = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return qs
        return scoped(qs, request.user, study_field=self.study_field)


class IsResearcherSomewhere(permissions.BasePermission):
    """DRF permission: a researcher in at least one study, or staff. Guards the API schema
    and its docs, which describe the researcher API (annotators and participants have
    no use for them)."""

    message = "The API description is for researchers: log in with a researcher account."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_staff or Membership.objects.filter(user=user, role=Role.RESEARCHER).exists()
