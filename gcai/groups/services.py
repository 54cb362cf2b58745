"""Build constitutions per group of people and evaluate each on every group's preferences.

``group_comparison_create`` freezes the groups (values of one attribute held by at
least the study's minimum number of people), their members and their held-out labels,
and creates one pipeline run per group and method on the SAME training pairs and
settings, each restricted to its group (``runs.run_create(people=...)``). When the last
run succeeds (``on_run_finished``, registered as a run finish hook), ``group_comparison_advance``
creates the divergence matrix: one evaluation of each group's constitution on each
group's held-out labels, all with the same judge and settings.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.attributes import Person, attribute_groups, group_filters
from annotations.models import Annotation, Split, Study
from gcai.constitutions import evaluations, pipeline, runs
from gcai.constitutions.models import Constitution, Evaluation, Method, PipelineRun
from gcai.groups.models import GroupComparison
from gcai.jobs.models import JobStatus
from gcai.jobs.stages import DEFAULT_BATCH_SIZE

log = logging.getLogger(__name__)

METHODS = ("gcai", "icai", "icai_improved_1", "icai_improved_2")
_SCORABLE = {"a", "b", "tie", "both_bad"}


class GroupComparisonError(ValueError):
    """A comparison that cannot be built; the message is safe to show."""


def _members(people: set[Person]) -> list[list[str]]:
    return sorted([p.kind, p.ref] for p in people)


def group_labels(
    *, study: Study, members: list[list[str]], split: str, dataset_ids: list[int] | None = None
) -> dict[int, str]:
    """The group's own label of each pair of ``split`` it annotated: its majority."""
    annotation_q, _ = group_filters(Person(k, r) for k, r in members)
    annotations = Annotation.objects.filter(pair__dataset__study=study, pair__split=split)
    if dataset_ids:
        annotations = annotations.filter(pair__dataset_id__in=dataset_ids)
    rows = (
        annotations.exclude(metadata__has_key="annotator_type")
        .filter(annotation_q)
        .values_list("pair_id", "preferred")
    )
    choices: dict[int, list[str]] = {}
    for pair_id, preferred in rows:
        choices.setdefault(pair_id, []).append(preferred)
    labels = {}
    for pair_id, picked in choices.items():
        label = runs.majority_label(picked).value
        if label in _SCORABLE:
            labels[pair_id] = label
    return labels


@transaction.atomic
def group_comparison_create(
    *,
    study: Study,
    attribute: str,
    methods: list[str] | tuple[str, ...] = ("gcai",),
    values: list[str] | None = None,
    user: Any = None,
    seed: int = 0,
    max_training_pairs: int | None = None,
    eval_limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    method_config: dict[str, Any] | None = None,
    dataset_ids: list[int] | None = None,
) -> GroupComparison:
    """Create the per-group runs (queued; start them with ``group_comparison_start``).

    Raises GroupComparisonError naming the problem: an unknown method, a chosen value
    below the minimum group size, fewer than two groups, or a group without held-out
    labels to evaluate on.
    """
    attribute = (attribute or "").strip()
    if not attribute:
        raise GroupComparisonError("attribute: choose an attribute to split people by.")
    methods = list(dict.fromkeys(methods or ["gcai"]))
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise GroupComparisonError(f"method: must be one of {', '.join(METHODS)}")
    if eval_limit is not None and eval_limit < 1:
        raise GroupComparisonError("eval_limit: must be at least 1")
    groups = attribute_groups(study=study, key=attribute)
    minimum = study.min_group_size
    if values:
        refused = [v for v in values if v not in groups.shown]
        if refused:
            raise GroupComparisonError(
                f"Group {refused[0]!r} of {attribute!r} has fewer than {minimum} people (the "
                "study's minimum group size) or nobody holds it, so it cannot be used. "
                "Groups below the minimum are never shown or used: attributes are personal data."
            )
        chosen = {v: groups.shown[v] for v in values}
    else:
        chosen = dict(sorted(groups.shown.items()))
    if len(chosen) < 2:
        hidden = (
            f" ({groups.hidden_values} smaller group{'s' if groups.hidden_values != 1 else ''} "
            "left out)"
            if groups.hidden_values
            else ""
        )
        raise GroupComparisonError(
            f"A comparison needs at least two groups of at least {minimum} people; "
            f"{attribute!r} has {len(chosen)}{hidden}. Lower the study's minimum group size "
            "only if your ethics approval allows it."
        )
    frozen = []
    labels: dict[str, dict[str, str]] = {}
    for value, people in chosen.items():
        members = _members(people)
        held_out = group_labels(
            study=study, members=members, split=Split.TEST, dataset_ids=dataset_ids
        )
        if not held_out:
            raise GroupComparisonError(
                f"Group {value!r} labelled no held-out (test) pair, so no constitution can "
                "be evaluated on its preferences: collect its annotations on test pairs first."
            )
        ids = pipeline.sample_ids(sorted(held_out), eval_limit, seed)
        labels[value] = {str(pk): held_out[pk] for pk in ids}
        frozen.append({"value": value, "size": len(people), "members": members})
    try:
        train_ids = pipeline.sample_ids(
            runs._training_pair_ids(study, dataset_ids), max_training_pairs, seed
        )
    except ValueError as exc:
        raise GroupComparisonError(str(exc)) from None
    comparison = GroupComparison.objects.create(
        study=study,
        title=f"Groups by {attribute} · {timezone.now():%Y-%m-%d %H:%M}",
        attribute=attribute,
        methods=methods,
        groups=frozen,
        config={
            "seed": seed,
            "batch_size": batch_size,
            "max_training_pairs": max_training_pairs,
            "eval_limit": eval_limit,
            "method_config": dict(method_config or {}),
            "dataset_ids": list(dataset_ids or []),
            "labels": labels,
        },
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    for method in methods:
        for group in frozen:
            try:
                runs.run_create(
                    study=study,
                    method=method,
                    user=user,
                    title=f"{Method(method).label} · {attribute} = {group['value']}",
                    seed=seed,
                    method_config=method_config if method == "gcai" else None,
                    batch_size=batch_size,
                    max_training_pairs=max_training_pairs,
                    training_pair_ids=train_ids,
                    dataset_ids=dataset_ids,
                    comparison_group=comparison.key,
                    people={
                        "attribute": attribute,
                        "value": group["value"],
                        "members": group["members"],
                    },
                )
            except ValueError as exc:
                raise GroupComparisonError(str(exc)) from None
    return comparison


def comparison_runs(comparison: GroupComparison) -> list[PipelineRun]:
    return list(
        PipelineRun.objects.filter(study=comparison.study, comparison_group=comparison.key)
        .defer("config")
        .order_by("pk")
    )


def group_comparison_start(*, comparison: GroupComparison) -> None:
    """Queue every run of the comparison (after commit)."""
    for run in comparison_runs(comparison):
        if run.status == JobStatus.QUEUED:
            runs.run_start(run=run)


def group_comparison_resume(*, comparison: GroupComparison) -> None:
    """Resume failed or cancelled runs and evaluations, and fill the matrix if it is due."""
    for run in comparison_runs(comparison):
        if run.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            runs.run_resume(run=run)
    ids = [c["evaluation"] for c in comparison.cells]
    for evaluation in Evaluation.objects.filter(pk__in=ids).defer("results"):
        if evaluation.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            evaluations.evaluation_resume(evaluation=evaluation)
    group_comparison_advance(comparison.pk)


def group_comparison_cancel(*, comparison: GroupComparison) -> None:
    for run in comparison_runs(comparison):
        if run.is_active:
            runs.run_cancel(run=run)
    ids = [c["evaluation"] for c in comparison.cells]
    for evaluation in Evaluation.objects.filter(pk__in=ids).defer("results"):
        if evaluation.is_active:
            evaluations.evaluation_cancel(evaluation=evaluation)


def group_comparison_advance(comparison_id: int) -> str:
    """Create and start the divergence matrix once every run has succeeded (idempotent).

    Returns "evaluating" (matrix created now or before), "waiting" (runs still going)
    or "failed" (a run failed: resume it first).
    """
    with transaction.atomic():
        comparison = GroupComparison.objects.select_for_update().get(pk=comparison_id)
        if comparison.cells:
            return "evaluating"
        statuses = [r.status for r in comparison_runs(comparison)]
        if any(s in (JobStatus.FAILED, JobStatus.CANCELLED) for s in statuses):
            return "failed"
        if not statuses or any(s != JobStatus.SUCCEEDED for s in statuses):
            return "waiting"
        constitutions = {
            (c.run.method, c.run.config.get("people", {}).get("value")): c
            for c in Constitution.objects.filter(
                run__comparison_group=comparison.key, run__study=comparison.study
            )
            .select_related("run")
            .order_by("version")
        }
        cells = []
        config = comparison.config
        for method in comparison.methods:
            for row in comparison.values:
                constitution = constitutions.get((method, row))
                if constitution is None or not constitution.items.exists():
                    # A group whose run found no principle: its row stays empty.
                    cells += [
                        {"method": method, "row": row, "col": col, "evaluation": None}
                        for col in comparison.values
                    ]
                    continue
                for col in comparison.values:
                    evaluation = evaluations.evaluation_create(
                        study=comparison.study,
                        constitution=constitution,
                        user=comparison.created_by,
                        split=Split.TEST,
                        seed=int(config.get("seed", 0)),
                        labels={int(k): v for k, v in config["labels"][col].items()},
                        comparison_group=comparison.key,
                        batch_size=int(config.get("batch_size") or 25),
                        principle_analysis=False,
                    )
                    cells.append(
                        {"method": method, "row": row, "col": col, "evaluation": evaluation.pk}
                    )
                    evaluations.evaluation_start(evaluation=evaluation)
        comparison.cells = cells
        comparison.evaluations_created_at = timezone.now()
        comparison.save(update_fields=["cells", "evaluations_created_at"])
    return "evaluating"


def on_run_finished(run_id: int) -> None:
    """Run finish hook: a group's run succeeded, so the matrix may be due."""
    key = (
        PipelineRun.objects.filter(pk=run_id, config__has_key="people")
        .values_list("comparison_group", flat=True)
        .first()
    )
    if not key:
        return
    comparison = GroupComparison.objects.filter(key=key).only("pk").first()
    if comparison is None:
        return
    try:
        group_comparison_advance(comparison.pk)
    except Exception:  # the runs are stored; "Continue" on the page retries this
        log.exception("group comparison %s could not start its evaluations", comparison.pk)


def training_pair_count(comparison: GroupComparison) -> int:
    run = PipelineRun.objects.filter(comparison_group=comparison.key).first()
    return run.training_pairs.count() if run else 0
