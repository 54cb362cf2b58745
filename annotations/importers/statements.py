"""Value statements collected elsewhere: CSV or JSON Lines with free text.

Columns: ``text`` (or ``statement``), optional participant id (``participant``,
``participant_id``, ``pseudonym``), ``question`` and ``moderation``
(pending | approved | rejected). A mapping (``text=answer,participant=pid``) renames
columns for other files; unmapped columns are kept as metadata in the report only.
"""

from __future__ import annotations

from collections.abc import Iterator

from annotations.importers.base import (
    MODERATIONS,
    DataImportError,
    Record,
    RowErrorFn,
    Sniffed,
    StatementRow,
)
from annotations.importers.readers import TextSource, iter_records

TEXT_KEYS = ("text", "statement", "value_statement")
PARTICIPANT_KEYS = ("participant", "participant_id", "external_participant", "pseudonym")
QUESTION_KEYS = ("question", "prompt")
MODERATION_KEYS = ("moderation", "status")
STATEMENT_TARGETS = ("text", "participant", "question", "moderation")
_MODERATION_ALIASES = {"approve": "approved", "reject": "rejected", "": "pending"}


def statement_mapping_validate(mapping: dict[str, str]) -> None:
    unknown = sorted(set(mapping) - set(STATEMENT_TARGETS))
    if unknown:
        raise DataImportError(
            f"unknown mapping field(s) {', '.join(unknown)}; use {', '.join(STATEMENT_TARGETS)}",
            field="mapping",
        )
    if "text" not in mapping:
        raise DataImportError("map the statement text: text=<column>", field="mapping")


def _columns_for(sniffed: Sniffed, mapping: dict[str, str] | None) -> dict[str, str | None]:
    if mapping:
        statement_mapping_validate(mapping)
        return {target: mapping.get(target) for target in STATEMENT_TARGETS}
    columns = set(sniffed.columns)

    def pick(keys: tuple[str, ...]) -> str | None:
        return next((k for k in keys if k in columns), None)

    chosen = {
        "text": pick(TEXT_KEYS),
        "participant": pick(PARTICIPANT_KEYS),
        "question": pick(QUESTION_KEYS),
        "moderation": pick(MODERATION_KEYS),
    }
    if chosen["text"] is None:
        raise DataImportError(
            f"no statement text column (looked for {', '.join(TEXT_KEYS)}); "
            "give a mapping such as text=answer",
            line=1,
            field="text",
        )
    return chosen


def statements_parse(
    source: TextSource,
    sniffed: Sniffed,
    *,
    mapping: dict[str, str] | None = None,
    on_error: RowErrorFn | None = None,
) -> Iterator[StatementRow]:
    """Value statements of a CSV/JSONL file; a bad row raises, or with ``on_error`` is
    handed to it and skipped."""
    if sniffed.container not in ("csv", "jsonl"):
        raise DataImportError("statements are read from CSV or JSON Lines files", line=1)
    columns = _columns_for(sniffed, mapping)
    if sniffed.container == "csv":
        missing = [c for c in columns.values() if c is not None and c not in sniffed.columns]
        if missing:
            raise DataImportError("mapped column not in the header", line=1, field=missing[0])
    used = {c for c in columns.values() if c}
    for record in iter_records(source, sniffed, on_error=on_error):
        try:
            row = _statement_row(record, columns, used)
        except DataImportError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        yield row


def _statement_row(record: Record, columns: dict[str, str | None], used: set[str]) -> StatementRow:
    text_key = columns["text"]
    assert text_key is not None
    if text_key not in record.data:
        raise record.error("missing field", text_key)
    text = record.text(text_key, allow_empty=True).strip()
    if not text:
        raise record.error("empty statement", text_key)
    participant = (
        record.text(columns["participant"], required=False).strip()
        if columns["participant"]
        else ""
    )
    if len(participant) > 200:
        raise record.error("longer than 200 characters", columns["participant"])
    question = record.text(columns["question"], required=False) if columns["question"] else ""
    moderation = "pending"
    if columns["moderation"]:
        raw = record.text(columns["moderation"], required=False).strip().lower()
        moderation = _MODERATION_ALIASES.get(raw, raw)
        if moderation not in MODERATIONS:
            raise record.error(
                f"unknown moderation state {raw!r}; use pending, approved or rejected",
                columns["moderation"],
            )
    return StatementRow(
        line=record.line,
        text=text,
        participant=participant,
        question=question,
        moderation=moderation,
        metadata={k: v for k, v in record.data.items() if k not in used},
    )
