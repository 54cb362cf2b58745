"""Streaming readers: bytes in, numbered text lines and records out; and ``RecordFormat``,
the base of every format read record by record (JSON Lines or CSV rows).

Files are read one line at a time from the binary stream, so a 100 MB upload never sits
in memory as a whole, and every error can name its exact line. Decoding is per line:
a line that is not UTF-8 is kept with its bad bytes escaped and the record built from it
is then checked field by field, so the error names the row AND the field that holds the
bad bytes instead of a byte offset nobody can find.

CSV cells are read back through ``gcai.csvsafe.unescape_cell``, so the platform's own
exports (which neutralise spreadsheet formulas with a leading apostrophe) round-trip.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from annotations.importers.base import (
    DataImportError,
    PairFormat,
    PairRow,
    ParseOptions,
    Record,
    RowErrorFn,
    Sniffed,
    row_failed,
)
from gcai.csvsafe import unescape_cell

# Responses can be long; the csv module's default cap (128 KiB per field) is not a
# limit researchers should meet. The byte cap on the whole file still applies.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

BOM = b"\xef\xbb\xbf"
ProgressFn = Callable[[int, int | None], None]


class TextSource:
    """Numbered, decoded lines from a binary stream, with a byte cap and progress."""

    def __init__(
        self,
        binary: BinaryIO,
        *,
        max_bytes: int | None = None,
        total_bytes: int | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self._binary = binary
        self.max_bytes = max_bytes
        self.total_bytes = total_bytes
        self.progress = progress
        self.bytes_read = 0
        self.lines_read = 0
        self.dirty_lines: list[int] = []
        self._last_progress = 0.0

    def lines(self) -> Iterator[tuple[int, str]]:
        readline = self._binary.readline
        line_no = 0
        while True:
            raw = readline()
            if not raw:
                break
            line_no += 1
            self.bytes_read += len(raw)
            if self.max_bytes is not None and self.bytes_read > self.max_bytes:
                raise DataImportError(too_large_message(None, self.max_bytes), line=line_no)
            if line_no == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "surrogateescape")
                self.dirty_lines.append(line_no)
            self.lines_read = line_no
            if self.progress is not None and line_no % 256 == 0:
                self._report()
            yield line_no, text
        if self.progress is not None:
            self._report(force=True)

    def read_all(self) -> str:
        """The whole text, for formats that are one JSON document (bounded by the cap)."""
        return "".join(text for _, text in self.lines())

    def has_dirty(self, first: int, last: int) -> bool:
        return any(first <= n <= last for n in self.dirty_lines)

    def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= 0.1:
            self._last_progress = now
            assert self.progress is not None
            self.progress(self.bytes_read, self.total_bytes)


def too_large_message(size: int | None, limit: int) -> str:
    size_text = f"{size / 1e6:.1f} MB" if size is not None else "more than the limit"
    return (
        f"the file is {size_text}; the import limit is {limit / 1e6:.1f} MB "
        "(setting GCAI_IMPORT_MAX_BYTES)"
    )


def undecodable_field(value: Any, path: str = "") -> str | None:
    """The first field (dotted path) holding bytes that were not valid UTF-8, if any."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "(value)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if undecodable_field(str(key)) is not None:
                return child
            found = undecodable_field(item, child)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = undecodable_field(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def encoding_error(**where: Any) -> DataImportError:
    return DataImportError(
        "not valid UTF-8 text (the file looks like another encoding, e.g. Latin-1 or "
        "Windows-1252); save it as UTF-8 and import again",
        **where,
    )


# --- Records --------------------------------------------------------------------------------
def _row_failed(on_error: RowErrorFn | None, error: DataImportError) -> None:
    if on_error is None:
        raise error
    on_error(error)


def iter_records(
    source: TextSource, sniffed: Sniffed, *, on_error: RowErrorFn | None = None
) -> Iterator[Record]:
    """Records of a JSON Lines or CSV file. A bad row raises, or with ``on_error`` is
    handed to it and skipped; problems with the file as a whole always raise."""
    if sniffed.container == "jsonl":
        return iter_jsonl(source, on_error=on_error)
    if sniffed.container == "csv":
        return iter_csv(source, delimiter=sniffed.delimiter, on_error=on_error)
    raise DataImportError(
        f"this format reads JSON Lines or CSV, but the file is {sniffed.container.upper()}",
        line=1,
    )


def iter_jsonl(source: TextSource, *, on_error: RowErrorFn | None = None) -> Iterator[Record]:
    for line_no, text in source.lines():
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            _row_failed(
                on_error,
                DataImportError(f"not valid JSON ({exc.msg} at column {exc.colno})", line=line_no),
            )
            continue
        if not isinstance(data, dict):
            _row_failed(
                on_error, DataImportError("each line must be one JSON object ({...})", line=line_no)
            )
            continue
        if source.has_dirty(line_no, line_no):
            bad = undecodable_field(data)
            if bad is not None:
                _row_failed(on_error, encoding_error(line=line_no, field=bad))
                continue
        yield Record(data=data, line=line_no)


class _LineFeed:
    """Feeds decoded lines to csv.reader while remembering line numbers."""

    def __init__(self, source: TextSource) -> None:
        self._lines = source.lines()
        self.line_no = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        self.line_no, text = next(self._lines)
        return text


def csv_columns(header: list[str]) -> list[str]:
    columns = []
    for index, name in enumerate(header):
        name = name.strip()
        # pandas writes its index as an unnamed first column (ICAI's CSVs do).
        if not name:
            name = "index" if index == 0 else f"column_{index + 1}"
        columns.append(name)
    return columns


def iter_csv(
    source: TextSource, *, delimiter: str = ",", on_error: RowErrorFn | None = None
) -> Iterator[Record]:
    feed = _LineFeed(source)
    reader = csv.reader(feed, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataImportError(f"the header is not valid CSV ({exc})", line=1) from None
    if not header:
        raise DataImportError("the file is empty", line=1)
    columns = csv_columns(header)
    if source.has_dirty(1, feed.line_no):
        bad = next((c for c in columns if undecodable_field(c)), columns[0])
        raise encoding_error(line=1, field=bad)
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise DataImportError(
                "this column name appears twice in the header", line=1, field=name
            )
        seen.add(name)
    row_no = 0
    last_line = feed.line_no
    while True:
        first_line = last_line + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row_no += 1
            _row_failed(
                on_error, DataImportError(f"not valid CSV ({exc})", row=row_no, line=feed.line_no)
            )
            last_line = feed.line_no
            continue
        last_line = feed.line_no
        if not values or (len(values) == 1 < len(columns) and not values[0].strip()):
            continue  # a blank line (in a one-column file, a blank cell is a value)
        row_no += 1
        if len(values) != len(columns):
            _row_failed(
                on_error,
                DataImportError(
                    f"has {len(values)} values but the header has {len(columns)} columns "
                    "(an unquoted comma or line break in a field?)",
                    row=row_no,
                    line=first_line,
                ),
            )
            continue
        data = {column: unescape_cell(value) for column, value in zip(columns, values, strict=True)}
        if source.has_dirty(first_line, last_line):
            bad = undecodable_field(data)
            if bad is not None:
                _row_failed(on_error, encoding_error(row=row_no, line=first_line, field=bad))
                continue
        yield Record(data=data, line=first_line, row=row_no)


class RecordFormat(PairFormat):
    """A format whose file is a sequence of records (JSON Lines or CSV rows)."""

    def parse(self, source, sniffed: Sniffed, options: ParseOptions) -> Iterator[PairRow]:
        for record in iter_records(source, sniffed, on_error=options.on_error):
            try:
                row = self.pair_from_record(record, options)
            except DataImportError as exc:
                row_failed(options, exc)
                continue
            yield row

    def pair_from_record(self, record: Record, options: ParseOptions) -> PairRow:
        raise NotImplementedError
