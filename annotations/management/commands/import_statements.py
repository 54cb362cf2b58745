"""manage.py import_statements STUDY FILE [--map text=col,participant=col,...]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.imports import DataImportError, statements_import
from annotations.management.commands._io import (
    SKIP_INVALID_HELP,
    ProgressBar,
    report_details,
    study_get,
)


class Command(BaseCommand):
    help = (
        "Import value statements (CSV/JSONL: text, optional participant, question, "
        "moderation) into a study, in one transaction; duplicates are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="Study id or exact name.")
        parser.add_argument("file", help="Path to the CSV or JSONL file.")
        parser.add_argument(
            "--map",
            dest="mapping",
            help="Column mapping, e.g. text=answer,participant=pid,question=q,moderation=status",
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
            report = statements_import(
                study=study,
                file=path,
                mapping=options["mapping"],
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
        report_details(self.stdout, report)
