"""What the researcher commands do: build one constitution from a file, or reproduce
the improved-ICAI paper's Table 1 on a file.

``manage.py build_constitution`` and ``manage.py reproduce_table1`` are thin adapters
over these functions. Both import the file into a study (re-running reuses the pairs:
duplicates are skipped, and the LLM cache answers every call already paid for), run the
work in this process (no worker needed, e.g. on the SQLite default) or on the Celery
workers of a deployed stack, and write their results to a folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db.models import Q

from annotations.imports import pairs_import
from annotations.models import Dataset, Moderation, PreferencePair, Split, Study, ValueStatement
from gcai.constitutions import evaluation_reports, evaluations, runs
from gcai.constitutions.labels import human_annotations
from gcai.constitutions.models import Constitution, Evaluation, EvaluationKind, Method, PipelineRun
from gcai.csvsafe import csv_lines
from gcai.jobs.models import JobStatus

#: Table 1 of the improved-ICAI paper: the baselines, then the methods, in this order.
TABLE1_METHODS: tuple[str, ...] = (Method.ICAI, Method.ICAI_IMPROVED_1, Method.ICAI_IMPROVED_2)
TABLE1_COLUMNS: tuple[str, ...] = ("method", "n", "accuracy", "ci_low", "ci_high")

Progress = Callable[[str, int, int], None]  # (what, done, total)


class ReproduceError(ValueError):
    """The command cannot go on; the message is safe to print."""


# --------------------------------------------------------------------------- data


def study_for_command(name: str) -> Study:
    """The study the commands work in, created on first use (names are the key)."""
    study = Study.objects.filter(name=name).order_by("pk").first()
    return study or Study.objects.create(name=name, description="Created by a manage.py command.")


def dataset_import(
    *,
    study: Study,
    path: Path,
    test_fraction: float | None,
    seed: int,
    format: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Dataset:
    """Import ``path`` into the study's dataset named after the file (or reuse it).

    Pairs already imported are skipped; unassigned pairs get a seeded stratified
    train/test split with ``test_fraction`` (None: they all train). Pairs that already
    have a split (from the file, or an earlier import) keep it.
    """
    report = pairs_import(
        study=study,
        dataset_name=path.stem,
        file=path,
        format=format,
        seed=seed,
        split_test_fraction=test_fraction,
        progress=progress,
    )
    dataset = Dataset.objects.get(pk=report.dataset_id)
    if test_fraction is None:
        dataset.pairs.filter(split=Split.UNASSIGNED).update(split=Split.TRAIN)
    return dataset


def has_reasons_or_statements(dataset: Dataset) -> bool:
    """Whether GCAI has human input beyond preferences: reasons or value statements."""
    pairs = PreferencePair.objects.filter(dataset=dataset, split=Split.TRAIN)
    if pairs.filter(~Q(source_reason="")).exists():
        return True
    pair_ids = pairs.values_list("pk", flat=True)
    if human_annotations(pair_ids).exclude(reason="").exists():
        return True
    return ValueStatement.objects.filter(
        study=dataset.study, moderation=Moderation.APPROVED
    ).exists()


# --------------------------------------------------------------------------- running


def run_to_end(
    run: PipelineRun, *, workers: bool, progress: Progress | None, timeout_s: float = 6 * 3600
) -> PipelineRun:
    """Run in this process, or queue on the workers and wait; the run, reloaded."""
    if not workers:
        runs.run_run_inline(
            run=run,
            progress=(lambda s, d, t: progress(f"{run.method}: {s}", d, t)) if progress else None,
        )
    else:
        from django.db import transaction

        with transaction.atomic():
            runs.run_start(run=run)
        _wait(PipelineRun, [run.pk], progress, f"{run.method}", timeout_s)
    run.refresh_from_db()
    return run


def evaluations_to_end(
    created: Sequence[Evaluation],
    *,
    workers: bool,
    progress: Progress | None,
    timeout_s: float = 6 * 3600,
) -> None:
    for evaluation in created:
        label = evaluation_reports.target_label(evaluation)
        if not workers:
            evaluations.evaluation_run_inline(
                evaluation=evaluation,
                progress=(lambda d, t, label=label: progress(f"judging {label}", d, t))
                if progress
                else None,
            )
    if workers:
        from django.db import transaction

        with transaction.atomic():
            for evaluation in created:
                evaluations.evaluation_start(evaluation=evaluation)
        _wait(Evaluation, [e.pk for e in created], progress, "judging", timeout_s)


def _wait(model: Any, ids: list[int], progress: Progress | None, label: str, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        rows = list(
            model.objects.filter(pk__in=ids).values_list(
                "status", "stage", "progress_done", "progress_total"
            )
        )
        active = [r for r in rows if r[0] in (JobStatus.QUEUED, JobStatus.RUNNING)]
        if progress is not None and rows:
            stage = next((r[1] for r in active), "done")
            progress(f"{label}: {stage}", sum(r[2] for r in rows), sum(r[3] for r in rows) or 1)
        if not active:
            return
        if time.monotonic() > deadline:
            raise ReproduceError(f"Still running after {timeout:.0f}s; see the web app.")
        time.sleep(0.5)


def _check_run(run: PipelineRun) -> Constitution:
    if run.status != JobStatus.SUCCEEDED:
        raise ReproduceError(f"The {run.method} run #{run.pk} {run.status}: {run.error[:500]}")
    constitution = Constitution.objects.filter(run=run).order_by("version").first()
    if constitution is None:
        raise ReproduceError(f"The {run.method} run #{run.pk} stored no constitution.")
    return constitution


# --------------------------------------------------------------------------- build one


def constitution_build(
    *,
    study: Study,
    dataset: Dataset,
    method: str,
    seed: int = 0,
    method_config: dict[str, Any] | None = None,
    workers: bool = False,
    progress: Progress | None = None,
) -> tuple[PipelineRun, Constitution]:
    """Build one constitution with preset ``method`` on the dataset's training pairs."""
    try:
        run = runs.run_create(
            study=study,
            method=method,
            seed=seed,
            method_config=method_config,
            dataset_ids=[dataset.pk],
            title=f"{method} on {dataset.name}",
        )
    except ValueError as exc:
        raise ReproduceError(str(exc)) from None
    run = run_to_end(run, workers=workers, progress=progress)
    return run, _check_run(run)


def run_record(run: PipelineRun, constitution: Constitution) -> dict[str, Any]:
    """What a run was and produced, for a file beside the constitution."""
    items = list(constitution.items.select_related("principle").order_by("position"))
    return {
        "run": run.pk,
        "study": run.study.name,
        "method": run.method,
        "preset": run.config.get("preset", run.method),
        "preset_version": run.config.get("preset_version", 0),
        "overrides": run.config.get("overrides", {}),
        "settings": run.config.get("method_config", {}),
        "seed": run.seed,
        "ties": run.config.get("ties"),
        "datasets": run.config.get("dataset_ids", []),
        "training_pairs": run.training_pairs.count(),
        "llm_model": run.llm_model,
        "llm_calls": run.llm_calls,
        "llm_cached_calls": run.llm_cached_calls,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "constitution": {
            "id": constitution.pk,
            "title": constitution.title,
            "principles": [
                {"position": i.position, "text": i.text, "stats": i.principle.stats} for i in items
            ],
        },
    }


def constitution_write(run: PipelineRun, constitution: Constitution, out: Path) -> list[Path]:
    """``constitution.md`` (numbered principles) and ``run.json`` (the run record)."""
    out.mkdir(parents=True, exist_ok=True)
    text = out / "constitution.md"
    text.write_text(
        f"# {constitution.title}\n\n{constitution.as_text()}\n"
        f"\nPreset `{run.method}` v{run.config.get('preset_version', 0)}, seed {run.seed}, "
        f"run {run.pk}. Settings and sources: docs/methods.md.\n",
        encoding="utf-8",
    )
    record = out / "run.json"
    record.write_text(json.dumps(run_record(run, constitution), indent=2), encoding="utf-8")
    return [text, record]


# --------------------------------------------------------------------------- Table 1


@dataclass(frozen=True)
class Table1Row:
    method: str
    n: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None

    def cells(self) -> list[str]:
        def num(x: float | None) -> str:
            return "" if x is None else f"{x:.4f}"

        return [self.method, str(self.n), num(self.accuracy), num(self.ci_low), num(self.ci_high)]


def table1_methods(dataset: Dataset) -> list[str]:
    """Improved ICAI's Table 1 methods, plus GCAI when there are reasons or statements."""
    methods = list(TABLE1_METHODS)
    if has_reasons_or_statements(dataset):
        methods.append(Method.GCAI)
    return methods


def table1_reproduce(
    *,
    study: Study,
    dataset: Dataset,
    seed: int = 0,
    methods: Sequence[str] | None = None,
    workers: bool = False,
    progress: Progress | None = None,
) -> list[Table1Row]:
    """Build every method on the training pairs and evaluate them and both baselines with
    the same judge on the same held-out test pairs (forced choice, both orders)."""
    built = []
    for method in methods or table1_methods(dataset):
        _, constitution = constitution_build(
            study=study,
            dataset=dataset,
            method=method,
            seed=seed,
            workers=workers,
            progress=progress,
        )
        built.append(constitution)
    try:
        created = evaluations.evaluations_create_comparison(
            study=study,
            constitutions=built,
            baselines=True,
            split=Split.TEST,
            seed=seed,
            dataset_ids=[dataset.pk],
            principle_analysis=False,
        )
    except evaluations.EvaluationError as exc:
        raise ReproduceError(str(exc)) from None
    evaluations_to_end(created, workers=workers, progress=progress)
    done = {e.pk: e for e in Evaluation.objects.filter(pk__in=[e.pk for e in created])}
    failed = [e for e in done.values() if e.status != JobStatus.SUCCEEDED]
    if failed:
        raise ReproduceError(
            "; ".join(f"evaluation #{e.pk} {e.status}: {e.error[:300]}" for e in failed)
        )
    return table1_rows([done[e.pk] for e in created])


def _row_name(evaluation: Evaluation) -> str:
    if evaluation.kind == EvaluationKind.CONSTITUTION and evaluation.constitution is not None:
        return evaluation.constitution.method or "constitution"
    return str(evaluation.kind)


_ORDER = {"no_constitution": 0, "orthogonal": 1, "icai": 2, "icai_improved_1": 3}
_ORDER |= {"icai_improved_2": 4, "icai_scores": 5, "gcai": 6}


def table1_rows(done: Sequence[Evaluation]) -> list[Table1Row]:
    """One row per evaluation: baselines first, then the methods in the paper's order."""
    rows = []
    for evaluation in done:
        metrics = (evaluation.results or {}).get("metrics") or {}
        headline = metrics.get(evaluation_reports.HEADLINE) or {}
        rows.append(
            Table1Row(
                method=_row_name(evaluation),
                n=int(metrics.get("n_scored") or 0),
                accuracy=headline.get("value"),
                ci_low=headline.get("lo"),
                ci_high=headline.get("hi"),
            )
        )
    return sorted(rows, key=lambda r: _ORDER.get(r.method, 9))


def table1_markdown(rows: Sequence[Table1Row]) -> str:
    """The table as Markdown: accuracy in percent with the 95% interval."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    lines = [
        "| method | n | accuracy (%) | 95% CI |",
        "|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.method} | {r.n} | {pct(r.accuracy)} | [{pct(r.ci_low)}, {pct(r.ci_high)}] |"
        )
    lines.append("")
    lines.append(
        "Accuracy: forced choice, each pair judged in both orders, each order scored on "
        "its own and averaged (improved ICAI, Table 1); Wilson 95% interval over pairs."
    )
    return "\n".join(lines) + "\n"


def table1_write(rows: Sequence[Table1Row], out: Path) -> list[Path]:
    """``table1.csv`` (method, n, accuracy, ci_low, ci_high) and ``table1.md``."""
    out.mkdir(parents=True, exist_ok=True)
    path_csv = out / "table1.csv"
    with path_csv.open("w", newline="", encoding="utf-8") as fh:
        fh.writelines(csv_lines(TABLE1_COLUMNS, (r.cells() for r in rows)))
    path_md = out / "table1.md"
    path_md.write_text(table1_markdown(rows), encoding="utf-8")
    return [path_csv, path_md]
