"""Shared bits of the data commands: finding a study and a progress bar on stderr."""

from __future__ import annotations

import time
from typing import TextIO

from django.core.management.base import CommandError, OutputWrapper

from annotations.models import Study


def study_get(value: str) -> Study:
    """A study by id or by exact name (names must then be unique)."""
    if value.isdigit():
        try:
            return Study.objects.get(pk=int(value))
        except Study.DoesNotExist:
            raise CommandError(f"No study with id {value}.") from None
    matches = list(Study.objects.filter(name=value)[:2])
    if not matches:
        raise CommandError(f"No study named {value!r}.")
    if len(matches) > 1:
        raise CommandError(f"Several studies are named {value!r}; give the study id instead.")
    return matches[0]


class ProgressBar:
    """``[#####.....]  45.0%  45.2/100.3 MB`` redrawn in place on stderr.

    Called with (bytes read, total bytes) by the importer; redraws at most ten times a
    second so the bar never slows the import down.
    """

    def __init__(self, stream: TextIO, *, label: str = "Importing", width: int = 30) -> None:
        self.stream = stream
        # A command's OutputWrapper ends every write with a newline and colours stderr
        # red; the bar must stay on one line in the terminal's own colour.
        self._plain = isinstance(stream, OutputWrapper)
        self.label = label
        self.width = width
        self._last = 0.0
        self._drawn = False
        self.started = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self._drawn and now - self._last < 0.1 and (total is None or done < total):
            return
        self._last = now
        self._drawn = True
        if total:
            fraction = min(1.0, done / total)
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            text = f"[{bar}] {fraction * 100:5.1f}%  {done / 1e6:.1f}/{total / 1e6:.1f} MB"
        else:
            text = f"{done / 1e6:.1f} MB read"
        elapsed = now - self.started
        self._write(f"\r{self.label} {text}  {elapsed:.0f}s")

    def finish(self) -> None:
        if self._drawn:
            self._write("\n")

    def _write(self, text: str) -> None:
        if self._plain:
            self.stream.write(text, style_func=str, ending="")  # type: ignore[call-arg]
        else:
            self.stream.write(text)
        self.stream.flush()


SKIP_INVALID_HELP = (
    "Import the valid rows and list every invalid row with its line and reason "
    "(default: one invalid row fails the import and nothing is saved)."
)


def report_details(out: OutputWrapper, report) -> None:
    """Warnings and skipped rows of an ``ImportReport``, one per line."""
    for warning in report.warnings:
        out.write(f"warning: {warning}")
    for skipped in report.skipped_rows:
        out.write(f"skipped {skipped['detail']}")
    if report.skipped > len(report.skipped_rows):
        out.write(f"... and {report.skipped - len(report.skipped_rows)} more skipped rows")
