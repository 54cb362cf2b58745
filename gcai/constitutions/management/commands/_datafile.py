"""The shared front of the commands that build from a preference file (build_constitution,
reproduce_table1): the file, study, seed, split, format, workers and progress options,
their validation, and the import of the file into a study."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.imports import DataImportError
from annotations.models import Dataset, Study
from gcai.constitutions import reproduce
from gcai.constitutions.management.commands._progress import StepBar, quiet_http_logs


class DataFileCommand(BaseCommand):
    """Subclasses set ``study_prefix`` ("Built from"), ``default_test_fraction`` and
    ``test_fraction_help``; ``imported(options)`` yields (study, dataset, progress)."""

    study_prefix = "Built from"
    default_test_fraction = 0.0
    test_fraction_help = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="Preference data in any supported format.")
        parser.add_argument(
            "--study", help=f"Study name (default: '{self.study_prefix} <file name>')."
        )
        parser.add_argument("--seed", type=int, default=0, help="Split, sampling and LLM seed.")
        parser.add_argument(
            "--test-fraction",
            type=float,
            default=self.default_test_fraction,
            help=self.test_fraction_help + " Pairs that already have a split keep it.",
        )
        parser.add_argument("--format", help="Skip format detection.")
        parser.add_argument(
            "--workers", action="store_true", help="Queue on the Celery workers and wait."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def check_test_fraction(self, fraction: float) -> None:
        if not 0 <= fraction < 1:
            raise CommandError("--test-fraction: must be at least 0 and below 1")

    @contextmanager
    def imported(
        self, options: dict[str, Any]
    ) -> Iterator[tuple[Study, Dataset, Callable[[str, int, int], None] | None]]:
        """Validate the options, import the file and yield what the build needs; import
        and build errors become a CommandError, and the progress bar is closed."""
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        self.check_test_fraction(options["test_fraction"])
        bar = None if options["no_progress"] else StepBar(self.stderr)
        quiet_http_logs(options["verbosity"])
        study = reproduce.study_for_command(options["study"] or f"{self.study_prefix} {path.name}")
        try:
            dataset = reproduce.dataset_import(
                study=study,
                path=path,
                test_fraction=options["test_fraction"] or None,
                seed=options["seed"],
                format=options["format"],
            )
            yield study, dataset, bar
        except (DataImportError, reproduce.ReproduceError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bar:
                bar.finish()
