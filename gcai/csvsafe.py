"""The one CSV writer of the platform, with spreadsheet formula injection neutralised.

Every CSV the platform writes (pair, statement and survey exports, evaluation tables)
goes through ``csv_lines``; tests/test_csv_exports.py checks each export and that no
other module builds a ``csv.writer``. A text cell that a spreadsheet would run as a
formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is
written with a leading apostrophe, as OWASP's "CSV injection" guidance advises: a
statement such as ``=HYPERLINK("http://evil", "click")`` then shows as text.

The escape is reversible, so exports that are also import formats still round-trip:
the CSV reader of the importers calls ``unescape_cell``. A value that already starts
with apostrophes before a formula character gets one more, so ``unescape_cell`` never
eats an apostrophe that was in the data.

Numbers are written as numbers (a negative score stays ``-0.5``); only text is escaped.
Django-free, so any app can import it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Apostrophes (our escape) followed by a character a spreadsheet treats as a formula.
_ESCAPED = re.compile(r"'*[=+\-@\t\r]")


def safe_cell(value: Any) -> Any:
    """The cell as written: text that a spreadsheet would evaluate gets a leading ``'``."""
    if isinstance(value, str) and _ESCAPED.match(value):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo ``safe_cell`` on a cell read back from a CSV file."""
    if value.startswith("'") and _ESCAPED.match(value, 1):
        return value[1:]
    return value


class _Echo:
    """A write-only file for csv.writer that hands back each written row."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[Any] | None, rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text, one line (row) per chunk, ready to stream; ``None`` cells are empty.

    Every cell goes through ``safe_cell``, header included.
    """
    writer = csv.writer(_Echo())
    if header is not None:
        yield writer.writerow([safe_cell(v) for v in header])
    for row in rows:
        yield writer.writerow(["" if v is None else safe_cell(v) for v in row])


def csv_text(header: Iterable[Any] | None, rows: Iterable[Iterable[Any]]) -> str:
    """The whole CSV as one string (small tables)."""
    return "".join(csv_lines(header, rows))
