"""manage.py import_pairs STUDY FILE --dataset NAME [--format F] [--map prompt=col,...]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.importers import PAIR_FORMATS
from annotations.imports import DataImportError, pairs_import
from annotations.management.commands._io import (
    SKIP_INVALID_HELP,
    ProgressBar,
    report_details,
    study_get,
)


class Command(BaseCommand):
    help = (
        "Import preference pairs from a file into a dataset of a study, in one "
        "transaction (errors change nothing; duplicates are skipped). Formats: "
        + ", ".join(PAIR_FORMATS)
        + "."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="Study id or exact name.")
        parser.add_argument("file", help="Path to the JSONL, CSV or JSON file.")
        parser.add_argument("--dataset", help="Dataset name (default: the file name).")
        parser.add_argument(
            "--format",
            choices=sorted(PAIR_FORMATS),
            help="Skip detection and read the file as this format.",
        )
        parser.add_argument(
            "--map",
            dest="mapping",
            help="Column mapping for other files, e.g. prompt=question,response_a=a,response_b=b",
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="Seed for the sides of chosen/rejected data."
        )
        parser.add_argument(
            "--split-test-fraction",
            type=float,
            help="Assign a seeded stratified train/test split with this test fraction.",
        )
        parser.add_argument("--skip-invalid", action="store_true", help=SKIP_INVALID_HELP)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        study = study_get(options["study"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        progress = None if options["no_progress"] else ProgressBar(self.stderr)
        try:
            report = pairs_import(
                study=study,
                dataset_name=options["dataset"] or path.stem,
                file=path,
                format=options["format"],
                mapping=options["mapping"],
                seed=options["seed"],
                split_test_fraction=options["split_test_fraction"],
                progress=progress,
                skip_invalid=options["skip_invalid"],
            )
        except DataImportError as exc:
            if progress:
                progress.finish()
            raise CommandError(f"{path.name}: {exc}. Nothing was imported.") from None
        if progress:
            progress.finish()
        self.stdout.write(self.style.SUCCESS(report.summary))
        self.stdout.write(
            f"dataset {report.dataset_name!r} (id {report.dataset_id}): "
            f"{report.rows_read} rows read, {report.created} pairs created, "
            f"{report.duplicates} duplicates skipped ({report.duplicates_in_file} within the "
            f"file), {report.empty_responses} with an empty response, "
            f"{report.identical_responses} with identical responses, "
            f"{report.skipped} invalid rows skipped, "
            f"{report.annotations_created} annotations created, {report.seconds:.1f}s"
        )
        if report.duplicate_lines:
            lines = ", ".join(map(str, report.duplicate_lines[:10]))
            self.stdout.write(f"first duplicates at line/row: {lines}")
        report_details(self.stdout, report)
        if report.split:
            self.stdout.write(
                f"split: {report.split['assigned_train']} train, "
                f"{report.split['assigned_test']} test assigned"
            )
