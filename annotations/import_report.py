"""What an import did, and what it saw before confirming: plain dataclasses.

The report is stored on the dataset (``Dataset.import_report``), shown on the Data page,
returned by the API and printed by the management commands. Lists of lines are capped
(``REPORT_SAMPLE``, ``SKIPPED_SAMPLE``) so a bad 100 MB file cannot make a huge report;
the counts are always complete.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from annotations.importers import DataImportError

# Reports list the lines of the first duplicates only: enough to find them, small to store.
REPORT_SAMPLE = 50
# Skipped rows are listed with their reasons; past this many only the count grows.
SKIPPED_SAMPLE = 1000


@dataclass
class ImportReport:
    """What an import did; stored on the dataset and shown to the researcher."""

    kind: str  # "pairs" | "statements"
    format: str
    format_label: str
    filename: str = ""
    dataset_id: int | None = None
    dataset_name: str = ""
    dataset_created: bool = False
    rows_read: int = 0
    created: int = 0
    # Every duplicate: already in the dataset before this import, or repeated in the file.
    duplicates: int = 0
    duplicate_lines: list[int] = field(default_factory=list)
    duplicates_in_file: int = 0
    annotations_created: int = 0
    annotations_duplicate: int = 0
    # Imported pairs with an empty response (a blocked or failed generation is data).
    empty_responses: int = 0
    empty_response_lines: list[int] = field(default_factory=list)
    # Imported pairs whose two responses are the same text (nothing to choose between).
    identical_responses: int = 0
    identical_response_lines: list[int] = field(default_factory=list)
    # Skip-invalid mode: rows left out, each with its line and the reason.
    skip_invalid: bool = False
    skipped: int = 0
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)
    split: dict[str, Any] | None = None
    bytes_read: int = 0
    seconds: float = 0.0
    imported_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warnings": self.warnings}

    def note_duplicate(self, line: int, *, in_file: bool) -> None:
        self.duplicates += 1
        self.duplicates_in_file += int(in_file)
        if len(self.duplicate_lines) < REPORT_SAMPLE:
            self.duplicate_lines.append(line)

    def note_empty_response(self, line: int) -> None:
        self.empty_responses += 1
        if len(self.empty_response_lines) < REPORT_SAMPLE:
            self.empty_response_lines.append(line)

    def note_identical_responses(self, line: int) -> None:
        self.identical_responses += 1
        if len(self.identical_response_lines) < REPORT_SAMPLE:
            self.identical_response_lines.append(line)

    def note_skipped(self, error: DataImportError) -> None:
        self.skipped += 1
        if len(self.skipped_rows) < SKIPPED_SAMPLE:
            self.skipped_rows.append(_skipped(error))

    @property
    def warnings(self) -> list[str]:
        """Things the researcher should look at although the import succeeded."""
        out = []
        if self.empty_responses:
            out.append(
                f"{self.empty_responses} pair(s) have an empty response "
                f"({_lines(self.empty_response_lines, self.empty_responses)}); they were "
                'imported and annotators see "(empty response)".'
            )
        if self.identical_responses:
            out.append(
                f"{self.identical_responses} pair(s) have two identical responses "
                f"({_lines(self.identical_response_lines, self.identical_responses)})."
            )
        if self.duplicates_in_file:
            out.append(
                f"{self.duplicates_in_file} row(s) repeat an earlier row of the same file "
                "and were imported once."
            )
        if self.skipped:
            out.append(
                f"{self.skipped} invalid row(s) were skipped "
                f"({_lines([r['line'] or r['row'] for r in self.skipped_rows], self.skipped)})."
            )
        return out

    @property
    def summary(self) -> str:
        noun = "pairs" if self.kind == "pairs" else "statements"
        text = f"Imported {self.created} {noun}"
        if self.annotations_created:
            text += f" and {self.annotations_created} annotations"
        text += f" from {self.format_label}"
        if self.duplicates:
            text += f"; skipped {self.duplicates} duplicate {noun}"
            if self.duplicates_in_file:
                text += f" ({self.duplicates_in_file} repeated within the file)"
        if self.annotations_duplicate:
            text += f" and {self.annotations_duplicate} annotations already present"
        if self.skipped:
            text += f"; skipped {self.skipped} invalid rows"
        if self.empty_responses:
            text += f"; {self.empty_responses} with an empty response"
        return text + "."


def _skipped(error: DataImportError) -> dict[str, Any]:
    return {
        "line": error.line,
        "row": error.row,
        "field": error.field,
        "reason": error.message[:500],
        "detail": str(error)[:700],
    }


def _lines(lines: list[Any], total: int) -> str:
    shown = ", ".join(str(n) for n in lines[:10] if n is not None)
    more = ", …" if total > min(len(lines), 10) else ""
    return f"line {shown}{more}" if shown else "lines not known"


@dataclass
class ImportPreview:
    """The detected format and the first parsed rows, shown before a researcher confirms."""

    kind: str
    format: str
    format_label: str
    container: str
    columns: list[str]
    rows: list[Any]
    error: str = ""
    error_detail: dict[str, Any] | None = None
    # Skip-invalid mode: the bad rows met while reading the first ones.
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)

    def note_skipped(self, error: DataImportError) -> None:
        if len(self.skipped_rows) < PREVIEW_SKIPPED:
            self.skipped_rows.append(_skipped(error))


# A preview is for reading, not for copying the file back: each text is clipped and
# long lists are cut, so a dry run never sends megabytes of responses back.
PREVIEW_MAX_ROWS = 20
PREVIEW_SKIPPED = 20
PREVIEW_TEXT_CHARS = 2000
PREVIEW_ITEMS = 20


def preview_clip(value: Any) -> Any:
    """``value`` with texts, lists and objects cut to preview size (dataclasses too)."""
    if isinstance(value, str):
        return value if len(value) <= PREVIEW_TEXT_CHARS else value[:PREVIEW_TEXT_CHARS] + "…"
    if isinstance(value, list | tuple):
        return [preview_clip(v) for v in value[:PREVIEW_ITEMS]]
    if isinstance(value, dict):
        items = list(value.items())[:PREVIEW_ITEMS]
        return {str(k)[:200]: preview_clip(v) for k, v in items}
    if hasattr(value, "__dataclass_fields__"):
        return type(value)(
            **{k: preview_clip(getattr(value, k)) for k in value.__dataclass_fields__}
        )
    return value
