"""``manage.py evaluate CONSTITUTION_ID``: evaluate a constitution (and the baselines) and
print the report table the evaluation pages show."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gcai.constitutions import evaluation_reports, evaluations
from gcai.constitutions.evaluations import EvaluationError
from gcai.constitutions.labels import DEFAULT_TIE_POLICY, TIE_POLICIES
from gcai.constitutions.models import Constitution, Evaluation
from gcai.jobs.models import JobStatus


class Command(BaseCommand):
    help = (
        "Evaluate a constitution by preference reconstruction on held-out pairs (test split "
        "by default), optionally with the no-constitution and orthogonal baselines. The "
        "work runs on the Celery workers (--wait to follow it) or in this process (--inline)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("constitution", type=int, help="Id of the constitution to evaluate.")
        parser.add_argument(
            "--baselines",
            action="store_true",
            help="Also run the no-constitution and orthogonal baselines on the same pairs.",
        )
        parser.add_argument(
            "--split",
            choices=evaluations.SPLITS,
            default="test",
            help="Pairs to judge: held-out test pairs (default) or training pairs.",
        )
        parser.add_argument("--limit", type=int, help="Judge at most N pairs (seeded sample).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--batch-size", type=int, default=evaluations.DEFAULT_BATCH_SIZE)
        parser.add_argument(
            "--orthogonal",
            type=Path,
            help="File of orthogonal principles, one per line (default: the bundled list).",
        )
        parser.add_argument(
            "--ground-truth",
            type=Path,
            help="File of ground-truth principles, one per line: adds constitution similarity.",
        )
        parser.add_argument(
            "--llm-similarity",
            action="store_true",
            help="Let the judge also rate matched principles (with --ground-truth).",
        )
        parser.add_argument(
            "--no-principle-analysis",
            action="store_true",
            help="Skip per-principle statistics (halves the calls).",
        )
        parser.add_argument(
            "--allow-abstain",
            action="store_true",
            help="Let the judge answer 'none' (adds strict agreement, coverage, abstention).",
        )
        parser.add_argument(
            "--ties",
            choices=TIE_POLICIES,
            default=DEFAULT_TIE_POLICY,
            help="Tied or split-annotator pairs: exclude them (default, as the reference) "
            "or keep them as ties.",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--wait", action="store_true", help="Queue on the workers and wait for the results."
        )
        mode.add_argument(
            "--inline", action="store_true", help="Run in this process, without a worker."
        )
        parser.add_argument(
            "--timeout", type=float, default=6 * 3600, help="Seconds --wait waits at most."
        )
        parser.add_argument("--json", action="store_true", help="Print the table as JSON rows.")

    def handle(self, *args, **options) -> None:
        constitution = (
            Constitution.objects.select_related("study").filter(pk=options["constitution"]).first()
        )
        if constitution is None:
            raise CommandError(f"No constitution {options['constitution']}.")
        try:
            created = evaluations.evaluations_create_comparison(
                study=constitution.study,
                constitutions=[constitution],
                baselines=options["baselines"],
                split=options["split"],
                limit=options["limit"],
                seed=options["seed"],
                batch_size=options["batch_size"],
                orthogonal_principles=_read(options["orthogonal"]),
                ground_truth=_read(options["ground_truth"]),
                llm_similarity=options["llm_similarity"],
                principle_analysis=not options["no_principle_analysis"],
                allow_abstain=options["allow_abstain"],
                ties=options["ties"],
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        first = created[0]
        split = "held-out test pairs" if first.split == "test" else "TRAINING pairs (not held out)"
        self.stderr.write(
            f"{constitution} (study {constitution.study}): {len(created)} evaluation(s) on "
            f"{first.progress_total} {split}, judge {first.llm_model}, "
            f"comparison {first.comparison_group}"
        )
        if options["inline"]:
            for evaluation in created:
                self.stderr.write(
                    f"Evaluating #{evaluation.pk} {evaluation_reports.target_label(evaluation)}"
                )
                evaluations.evaluation_run_inline(evaluation=evaluation)
        else:
            for evaluation in created:
                evaluations.evaluation_start(evaluation=evaluation)
            if not options["wait"]:
                ids = ", ".join(f"#{e.pk}" for e in created)
                self.stdout.write(f"Queued evaluations {ids}; follow them in the web app.")
                return
            self._wait([e.pk for e in created], options["timeout"])
        rows = evaluation_reports.evaluations_in_group(
            study=constitution.study, group=first.comparison_group
        )
        if options["json"]:
            table = evaluation_reports.comparison_csv_rows(rows)
            self.stdout.write(
                json.dumps([dict(zip(table[0], r, strict=True)) for r in table[1:]], indent=2)
            )
        else:
            self.stdout.write(evaluation_reports.evaluation_table_text(rows))
        unfinished = [e for e in rows if e.status != JobStatus.SUCCEEDED]
        if unfinished:
            errors = "; ".join(
                f"#{e.pk} {e.status}: {Evaluation.objects.get(pk=e.pk).error[:200]}"
                for e in unfinished
            )
            raise CommandError(f"Not every evaluation succeeded ({errors}).")

    def _wait(self, ids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            rows = list(
                Evaluation.objects.filter(pk__in=ids).values_list(
                    "status", "progress_done", "progress_total"
                )
            )
            done = sum(d for _, d, _ in rows)
            total = sum(t for _, _, t in rows)
            active = sum(1 for s, _, _ in rows if s in (JobStatus.QUEUED, JobStatus.RUNNING))
            if (done, active) != last:
                self.stderr.write(f"{done}/{total} pair judgements stored, {active} running")
                last = (done, active)
            if not active:
                return
            if time.monotonic() > deadline:
                raise CommandError(
                    "Timed out waiting for the workers; the evaluations keep running."
                )
            time.sleep(1.0)


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc}") from exc
