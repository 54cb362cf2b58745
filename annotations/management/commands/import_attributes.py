"""manage.py import_attributes STUDY FILE: Prolific's demographic export as attributes."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.attributes import AttributeImportError, attributes_import_prolific
from annotations.management.commands._io import study_get


class Command(BaseCommand):
    help = (
        "Import Prolific's demographic export CSV into a study: rows are matched on "
        '"Participant id" against the participants\' Prolific ids; unmatched rows are reported.'
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="Study id or exact name.")
        parser.add_argument("file", help="Path to the Prolific demographic export (CSV).")

    def handle(self, *args, **options):
        study = study_get(options["study"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            with path.open("rb") as fh:
                report = attributes_import_prolific(study=study, file=fh)
        except AttributeImportError as exc:
            raise CommandError(f"{path.name}: {exc} Nothing was imported.") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.rows} rows read, {report.matched} matched, "
                f"{report.attributes_set} attributes set ({', '.join(report.keys)})."
            )
        )
        if report.unmatched_lines:
            lines = ", ".join(map(str, report.unmatched_lines[:50]))
            more = "" if len(report.unmatched_lines) <= 50 else " ..."
            self.stdout.write(
                f"{len(report.unmatched_lines)} rows matched no participant (lines {lines}{more})."
            )
