"""The platform's own format (JSON Lines or CSV), also what the pair exports write.

JSONL: ``prompt`` (text or a list of chat messages), ``response_a``, ``response_b``,
optional ``preferred`` (a|b|tie|both_bad, or tie with ``both_bad: true``), ``reason``,
``score_a``, ``score_b``, ``id``, ``split``, ``metadata`` and ``annotations`` (a list of
{annotator, preferred, reason, shown_swapped, shown_at, submitted_at, duration_ms,
annotator_attributes}; ``annotator_attributes`` is an object such as {"country": "UK"},
stored as the annotator's attributes, see annotations.attributes);
any other key is kept in the pair's metadata (AlpacaEval's model_a/model_b/source).

CSV: the same columns; with an ``annotator`` column (the CSV export: one row per
annotation) consecutive rows of one pair are merged and ``preferred``/``reason`` belong
to the annotation, the pair's own label being ``source_preference``/``source_reason``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from annotations.importers.base import (
    AnnotationRow,
    PairRow,
    ParseOptions,
    Record,
    Sniffed,
    preference_from,
    register,
    timestamp_from,
)
from annotations.importers.chat import messages_from, render_messages
from annotations.importers.readers import RecordFormat

PAIR_KEYS = {
    "id",
    "prompt",
    "prompt_messages",
    "response_a",
    "response_b",
    "preferred",
    "source_preference",
    "both_bad",
    "reason",
    "source_reason",
    "score_a",
    "score_b",
    "split",
    "metadata",
    "annotations",
}
# Written by the exports to describe the row a file came from, not the pair itself.
PROVENANCE_KEYS = {"pair_id", "dataset", "content_hash"}
CSV_ANNOTATION_KEYS = {
    "annotation_id",
    "annotator",
    "annotator_kind",
    "shown_order",
    "shown_swapped",
    "shown_at",
    "submitted_at",
    "duration_ms",
    "annotation_metadata",
}
ANNOTATION_KEYS = {
    "annotator",
    "annotator_attributes",
    "preferred",
    "reason",
    "shown_swapped",
    "shown_at",
    "submitted_at",
    "duration_ms",
    "metadata",
}
# Written by the exports for readers; derived from other fields or from the database row.
ANNOTATION_DERIVED_KEYS = {"annotation_id", "annotator_kind", "shown_order"}


@register
class GcaiFormat(RecordFormat):
    name = "gcai"
    label = "GCAI JSONL/CSV (prompt, response_a, response_b, preferred, reason)"

    def score(self, sniffed: Sniffed) -> int:
        columns = set(sniffed.columns)
        return 60 if {"prompt", "response_a", "response_b"} <= columns else 0

    def parse(self, source, sniffed: Sniffed, options: ParseOptions) -> Iterator[PairRow]:
        # CSV exports repeat a pair on one row per annotation: merge consecutive repeats.
        # Only rows that carry annotations are merged; any other repeat is a duplicate
        # row and must reach the import report as one.
        per_annotation = sniffed.container == "csv" and "annotator" in sniffed.columns
        pending: PairRow | None = None
        for row in super().parse(source, sniffed, options):
            if (
                per_annotation
                and pending is not None
                and pending.annotations
                and row.annotations
                and _same_pair(pending, row)
            ):
                pending.annotations.extend(row.annotations)
                continue
            if pending is not None:
                yield pending
            pending = row
        if pending is not None:
            yield pending

    def pair_from_record(self, record: Record, options: ParseOptions) -> PairRow:
        data = record.data
        per_annotation_csv = record.row is not None and "annotator" in data
        prompt, prompt_messages = _prompt(record)
        if per_annotation_csv:
            preference = record.preference("source_preference")
            reason = record.text("source_reason", required=False)
        else:
            key = "preferred" if "preferred" in data else "source_preference"
            preference = record.preference(key)
            reason = record.text("reason" if "reason" in data else "source_reason", required=False)
        if record.flag("both_bad") and preference in ("tie", "none"):
            preference = "both_bad"
        metadata = {
            k: v
            for k, v in data.items()
            if k not in PAIR_KEYS
            and k not in PROVENANCE_KEYS
            and not (per_annotation_csv and k in CSV_ANNOTATION_KEYS)
        }
        metadata.update(record.json_value("metadata", dict) or {})
        annotations = _csv_annotation(record) if per_annotation_csv else _jsonl_annotations(record)
        return PairRow(
            line=record.line,
            external_id=record.external_id("id"),
            prompt=prompt,
            prompt_messages=prompt_messages,
            response_a=record.response("response_a"),
            response_b=record.response("response_b"),
            source_preference=preference,
            source_reason=reason,
            score_a=record.number("score_a"),
            score_b=record.number("score_b"),
            split=record.split(),
            metadata=metadata,
            annotations=annotations,
        )


def _same_pair(a: PairRow, b: PairRow) -> bool:
    return (a.external_id, a.prompt, a.response_a, a.response_b) == (
        b.external_id,
        b.prompt,
        b.response_a,
        b.response_b,
    )


def _prompt(record: Record) -> tuple[str, list[dict[str, str]] | None]:
    value = record.data.get("prompt")
    if isinstance(value, list):
        messages = messages_from(value, error=lambda msg: record.error(msg, "prompt"))
        return render_messages(messages), messages
    prompt = record.text("prompt")
    raw_messages = record.json_value("prompt_messages", list)
    if raw_messages is None:
        return prompt, None
    messages = messages_from(raw_messages, error=lambda msg: record.error(msg, "prompt_messages"))
    return prompt, messages


def _csv_annotation(record: Record) -> list[AnnotationRow]:
    annotator = record.text("annotator", required=False).strip()
    if not annotator:
        return []
    preferred = record.preference("preferred", required=True)
    if preferred == "none":
        raise record.error("an annotation needs a preference (a, b, tie or both_bad)", "preferred")
    return [
        AnnotationRow(
            annotator=annotator,
            preferred=preferred,
            reason=record.text("reason", required=False),
            shown_swapped=record.flag("shown_swapped"),
            shown_at=record.timestamp("shown_at"),
            submitted_at=record.timestamp("submitted_at"),
            duration_ms=record.integer("duration_ms"),
            metadata=record.json_value("annotation_metadata", dict) or {},
        )
    ]


def _jsonl_annotations(record: Record) -> list[AnnotationRow]:
    items = record.json_value("annotations", list) or []
    rows = []
    for index, item in enumerate(items):
        rows.append(_annotation_item(record, item, f"annotations[{index}]"))
    return rows


def _annotation_item(record: Record, item: Any, path: str) -> AnnotationRow:
    if not isinstance(item, dict):
        raise record.error("expected an object", path)
    sub = Record(data=item, line=record.line, row=record.row)

    def fail(msg: str, key: str):
        return record.error(msg, f"{path}.{key}")

    annotator = item.get("annotator")
    if not isinstance(annotator, str | int) or isinstance(annotator, bool) or not str(annotator):
        raise fail("missing field", "annotator")
    if "preferred" not in item:
        raise fail("missing field", "preferred")
    preferred = preference_from(item["preferred"], error=lambda msg: fail(msg, "preferred"))
    if preferred == "none":
        raise fail("an annotation needs a preference (a, b, tie or both_bad)", "preferred")
    reason = item.get("reason") or ""
    if not isinstance(reason, str):
        raise fail("expected text", "reason")
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise fail("expected an object", "metadata")
    attributes = _attributes(item.get("annotator_attributes"), fail)
    extras = {
        k: v
        for k, v in item.items()
        if k not in ANNOTATION_KEYS and k not in ANNOTATION_DERIVED_KEYS
    }
    timestamps = {}
    for key in ("shown_at", "submitted_at"):
        value = item.get(key)
        timestamps[key] = (
            None
            if value in (None, "")
            else timestamp_from(value, error=lambda msg, key=key: fail(msg, key))
        )
    try:
        shown_swapped = sub.flag("shown_swapped")
        duration_ms = sub.integer("duration_ms")
    except ValueError as exc:
        field = getattr(exc, "field", None) or "?"
        raise fail(getattr(exc, "message", str(exc)), field) from None
    return AnnotationRow(
        annotator=str(annotator).strip(),
        preferred=preferred,
        reason=reason,
        shown_swapped=shown_swapped,
        shown_at=timestamps["shown_at"],
        submitted_at=timestamps["submitted_at"],
        duration_ms=duration_ms,
        metadata={**extras, **metadata},
        attributes=attributes,
    )


def _attributes(value: Any, fail) -> dict[str, str]:
    """``annotator_attributes``: an object of short text (or number) values."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise fail("expected an object of attribute names and values", "annotator_attributes")
    out = {}
    for key, item in value.items():
        name = str(key).strip()
        if not name or len(name) > 100:
            raise fail("attribute names have 1 to 100 characters", "annotator_attributes")
        if item is None or item == "":
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise fail(f"attribute {name!r}: expected text or a number", "annotator_attributes")
        text = str(item).strip()
        if len(text) > 200:
            raise fail(f"attribute {name!r}: at most 200 characters", "annotator_attributes")
        if text:
            out[name] = text
    return out
