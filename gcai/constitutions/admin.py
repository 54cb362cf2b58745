from django.contrib import admin

from annotations.access import StudyScopedAdminMixin
from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    Evaluation,
    EvaluationArtifact,
    PipelineRun,
    Principle,
    StageArtifact,
)


@admin.register(PipelineRun)
class PipelineRunAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "study",
        "method",
        "status",
        "stage",
        "progress_done",
        "progress_total",
        "llm_calls",
    )
    list_filter = ("method", "status")
    readonly_fields = ("training_pairs",)


@admin.register(StageArtifact)
class StageArtifactAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "run__study"
    list_display = ("run", "stage", "batch", "created_at")


@admin.register(Principle)
class PrincipleAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("id", "run", "origin", "text")
    list_filter = ("origin",)
    raw_id_fields = ("supporting_pairs", "supporting_annotations", "supporting_statements")


class ConstitutionPrincipleInline(admin.TabularInline):
    model = ConstitutionPrinciple
    raw_id_fields = ("principle",)
    extra = 0


@admin.register(Constitution)
class ConstitutionAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "version", "study", "method", "status")
    list_filter = ("status", "method")
    inlines = [ConstitutionPrincipleInline]


@admin.register(Evaluation)
class EvaluationAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("id", "study", "constitution", "kind", "split", "status")
    readonly_fields = ("pairs",)


@admin.register(EvaluationArtifact)
class EvaluationArtifactAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "evaluation__study"
    list_display = ("evaluation", "stage", "batch", "created_at")
