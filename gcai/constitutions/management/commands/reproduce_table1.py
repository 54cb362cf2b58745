"""manage.py reproduce_table1 FILE [--out DIR]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.imports import DataImportError
from gcai.constitutions import reproduce
from gcai.constitutions.management.commands._progress import StepBar, quiet_http_logs


class Command(BaseCommand):
    help = (
        "The improved-ICAI paper's Table 1 on one preference file: a seeded train/test "
        "split; icai, icai_improved_1 and icai_improved_2 (and gcai when the file has "
        "reasons or the study value statements) built on the training pairs; each, the "
        "no-constitution baseline and the orthogonal baseline judged on the same test "
        "pairs. Writes table1.csv (method, n, accuracy, ci_low, ci_high) and table1.md. "
        "Runs in this process unless --workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="Preference data in any supported format.")
        parser.add_argument("--out", type=Path, help="Folder for table1.csv and table1.md.")
        parser.add_argument("--study", help="Study name (default: 'Table 1 on <file name>').")
        parser.add_argument("--seed", type=int, default=0, help="Split, sampling and LLM seed.")
        parser.add_argument(
            "--test-fraction",
            type=float,
            default=0.5,
            help="Share of pairs held out for testing (default 0.5). Pairs that already "
            "have a split keep it.",
        )
        parser.add_argument("--format", help="Skip format detection.")
        parser.add_argument(
            "--workers", action="store_true", help="Queue on the Celery workers and wait."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if not 0 < options["test_fraction"] < 1:
            raise CommandError("--test-fraction: must be between 0 and 1, e.g. 0.5")
        bar = None if options["no_progress"] else StepBar(self.stderr)
        quiet_http_logs(options["verbosity"])
        study = reproduce.study_for_command(options["study"] or f"Table 1 on {path.name}")
        try:
            dataset = reproduce.dataset_import(
                study=study,
                path=path,
                test_fraction=options["test_fraction"],
                seed=options["seed"],
                format=options["format"],
            )
            rows = reproduce.table1_reproduce(
                study=study,
                dataset=dataset,
                seed=options["seed"],
                workers=options["workers"],
                progress=bar,
            )
        except (DataImportError, reproduce.ReproduceError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bar:
                bar.finish()
        out = options["out"] or Path(f"{path.stem}-table1")
        written = reproduce.table1_write(rows, out)
        self.stdout.write(reproduce.table1_markdown(rows))
        self.stderr.write(f"Wrote {', '.join(str(p) for p in written)}")
