"""Plain rows, errors and the format registry shared by every importer.

Importers only parse: they turn a file into ``PairRow``/``StatementRow`` dataclasses and
know nothing about the database, so a format can be tested without Django and the
saving rules (one transaction, duplicates, chunks) live in one place,
``annotations.imports``.

Adding a format is one small class: subclass ``readers.RecordFormat`` (JSONL/CSV records) or
``PairFormat`` (whole documents), give it a ``name``, a ``label``, a ``score`` that
recognises its columns, and ``pair_from_record``; decorate it with ``@register``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

# Values as stored by annotations.models (kept as plain strings: this package is Django-free).
PREFERENCES = ("a", "b", "tie", "both_bad", "none")
SPLITS = ("train", "test", "unassigned")
MODERATIONS = ("pending", "approved", "rejected")
MAX_EXTERNAL_ID = 200

_PREFERENCE_ALIASES = {
    "a": "a",
    "b": "b",
    "tie": "tie",
    "both_bad": "both_bad",
    "bothbad": "both_bad",
    "both bad": "both_bad",
    "tie (bothbad)": "both_bad",
    "none": "none",
    "": "none",
    "text_a": "a",
    "text_b": "b",
    "response_a": "a",
    "response_b": "b",
    "1": "a",
    "2": "b",
}
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    # Held-out data under another name is still held out.
    "val": "test",
    "valid": "test",
    "validation": "test",
    "dev": "test",
    "eval": "test",
    "unassigned": "unassigned",
    "": "unassigned",
}


class DataImportError(ValueError):
    """Bad input. The message names where (row/line) and which field, when known."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
        unit: str = "row",
    ) -> None:
        self.message = message
        self.line = line
        self.row = row
        self.field = field
        self.unit = unit
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"{self.unit} {self.row}")
            if self.line is not None and self.line != self.row:
                where[-1] += f" (line {self.line})"
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "detail": str(self),
            "message": self.message,
            "line": self.line,
            "row": self.row,
            "field": self.field,
        }


@dataclass(slots=True)
class AnnotationRow:
    """One person's (or tool's) preference on the pair, in the pair's a/b terms."""

    annotator: str
    preferred: str
    reason: str = ""
    shown_swapped: bool = False
    shown_at: datetime | None = None
    submitted_at: datetime | None = None
    duration_ms: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Attributes of the annotator (personal data: stored as PersonAttribute rows, never
    # in the annotation's metadata).
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class PairRow:
    """A preference pair as read from a file, before it becomes a database row."""

    line: int
    prompt: str
    response_a: str
    response_b: str
    external_id: str = ""
    prompt_messages: list[dict[str, str]] | None = None
    source_preference: str = "none"
    source_reason: str = ""
    score_a: float | None = None
    score_b: float | None = None
    split: str = "unassigned"
    metadata: dict[str, Any] = field(default_factory=dict)
    annotations: list[AnnotationRow] = field(default_factory=list)


@dataclass(slots=True)
class StatementRow:
    line: int
    text: str
    participant: str = ""
    question: str = ""
    moderation: str = "pending"
    metadata: dict[str, Any] = field(default_factory=dict)


RowErrorFn = Callable[["DataImportError"], None]


@dataclass(slots=True)
class ParseOptions:
    seed: int = 0
    mapping: dict[str, str] | None = None
    # Skip-invalid mode: a bad row is handed to this callback and parsing goes on.
    # Without it (the default) the first bad row raises and the import changes nothing.
    on_error: RowErrorFn | None = None


def row_failed(options: ParseOptions, error: DataImportError) -> None:
    """Report a bad row: raise it (all-or-nothing), or hand it over and carry on."""
    if options.on_error is None:
        raise error
    options.on_error(error)


def is_empty_response(text: str) -> bool:
    """Whitespace only. An empty response is data (a blocked or failed generation the
    judge still compared), imported and shown to annotators as "(empty response)"."""
    return not text.strip()


@dataclass(slots=True)
class Sniffed:
    """What detection saw at the start of a file."""

    container: str  # "jsonl" | "csv" | "json"
    columns: list[str]
    first: dict[str, Any]
    delimiter: str = ","


# --- Records: one JSON object or one CSV row, with helpers that name row and field -------
@dataclass(slots=True)
class Record:
    data: dict[str, Any]
    line: int
    row: int | None = None  # CSV data row (1 = first row after the header)
    unit: str = "row"

    def error(self, message: str, field: str | None = None) -> DataImportError:
        return DataImportError(message, line=self.line, row=self.row, field=field, unit=self.unit)

    def has(self, key: str) -> bool:
        value = self.data.get(key)
        return value is not None and value != ""

    def text(self, key: str, *, required: bool = True, allow_empty: bool = False) -> str:
        """A string field; numbers are accepted (ids often are numbers)."""
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.error("missing field", key)
            return ""
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(f"expected text, got {type(value).__name__}", key)
        value = str(value)
        if required and not allow_empty and not value.strip():
            raise self.error("empty value", key)
        return value

    def response(self, key: str) -> str:
        """A response text; empty is allowed (see ``is_empty_response``), missing is not."""
        return self.text(key, allow_empty=True)

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            raise self.error(f"expected a number, got {value!r}", key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.error(f"expected a number, got {value!r}", key) from None
        if not math.isfinite(number):
            raise self.error(f"expected a finite number, got {value!r}", key)
        return number

    def integer(self, key: str) -> int | None:
        number = self.number(key)
        if number is None:
            return None
        if number != int(number) or number < 0:
            raise self.error(f"expected a whole number of 0 or more, got {self.data[key]!r}", key)
        return int(number)

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("1", "true", "yes", "y"):
            return True
        if lowered in ("0", "false", "no", "n"):
            return False
        raise self.error(f"expected true or false, got {value!r}", key)

    def preference(self, key: str, *, required: bool = False) -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error("missing field", key)
            return "none"
        return preference_from(value, error=lambda msg: self.error(msg, key))

    def split(self, key: str = "split") -> str:
        value = self.data.get(key)
        if value is None:
            return "unassigned"
        normalised = _SPLIT_ALIASES.get(str(value).strip().lower())
        if normalised is None:
            raise self.error(f"unknown split {value!r}; use train, test or unassigned", key)
        return normalised

    def external_id(self, key: str = "id") -> str:
        value = self.text(key, required=False)
        if len(value) > MAX_EXTERNAL_ID:
            raise self.error(f"longer than {MAX_EXTERNAL_ID} characters", key)
        return value

    def json_value(self, key: str, expected: type | tuple[type, ...]) -> Any:
        """A value that is JSON in CSV cells and already structured in JSONL."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str) and expected is not str:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise self.error(f"not valid JSON ({exc.msg})", key) from None
        if not isinstance(value, expected):
            raise self.error(f"expected {_type_names(expected)}, got {type(value).__name__}", key)
        return value

    def timestamp(self, key: str) -> datetime | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        return timestamp_from(value, error=lambda msg: self.error(msg, key))


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {dict: "an object", list: "a list", str: "text"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def preference_from(value: Any, *, error) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise error(f"unknown preference {value!r}; use a, b, tie or both_bad")
    normalised = _PREFERENCE_ALIASES.get(str(value).strip().lower())
    if normalised is None:
        raise error(f"unknown preference {value!r}; use a, b, tie or both_bad")
    return normalised


def timestamp_from(value: Any, *, error) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise error(f"not an ISO 8601 date-time: {value!r}") from None
    # Naive times in exports are UTC: the platform stores UTC throughout.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def chosen_goes_to_b(*, seed: int, key: str) -> bool:
    """Seeded, per-row coin flip for chosen/rejected data.

    Derived from a hash of the seed and the row's key rather than a shared RNG, so the
    answer for a row never depends on which rows came before it (re-imports, partial
    files and reordering keep every pair's sides).
    """
    digest = hashlib.sha256(f"{seed}\x00{key}".encode("utf-8", "surrogateescape")).digest()
    return bool(digest[0] & 1)


def row_key(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogateescape")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def place_chosen(
    *,
    seed: int,
    key: str,
    chosen: str,
    rejected: str,
    score_chosen: float | None = None,
    score_rejected: float | None = None,
) -> dict[str, Any]:
    """PairRow fields for a chosen/rejected pair with sides assigned by ``chosen_goes_to_b``.

    Position must carry no signal: datasets that always put the winner first would teach
    every downstream judge "A is better".
    """
    if chosen_goes_to_b(seed=seed, key=key):
        return {
            "response_a": rejected,
            "response_b": chosen,
            "score_a": score_rejected,
            "score_b": score_chosen,
            "source_preference": "b",
            "side": {"a": "rejected", "b": "chosen"},
        }
    return {
        "response_a": chosen,
        "response_b": rejected,
        "score_a": score_chosen,
        "score_b": score_rejected,
        "source_preference": "a",
        "side": {"a": "chosen", "b": "rejected"},
    }


# --- Formats -------------------------------------------------------------------------------
class PairFormat:
    """A file format that yields preference pairs."""

    name: ClassVar[str]
    label: ClassVar[str]
    containers: ClassVar[tuple[str, ...]] = ("jsonl", "csv")
    # True when the file names a winner and a loser rather than an A and a B.
    chosen_rejected: ClassVar[bool] = False
    # Only used with an explicit mapping, never picked by detection alone.
    needs_mapping: ClassVar[bool] = False

    def score(self, sniffed: Sniffed) -> int:
        """0 when this is not the format; higher is a more specific match."""
        return 0

    def parse(self, source, sniffed: Sniffed, options: ParseOptions) -> Iterator[PairRow]:
        raise NotImplementedError


PAIR_FORMATS: dict[str, PairFormat] = {}


def register(cls: type[PairFormat]) -> type[PairFormat]:
    """Class decorator: make a format available to detection, forms, API and commands."""
    PAIR_FORMATS[cls.name] = cls()
    return cls


def pair_format_get(name: str) -> PairFormat:
    try:
        return PAIR_FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(PAIR_FORMATS))
        raise DataImportError(f"unknown format {name!r}; use one of: {known}") from None


def pair_format_choices() -> list[tuple[str, str]]:
    return [(fmt.name, fmt.label) for fmt in PAIR_FORMATS.values()]
