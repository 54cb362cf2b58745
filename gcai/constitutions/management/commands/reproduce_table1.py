"""manage.py reproduce_table1 FILE [--out DIR]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError, CommandParser

from gcai.constitutions import reproduce
from gcai.constitutions.management.commands._datafile import DataFileCommand


class Command(DataFileCommand):
    help = (
        "The improved-ICAI paper's Table 1 on one preference file: a seeded train/test "
        "split; icai, icai_improved_1 and icai_improved_2 (and gcai when the file has "
        "reasons or the study value statements) built on the training pairs; each, the "
        "no-constitution baseline and the orthogonal baseline judged on the same test "
        "pairs. Writes table1.csv (method, n, accuracy, ci_low, ci_high) and table1.md. "
        "Runs in this process unless --workers."
    )

    study_prefix = "Table 1 on"
    default_test_fraction = 0.5
    test_fraction_help = "Share of pairs held out for testing (default 0.5)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--out", type=Path, help="Folder for table1.csv and table1.md.")

    def check_test_fraction(self, fraction: float) -> None:
        if not 0 < fraction < 1:
            raise CommandError("--test-fraction: must be between 0 and 1, e.g. 0.5")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        with self.imported(options) as (study, dataset, bar):
            rows = reproduce.table1_reproduce(
                study=study,
                dataset=dataset,
                seed=options["seed"],
                workers=options["workers"],
                progress=bar,
            )
        out = options["out"] or Path(f"{path.stem}-table1")
        written = reproduce.table1_write(rows, out)
        self.stdout.write(reproduce.table1_markdown(rows))
        self.stderr.write(f"Wrote {', '.join(str(p) for p in written)}")
