"""Inverse Constitutional AI's formats: the processed CSV and "annotated pairs" JSON.

ICAI CSV: an unnamed index column, ``text_a``, ``text_b``, ``preferred_text`` (text_a |
text_b | tie | tie (bothbad)), optionally ``input`` (the prompt), ``model_a``, ``model_b``.
Without ``input`` each text holds instruction and answer together; ICAI's synthetic data
writes them as "Instruction: ...\\n\\nOutput: ...", which is split exactly. Otherwise a
shared leading paragraph becomes the prompt, and when the texts share nothing the
prompt stays empty and each response keeps its full text.

Annotated pairs JSON (version 2; version 1 is read too): ``metadata`` (with
``default_annotator``), ``annotators`` and ``comparisons`` with ``prompt``,
``response_a.text``, ``response_b.text`` and ``annotations`` keyed by annotator id. The
default annotator's preference becomes the pair's source preference; every other
annotator becomes an annotation under its id, with its type and description kept in
the annotation's metadata so principle-annotators can be told apart from people.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from annotations.importers.base import (
    AnnotationRow,
    DataImportError,
    PairFormat,
    PairRow,
    ParseOptions,
    Record,
    Sniffed,
    preference_from,
    register,
    row_failed,
    timestamp_from,
)
from annotations.importers.readers import RecordFormat, undecodable_field

_INSTRUCTION_OUTPUT = re.compile(r"\AInstruction:[ \t]*(.*?)\n\nOutput:[ \t]*(.*)\Z", re.DOTALL)
ICAI_KNOWN_COLUMNS = {"index", "text_a", "text_b", "preferred_text", "input"}


def split_icai_texts(text_a: str, text_b: str) -> tuple[str, str, str, str]:
    """(prompt, response_a, response_b, how) from two instruction+answer texts."""
    match_a, match_b = _INSTRUCTION_OUTPUT.match(text_a), _INSTRUCTION_OUTPUT.match(text_b)
    if match_a and match_b and match_a.group(1) == match_b.group(1):
        # Whitespace around the answer is the template's, not the model's.
        return (
            match_a.group(1).strip(),
            match_a.group(2).strip(),
            match_b.group(2).strip(),
            "instruction_output",
        )
    n = 0
    limit = min(len(text_a), len(text_b))
    while n < limit and text_a[n] == text_b[n]:
        n += 1
    # Cut at the last paragraph break inside the shared part: a shared prefix that ends
    # mid-sentence is a coincidence of wording, not a prompt.
    cut = text_a.rfind("\n\n", 0, n)
    if cut > 0:
        prompt = text_a[:cut].strip()
        rest_a, rest_b = text_a[cut:].strip(), text_b[cut:].strip()
        if prompt and rest_a and rest_b:
            return prompt, rest_a, rest_b, "shared_prefix"
    return "", text_a, text_b, "unsplit"


@register
class IcaiCsvFormat(RecordFormat):
    name = "icai_csv"
    label = "ICAI CSV (text_a, text_b, preferred_text)"
    containers = ("csv", "jsonl")

    def score(self, sniffed: Sniffed) -> int:
        return 90 if {"text_a", "text_b", "preferred_text"} <= set(sniffed.columns) else 0

    def pair_from_record(self, record: Record, options: ParseOptions) -> PairRow:
        text_a = record.response("text_a")
        text_b = record.response("text_b")
        preference = record.preference("preferred_text", required=True)
        metadata: dict[str, Any] = {
            k: v for k, v in record.data.items() if k not in ICAI_KNOWN_COLUMNS and v != ""
        }
        prompt = record.text("input", required=False)
        if prompt.strip():
            response_a, response_b = text_a, text_b
        else:
            prompt, response_a, response_b, how = split_icai_texts(text_a, text_b)
            metadata["icai_prompt_split"] = how
        return PairRow(
            line=record.line,
            external_id=record.external_id("index"),
            prompt=prompt,
            response_a=response_a,
            response_b=response_b,
            source_preference=preference,
            metadata=metadata,
        )


# Keys our own ICAI export writes into each comparison's metadata to carry pair fields
# the annotated-pairs format has no place for; they are restored on import.
RESTORED_METADATA = (
    "split",
    "score_a",
    "score_b",
    "source_reason",
    "prompt_messages",
    "external_id",
)


@register
class IcaiAnnotatedPairsFormat(PairFormat):
    name = "icai_ap"
    label = "ICAI annotated pairs JSON (version 2)"
    containers = ("json",)

    def score(self, sniffed: Sniffed) -> int:
        return 95 if "comparisons" in sniffed.columns else 0

    def parse(self, source, sniffed: Sniffed, options: ParseOptions) -> Iterator[PairRow]:
        text = source.read_all()
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataImportError(
                f"not valid JSON ({exc.msg} at column {exc.colno})", line=exc.lineno
            ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("comparisons"), list):
            raise DataImportError(
                "expected an object with a 'comparisons' list", field="comparisons"
            )
        if source.dirty_lines:
            bad = undecodable_field(doc)
            raise DataImportError(
                "not valid UTF-8 text; save the file as UTF-8 and import again",
                line=source.dirty_lines[0],
                field=bad,
            )
        metadata = doc.get("metadata") or {}
        annotators = doc.get("annotators") or {}
        if not isinstance(metadata, dict) or not isinstance(annotators, dict):
            raise DataImportError("expected objects", field="metadata/annotators")
        version = str(metadata.get("version", "2.0"))
        if not version.startswith(("1", "2")):
            raise DataImportError(
                f"unsupported annotated-pairs version {version!r} (1.x and 2.x are read)",
                field="metadata.version",
            )
        default = metadata.get("default_annotator")
        for index, comparison in enumerate(doc["comparisons"], start=1):
            try:
                row = _comparison_row(index, comparison, default=default, annotators=annotators)
            except DataImportError as exc:
                row_failed(options, exc)
                continue
            yield row


def _comparison_row(
    index: int, comparison: Any, *, default: Any, annotators: dict[str, Any]
) -> PairRow:
    def fail(message: str, field: str | None = None) -> DataImportError:
        return DataImportError(message, row=index, field=field, unit="comparison")

    if not isinstance(comparison, dict):
        raise fail("expected an object")
    prompt = comparison.get("prompt")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise fail("expected text", "prompt")
    texts = []
    models = {}
    for side in ("a", "b"):
        response = comparison.get(f"response_{side}")
        if response is None and f"text_{side}" in comparison:  # version 1
            response = {"text": comparison[f"text_{side}"]}
        if response is None:
            raise fail("missing field", f"response_{side}")
        if isinstance(response, str):
            response = {"text": response}
        if not isinstance(response, dict) or not isinstance(response.get("text"), str):
            raise fail("missing field", f"response_{side}.text")
        texts.append(response["text"])
        for key, value in response.items():
            if key != "text":
                models[f"{key}_{side}"] = value
    pair_metadata = comparison.get("metadata") or {}
    if not isinstance(pair_metadata, dict):
        raise fail("expected an object", "metadata")
    pair_metadata = dict(pair_metadata)
    restored = {key: pair_metadata.pop(key) for key in RESTORED_METADATA if key in pair_metadata}
    record = Record(data=restored, line=index, row=index, unit="comparison")
    annotations_in = comparison.get("annotations") or {}
    if not isinstance(annotations_in, dict):
        raise fail("expected an object keyed by annotator id", "annotations")
    source_preference = "none"
    annotations = []
    skipped = 0
    for annotator_id, annotation in annotations_in.items():
        field = f"annotations.{annotator_id}"
        if not isinstance(annotation, dict):
            raise fail("expected an object", field)
        preferred = _ap_preference(annotation, error=lambda msg, f=field: fail(msg, f + ".pref"))
        if annotator_id == default:
            source_preference = preferred or "none"
            continue
        if preferred is None:
            skipped += 1  # "not applicable"/"invalid" votes carry no preference to store
            continue
        info = annotators.get(annotator_id) or {}
        extra = {
            k: v for k, v in annotation.items() if k not in ("pref", "reason", "no_pref_reason")
        }
        meta = {**extra}
        # Keep what tells a principle or a model apart from a person; a human
        # annotator's id already says everything the platform needs.
        if isinstance(info, dict) and info.get("type") != "human":
            for key in ("type", "name", "description"):
                if info.get(key) and not (key == "name" and info[key] == annotator_id):
                    meta[f"annotator_{key}"] = info[key]
        reason = annotation.get("reason") or ""
        if not isinstance(reason, str):
            raise fail("expected text", field + ".reason")
        annotations.append(
            AnnotationRow(
                annotator=str(annotator_id),
                preferred=preferred,
                reason=reason,
                shown_swapped=bool(meta.pop("shown_swapped", False)),
                duration_ms=_optional_int(meta.pop("duration_ms", None)),
                shown_at=_optional_time(meta.pop("shown_at", None), fail, field + ".shown_at"),
                submitted_at=_optional_time(
                    meta.pop("submitted_at", None), fail, field + ".submitted_at"
                ),
                metadata=meta,
            )
        )
    if skipped:
        pair_metadata["icai_annotations_without_preference"] = skipped
    prompt_messages = restored.get("prompt_messages")
    # Our export must give every comparison an id; a pair that had none says so here.
    external_id = restored.get("external_id", comparison.get("id"))
    return PairRow(
        line=index,
        external_id="" if external_id is None else str(external_id)[:200],
        prompt=prompt,
        prompt_messages=prompt_messages if isinstance(prompt_messages, list) else None,
        response_a=texts[0],
        response_b=texts[1],
        source_preference=source_preference,
        source_reason=record.text("source_reason", required=False),
        score_a=record.number("score_a"),
        score_b=record.number("score_b"),
        split=record.split(),
        metadata={**models, **pair_metadata},
        annotations=annotations,
    )


def _ap_preference(annotation: dict[str, Any], *, error) -> str | None:
    pref = annotation.get("pref")
    if pref is None:
        # Our export writes ties this way: ICAI's format has no tie value.
        reason = annotation.get("no_pref_reason")
        return (
            {"tie": "tie", "both_bad": "both_bad"}.get(reason) if isinstance(reason, str) else None
        )
    preferred = preference_from(pref, error=error)
    return None if preferred == "none" else preferred


def _optional_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _optional_time(value: Any, fail, field: str):
    if value in (None, ""):
        return None
    return timestamp_from(value, error=lambda msg: fail(msg, field))
