"""Any CSV or JSON Lines file, with a column mapping given by the user.

The mapping names, for each field the platform needs, the column that holds it:
``prompt=question,response_a=answer_1,response_b=answer_2,preferred=label``. Files that
name a winner and a loser map ``chosen``/``rejected`` instead of ``response_a``/``b``;
their sides are then assigned by the seeded per-row coin flip. Unmapped columns are kept
in the pair's metadata.
"""

from __future__ import annotations

import json

from annotations.importers.base import (
    DataImportError,
    PairRow,
    ParseOptions,
    Record,
    place_chosen,
    register,
    row_key,
)
from annotations.importers.readers import RecordFormat

TARGETS = {
    "prompt": "the prompt",
    "response_a": "response A",
    "response_b": "response B",
    "chosen": "the preferred response (instead of response_a/response_b)",
    "rejected": "the dispreferred response",
    "preferred": "a | b | tie | both_bad (also text_a/text_b, 1/2)",
    "reason": "why the preferred response is better",
    "score_a": "rating of response A",
    "score_b": "rating of response B",
    "score_chosen": "rating of the chosen response",
    "score_rejected": "rating of the rejected response",
    "id": "your id for the pair",
    "split": "train | test",
}


def mapping_parse(value: str | dict[str, str] | None) -> dict[str, str] | None:
    """``"prompt=q,response_a=x"`` or a JSON object or a dict -> {target: column}."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, dict):
        mapping = {str(k).strip(): str(v).strip() for k, v in value.items()}
    else:
        text = value.strip()
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataImportError(
                    f"the mapping is not valid JSON ({exc.msg})", field="mapping"
                ) from None
            if not isinstance(loaded, dict):
                raise DataImportError("the mapping must be a JSON object", field="mapping")
            return mapping_parse(loaded)
        mapping = {}
        for part in text.replace("\n", ",").split(","):
            if not part.strip():
                continue
            target, sep, column = part.partition("=")
            if not sep or not target.strip() or not column.strip():
                raise DataImportError(
                    f"mapping entry {part.strip()!r} should look like field=column", field="mapping"
                )
            mapping[target.strip()] = column.strip()
    mapping_validate(mapping)
    return mapping


def mapping_validate(mapping: dict[str, str]) -> None:
    unknown = sorted(set(mapping) - set(TARGETS))
    if unknown:
        raise DataImportError(
            f"unknown mapping field(s) {', '.join(unknown)}; use {', '.join(TARGETS)}",
            field="mapping",
        )
    has_ab = "response_a" in mapping and "response_b" in mapping
    has_cr = "chosen" in mapping and "rejected" in mapping
    if has_ab == has_cr:
        raise DataImportError(
            "map either response_a and response_b, or chosen and rejected", field="mapping"
        )


@register
class GenericFormat(RecordFormat):
    name = "generic"
    label = "Other CSV/JSONL with a column mapping"
    needs_mapping = True

    def parse(self, source, sniffed, options: ParseOptions):
        if not options.mapping:
            raise DataImportError(
                "the generic format needs a column mapping, e.g. "
                "prompt=question,response_a=answer1,response_b=answer2,preferred=label",
                field="mapping",
            )
        mapping_validate(options.mapping)
        if sniffed.container == "csv":
            missing = [c for c in options.mapping.values() if c not in sniffed.columns]
            if missing:
                raise DataImportError(
                    f"mapped column not in the header (columns: {', '.join(sniffed.columns)})",
                    line=1,
                    field=missing[0],
                )
        return super().parse(source, sniffed, options)

    def pair_from_record(self, record: Record, options: ParseOptions) -> PairRow:
        mapping = options.mapping or {}
        used = set(mapping.values())

        def column(target: str) -> str | None:
            return mapping.get(target)

        def required_text(target: str, *, response: bool) -> str:
            col = mapping[target]
            if col not in record.data:
                raise record.error(f"missing field (mapped to {target})", col)
            return record.response(col) if response else record.text(col)

        prompt = required_text("prompt", response=False) if column("prompt") else ""
        external_id = record.external_id(mapping["id"]) if column("id") else ""
        reason = record.text(mapping["reason"], required=False) if column("reason") else ""
        split = record.split(mapping["split"]) if column("split") else "unassigned"
        metadata = {k: v for k, v in record.data.items() if k not in used}
        if "chosen" in mapping:
            chosen = required_text("chosen", response=True)
            rejected = required_text("rejected", response=True)
            key = external_id or row_key(prompt, chosen, rejected)
            placed = place_chosen(
                seed=options.seed,
                key=key,
                chosen=chosen,
                rejected=rejected,
                score_chosen=record.number(mapping["score_chosen"])
                if column("score_chosen")
                else None,
                score_rejected=(
                    record.number(mapping["score_rejected"]) if column("score_rejected") else None
                ),
            )
            metadata["source_sides"] = placed["side"]
            fields = {k: placed[k] for k in ("response_a", "response_b", "score_a", "score_b")}
            preference = placed["source_preference"]
        else:
            fields = {
                "response_a": required_text("response_a", response=True),
                "response_b": required_text("response_b", response=True),
                "score_a": record.number(mapping["score_a"]) if column("score_a") else None,
                "score_b": record.number(mapping["score_b"]) if column("score_b") else None,
            }
            preference = record.preference(mapping["preferred"]) if column("preferred") else "none"
        return PairRow(
            line=record.line,
            external_id=external_id,
            prompt=prompt,
            source_preference=preference,
            source_reason=reason,
            split=split,
            metadata=metadata,
            **fields,
        )
