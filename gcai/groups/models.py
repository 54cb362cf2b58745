"""A comparison of constitutions built per group of people (one attribute's values).

A GroupComparison owns, through its ``key`` (the ``comparison_group`` of its rows), one
pipeline run per group and method, each restricted to that group's annotations, labels
and statements (``PipelineRun.config["people"]``) on the same training pairs and
settings, and then one evaluation per (constitution, group whose held-out labels it is
judged on): the divergence matrix. Both are ordinary jobs on the engine; this row only
records the groups and which evaluation fills which cell.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotations.models import Study


def new_key() -> str:
    return uuid.uuid4().hex


class GroupComparison(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="group_comparisons")
    key = models.CharField(max_length=64, unique=True, default=new_key, editable=False)
    title = models.CharField(max_length=200, blank=True)
    attribute = models.CharField(max_length=100)
    methods = models.JSONField(default=list)
    # [{"value", "size", "members": [[kind, ref], ...]}]: frozen at creation. Members
    # are internal (they filter the runs); they are never shown or exported.
    groups = models.JSONField(default=list)
    # seed, batch_size, max_training_pairs, eval_limit, labels per group (held-out).
    config = models.JSONField(default=dict, blank=True)
    # [{"method", "row" (whose constitution), "col" (whose labels), "evaluation"}]
    cells = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    evaluations_created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(attribute=""), name="group_comparison_attribute"),
        ]

    def __str__(self) -> str:
        return self.title or f"Groups by {self.attribute}"

    @property
    def values(self) -> list[str]:
        return [g["value"] for g in self.groups]
