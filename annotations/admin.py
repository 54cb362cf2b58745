from django.contrib import admin

from annotations.access import StudyScopedAdminMixin
from annotations.models import (
    Annotation,
    Dataset,
    Membership,
    PairAssignment,
    Participant,
    PreferencePair,
    Study,
    ValueStatement,
)
from annotations.services import study_locked_fields


@admin.register(Study)
class StudyAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "pk"
    list_display = ("name", "created_at", "accepting_participants")
    search_fields = ("name",)

    def get_readonly_fields(self, request, obj=None):
        # The same locks as the study settings page (e.g. consent text of an open survey).
        locked = tuple(sorted(study_locked_fields(study=obj))) if obj else ()
        return (*super().get_readonly_fields(request, obj), *locked)


@admin.register(Membership)
class MembershipAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "study", "role", "pseudonym")
    list_filter = ("role",)
    list_select_related = ("user", "study")


@admin.register(Dataset)
class DatasetAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "study", "source_format", "annotation_overlap", "imported_at")
    list_select_related = ("study",)


@admin.register(PreferencePair)
class PreferencePairAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "dataset__study"
    list_display = ("id", "external_id", "dataset", "source_preference", "split")
    list_filter = ("split", "source_preference")
    list_select_related = ("dataset",)
    search_fields = ("external_id", "prompt")


@admin.register(Annotation)
class AnnotationAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "pair__dataset__study"
    list_display = ("id", "pair", "annotator", "participant", "preferred", "submitted_at")
    list_select_related = ("pair", "annotator", "participant")
    raw_id_fields = ("pair", "participant")


@admin.register(PairAssignment)
class PairAssignmentAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "pair__dataset__study"
    list_display = ("pair", "annotator", "status", "lease_expires_at")
    list_filter = ("status",)
    raw_id_fields = ("pair",)


@admin.register(Participant)
class ParticipantAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("pseudonym", "study", "prolific_pid", "consented_at", "completed_at")
    list_select_related = ("study",)
    search_fields = ("pseudonym", "prolific_pid")


@admin.register(ValueStatement)
class ValueStatementAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("id", "study", "moderation", "created_at")
    list_filter = ("moderation",)
    raw_id_fields = ("participant",)
