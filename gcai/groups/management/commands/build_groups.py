"""manage.py build_groups STUDY --attribute NAME [--method gcai|icai] [--out FILE]

Builds one constitution per group of people in this process (the job engine's tasks run
inline), evaluates each on every group's held-out preferences, prints each group's
constitution and the divergence matrix, and can write the whole report as JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.management.commands._io import study_get
from gcai.constitutions import evaluations, runs
from gcai.constitutions.models import Evaluation
from gcai.groups import report as reports
from gcai.groups import services


def _drive(comparison) -> None:
    """Run every run, then every evaluation of the matrix, to the end in this process.

    Each step stores what it finished; stepping again continues from there, so this
    does not depend on the engine's after-commit hand-offs.
    """
    for _ in range(500):
        active = [r for r in services.comparison_runs(comparison) if r.is_active]
        if not active:
            break
        for run in active:
            runs.run_step(run.pk)
    services.group_comparison_advance(comparison.pk)
    comparison.refresh_from_db()
    ids = [c["evaluation"] for c in comparison.cells if c["evaluation"]]
    for evaluation in Evaluation.objects.filter(pk__in=ids).defer("results"):
        if evaluation.is_active:
            evaluations.evaluation_run_inline(evaluation=evaluation)


class Command(BaseCommand):
    help = (
        "Build one GCAI (or ICAI) constitution per value of an attribute and print the "
        "divergence matrix (each group's constitution on each group's held-out preferences)."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="Study id or exact name.")
        parser.add_argument("--attribute", required=True, help="Attribute to split people by.")
        parser.add_argument(
            "--method", action="append", choices=services.METHODS, help="Repeat for several."
        )
        parser.add_argument("--values", help="Comma-separated values to compare (default: all).")
        parser.add_argument("--max-training-pairs", type=int)
        parser.add_argument("--eval-limit", type=int, help="Held-out pairs per group at most.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--dataset", type=int, action="append", help="Dataset id (repeat; default: all)."
        )
        parser.add_argument("--out", help="Write the report as JSON to this file.")

    def handle(self, *args, **options):
        from gcai.celery import app

        study = study_get(options["study"])
        started = time.monotonic()
        try:
            comparison = services.group_comparison_create(
                study=study,
                attribute=options["attribute"],
                methods=options["method"] or ["gcai"],
                values=[v.strip() for v in options["values"].split(",")]
                if options["values"]
                else None,
                seed=options["seed"],
                max_training_pairs=options["max_training_pairs"],
                eval_limit=options["eval_limit"],
                dataset_ids=options["dataset"],
            )
        except services.GroupComparisonError as exc:
            raise CommandError(str(exc)) from None
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True  # every engine task runs here, in order
        try:
            _drive(comparison)
        finally:
            app.conf.task_always_eager = eager
        comparison.refresh_from_db()
        report = reports.divergence_report(comparison)
        elapsed = time.monotonic() - started
        status = report["comparison"]["status"]
        for method, groups in report["constitutions"].items():
            for group, principles in groups.items():
                self.stdout.write(f"\n{method} constitution of {options['attribute']} = {group}:")
                for i, text in enumerate(principles, 1):
                    self.stdout.write(f"  {i}. {text}")
        self.stdout.write("\n" + reports.matrix_text(report))
        for c in report["agreement"]["cohen"]:
            self.stdout.write(
                f"Agreement {c['a']} vs {c['b']}: {c['n_pairs']} pairs, kappa {c['kappa']}"
            )
        usage = report["usage"]
        self.stdout.write(
            f"\nStatus {status}; {elapsed:.1f} s; LLM calls: runs {usage['runs']['llm_calls']:.0f} "
            f"(+{usage['runs']['llm_cached_calls']:.0f} cached), evaluations "
            f"{usage['evaluations']['llm_calls']:.0f} "
            f"(+{usage['evaluations']['llm_cached_calls']:.0f} cached)"
        )
        if options["out"]:
            Path(options["out"]).write_text(json.dumps(report, indent=2))
            self.stdout.write(f"Report written to {options['out']}")
        if status != "done":
            failed = [r for r in report["runs"] if r["error"]]
            detail = f": {failed[0]['error'][:300]}" if failed else ""
            raise CommandError(f"The comparison did not finish ({status}){detail}")
