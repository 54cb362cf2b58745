"""The abstract rows every job kind is made of: the job (status, progress, LLM usage) and
its stored stage outputs. Concrete tables live in the apps that own the jobs
(``PipelineRun``/``StageArtifact`` and ``Evaluation``/``EvaluationArtifact`` in
gcai.constitutions, ``SteeringRun``/``SteeringArtifact`` in gcai.modeling)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Job(models.Model):
    """Status, progress and LLM accounting of a job: pipeline runs, evaluations and steering
    runs are concrete subclasses."""

    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    stage = models.CharField(max_length=40, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    seed = models.IntegerField(default=0)
    config = models.JSONField(default=dict, blank=True)
    # LLM usage summed over the job (calls actually made vs answered from cache).
    llm_calls = models.PositiveIntegerField(default=0)
    llm_cached_calls = models.PositiveIntegerField(default=0)
    llm_errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    llm_model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 0
        return min(100, round(100 * self.progress_done / self.progress_total))


class ArtifactBase(models.Model):
    """One stored output of one stage of a job, or of one batch of it: the job engine's
    storage (:mod:`gcai.jobs.engine`).

    Stored so a failed or killed job resumes from its last stored batch, and so a
    researcher can inspect and export every step. A concrete table adds the foreign key
    to its job (named ``job_field``) and a unique (job, stage, batch) constraint.
    """

    job_field = "run"

    stage = models.CharField(max_length=60)
    batch = models.IntegerField(default=-1, help_text="-1 for a whole-stage artifact")
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{getattr(self, f'{self.job_field}_id')}:{self.stage}[{self.batch}]"
