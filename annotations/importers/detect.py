"""Recognise a file's container (JSON Lines, CSV, JSON document) and its format.

Detection looks only at the start of the file (the first record, or the head of a JSON
document) and rewinds, so it costs nothing on large files. Each registered format
scores the columns it sees; the most specific match wins, and an explicit format or a
column mapping always overrides detection.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, BinaryIO

from annotations.importers.base import (
    PAIR_FORMATS,
    DataImportError,
    PairFormat,
    Sniffed,
    pair_format_get,
)
from annotations.importers.readers import BOM, csv_columns

HEAD_BYTES = 256 * 1024
# A CSV's first data row may span several physical lines (quoted line breaks).
CSV_SNIFF_LINES = 2000


def sniff(binary: BinaryIO) -> Sniffed:
    """Look at the start of ``binary`` and rewind it."""
    start = binary.tell()
    try:
        return _sniff(binary)
    finally:
        binary.seek(start)


def _decode(raw: bytes) -> str:
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    return raw.decode("utf-8", "surrogateescape")


def _sniff(binary: BinaryIO) -> Sniffed:
    first_raw = binary.readline()
    while first_raw and not first_raw.strip():
        first_raw = binary.readline()
    if not first_raw:
        raise DataImportError("the file is empty", line=1)
    first = _decode(first_raw).strip()
    if first.startswith("["):
        raise DataImportError(
            "JSON arrays are not supported; save the records as JSON Lines "
            "(one JSON object per line)",
            line=1,
        )
    if first.startswith("{"):
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and not _looks_like_document(obj):
            return Sniffed(container="jsonl", columns=list(obj), first=obj)
        # A JSON document spread over many lines (ICAI annotated pairs).
        binary.seek(0)
        head = _decode(binary.read(HEAD_BYTES))
        keys = [k for k in ("metadata", "annotators", "comparisons") if f'"{k}"' in head]
        return Sniffed(container="json", columns=keys, first=obj if isinstance(obj, dict) else {})
    return _sniff_csv(first_raw, binary)


def _looks_like_document(obj: dict[str, Any]) -> bool:
    return "comparisons" in obj and isinstance(obj.get("comparisons"), list)


def _sniff_csv(first_raw: bytes, binary: BinaryIO) -> Sniffed:
    header_line = _decode(first_raw)
    delimiter = "\t" if header_line.count("\t") > header_line.count(",") else ","
    lines = [header_line]
    for _ in range(CSV_SNIFF_LINES):
        raw = binary.readline()
        if not raw:
            break
        lines.append(_decode(raw))
        try:
            rows = list(csv.reader(io.StringIO("".join(lines)), delimiter=delimiter))
        except csv.Error:
            continue
        if len(rows) >= 2 and rows[1]:
            break
    try:
        rows = list(csv.reader(io.StringIO("".join(lines)), delimiter=delimiter))
    except csv.Error:
        rows = [next(csv.reader([header_line], delimiter=delimiter))]
    columns = csv_columns(rows[0]) if rows else []
    values = rows[1] if len(rows) > 1 else []
    first = dict(zip(columns, values, strict=False))
    return Sniffed(container="csv", columns=columns, first=first, delimiter=delimiter)


def pair_format_detect(sniffed: Sniffed) -> PairFormat:
    """The registered format that best matches what ``sniff`` saw."""
    best: tuple[int, PairFormat] | None = None
    for fmt in PAIR_FORMATS.values():
        if fmt.needs_mapping or sniffed.container not in fmt.containers:
            continue
        score = fmt.score(sniffed)
        if score > 0 and (best is None or score > best[0]):
            best = (score, fmt)
    if best is None:
        shown = ", ".join(sniffed.columns[:12]) or "none"
        raise DataImportError(
            f"could not recognise the format of this {sniffed.container.upper()} file "
            f"(columns: {shown}); choose a format or give a column mapping such as "
            "prompt=question,response_a=answer1,response_b=answer2,preferred=label",
            line=1,
        )
    return best[1]


def pair_format_resolve(
    binary: BinaryIO, *, format: str | None = None, mapping: dict[str, str] | None = None
) -> tuple[PairFormat, Sniffed]:
    """The format to use: explicit name, else the mapping format, else detection."""
    sniffed = sniff(binary)
    if format:
        fmt = pair_format_get(format)
        if mapping and not fmt.needs_mapping:
            raise DataImportError(
                f"a column mapping only applies to the generic format, not {fmt.name!r}"
            )
    elif mapping:
        fmt = pair_format_get("generic")
    else:
        fmt = pair_format_detect(sniffed)
    if sniffed.container not in fmt.containers:
        raise DataImportError(
            f"the {fmt.label} format reads {' or '.join(c.upper() for c in fmt.containers)}, "
            f"but this file is {sniffed.container.upper()}",
            line=1,
        )
    return fmt, sniffed
