"""Steering evaluations and critique-and-revision jobs, and their stored stages.

Both are jobs on the shared engine (:mod:`gcai.jobs.engine`): a
:class:`SteeringRun` row holds status, progress and LLM usage; every stage (and every
batch of a batched stage) is a :class:`SteeringArtifact`, so a run resumes where it
stopped. Training-data exports are computed on the fly and stream; they need no table.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from annotations.models import Study
from gcai.constitutions.models import Constitution
from gcai.jobs.models import ArtifactBase, Job, JobStatus


class SteeringKind(models.TextChoices):
    STEERING = "steering", "Steering evaluation"
    CRITIQUE = "critique", "Critique and revision data"


class SteeringRun(Job):
    """A target model answers prompts with and without a constitution (steering), or
    critiques and revises its answers against the constitution's principles (critique).

    ``config`` holds the prompts, the target model (base URL and model name; the API key
    is read from an environment variable named there, never stored), the constitution
    wording copied at creation, and the generation settings. ``results`` holds the report.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="steering_runs")
    kind = models.CharField(
        max_length=12, choices=SteeringKind.choices, default=SteeringKind.STEERING
    )
    title = models.CharField(max_length=200, blank=True)
    constitution = models.ForeignKey(
        Constitution, on_delete=models.PROTECT, related_name="steering_runs"
    )
    constitution_b = models.ForeignKey(
        Constitution,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="steering_runs_as_b",
    )
    results = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=SteeringKind.values), name="steering_valid_kind"
            ),
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="steering_valid_status"
            ),
            models.CheckConstraint(
                condition=Q(constitution_b__isnull=True)
                | ~Q(constitution_b=models.F("constitution")),
                name="steering_two_different_constitutions",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} {self.pk}"


class SteeringArtifact(ArtifactBase):
    """One stored output of one stage of a steering run (or one batch of it)."""

    run = models.ForeignKey(SteeringRun, on_delete=models.CASCADE, related_name="artifacts")

    class Meta:
        ordering = ["run", "created_at", "stage", "batch"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "stage", "batch"], name="steering_artifact_unique_stage_batch"
            ),
        ]
