"""Pipeline runs, their stored stages, principles, constitutions and evaluations."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotations.models import Annotation, PreferencePair, Study, ValueStatement
from gcai.jobs.models import ArtifactBase, Job, JobStatus


class Method(models.TextChoices):
    """The methods, each a preset of settings named after its publication
    (:mod:`gcai.core.presets`; sources and deviations in docs/methods.md)."""

    GCAI = "gcai", "GCAI (grounded)"
    ICAI = "icai", "ICAI baseline"
    ICAI_IMPROVED_1 = "icai_improved_1", "ICAI improved 1 (general prompt, centroid)"
    ICAI_IMPROVED_2 = "icai_improved_2", "ICAI improved 2 (difference clustering)"
    ICAI_SCORES = "icai_scores", "ICAI improved 1 + ratings"


class PipelineRun(Job):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="runs")
    method = models.CharField(max_length=20, choices=Method.choices)
    title = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Runs built together (GCAI + ICAI on the same training pairs) share a group id.
    comparison_group = models.CharField(max_length=64, blank=True)
    training_pairs = models.ManyToManyField(PreferencePair, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(method__in=Method.values), name="run_valid_method"),
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="run_valid_status"
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.get_method_display()} run {self.pk}"


class StageArtifact(ArtifactBase):
    """One stored output of one pipeline stage (or one batch of it)."""

    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="artifacts")

    class Meta:
        ordering = ["run", "created_at", "stage", "batch"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "stage", "batch"], name="artifact_unique_stage_batch"
            ),
        ]


class Origin(models.TextChoices):
    ICAI = "icai", "ICAI"
    CONTEXTUAL = "contextual", "Contextual (preferences + reasons)"
    GENERAL = "general", "General (value statements)"
    BOTH = "both", "Both streams"


class Principle(models.Model):
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.CASCADE, related_name="principles"
    )
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="principles")
    text = models.TextField()
    origin = models.CharField(max_length=12, choices=Origin.choices)
    stats = models.JSONField(default=dict, blank=True)
    rank = models.PositiveIntegerField(default=0)
    supporting_pairs = models.ManyToManyField(
        PreferencePair, blank=True, related_name="supported_principles"
    )
    supporting_annotations = models.ManyToManyField(
        Annotation, blank=True, related_name="supported_principles"
    )
    supporting_statements = models.ManyToManyField(
        ValueStatement, blank=True, related_name="supported_principles"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "rank", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(origin__in=Origin.values), name="principle_valid_origin"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class ConstitutionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class Constitution(models.Model):
    """An ordered list of principles. Published versions are immutable (database triggers
    refuse edits; see migration 0002); edits create a new version."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="constitutions")
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="constitutions"
    )
    method = models.CharField(max_length=20, choices=Method.choices, blank=True)
    title = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_versions"
    )
    status = models.CharField(
        max_length=12, choices=ConstitutionStatus.choices, default=ConstitutionStatus.DRAFT
    )
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # Set when it was published although the quality gate flagged principles: the flags,
    # who confirmed "Publish anyway" and when (see gcai.constitutions.quality).
    quality_override = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["study", "title", "-version"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ConstitutionStatus.values), name="constitution_valid_status"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(published_at__isnull=False),
                name="constitution_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    @property
    def is_published(self) -> bool:
        return self.status == ConstitutionStatus.PUBLISHED

    def as_text(self) -> str:
        return "\n".join(f"{cp.position}. {cp.text}" for cp in self.items.all())


class ConstitutionPrinciple(models.Model):
    """A principle's place and wording in one constitution version."""

    constitution = models.ForeignKey(Constitution, on_delete=models.CASCADE, related_name="items")
    principle = models.ForeignKey(Principle, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    text = models.TextField(help_text="Wording in this version (a researcher may edit it).")

    class Meta:
        ordering = ["constitution", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["constitution", "position"], name="constitution_unique_position"
            ),
            models.UniqueConstraint(
                fields=["constitution", "principle"], name="constitution_unique_principle"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.text[:60]}"


class EvaluationKind(models.TextChoices):
    CONSTITUTION = "constitution", "Constitution"
    NO_CONSTITUTION = "no_constitution", "Baseline: no constitution"
    ORTHOGONAL = "orthogonal", "Baseline: orthogonal constitution"


class Evaluation(Job):
    """Preference reconstruction: an LLM judge told only the constitution predicts held-out
    human preferences. Results (metrics, intervals, per-pair judgements) live in ``results``
    once it succeeded; while it runs, its batches are :class:`EvaluationArtifact` rows."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="evaluations")
    constitution = models.ForeignKey(
        Constitution, null=True, blank=True, on_delete=models.CASCADE, related_name="evaluations"
    )
    kind = models.CharField(
        max_length=20, choices=EvaluationKind.choices, default=EvaluationKind.CONSTITUTION
    )
    split = models.CharField(max_length=12, default="test")
    comparison_group = models.CharField(max_length=64, blank=True)
    pairs = models.ManyToManyField(PreferencePair, blank=True, related_name="+")
    results = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=EvaluationKind.values), name="evaluation_valid_kind"
            ),
            models.CheckConstraint(
                condition=Q(kind="constitution", constitution__isnull=False)
                | ~Q(kind="constitution"),
                name="evaluation_constitution_required",
            ),
        ]

    def __str__(self) -> str:
        target = self.constitution or self.get_kind_display()
        return f"Evaluation {self.pk} of {target}"


class EvaluationArtifact(ArtifactBase):
    """One stored output of one evaluation stage: a batch of judgements, the merged
    judgements, the scores."""

    job_field = "evaluation"

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="artifacts")

    class Meta:
        ordering = ["evaluation", "created_at", "stage", "batch"]
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "stage", "batch"],
                name="evaluation_artifact_unique_stage_batch",
            ),
        ]


class LLMCacheEntry(models.Model):
    """A paid LLM answer, keyed by the SHA-256 of everything that determines it."""

    key = models.CharField(max_length=64, primary_key=True)
    model = models.CharField(max_length=200)
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "LLM cache entries"

    def __str__(self) -> str:
        return f"{self.model}:{self.key[:12]}"


class EmbeddingCacheEntry(models.Model):
    key = models.CharField(max_length=64, primary_key=True)
    model = models.CharField(max_length=200)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()  # float32 little-endian
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "embedding cache entries"

    def __str__(self) -> str:
        return f"{self.model}:{self.key[:12]}"


class WorkerPing(models.Model):
    """Written by a worker on request: proves the broker -> worker -> database loop works."""

    token = models.CharField(max_length=64, unique=True)
    requested_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.token
