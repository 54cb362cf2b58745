"""NVIDIA HelpSteer2-preference (and HelpSteer3's spelling of the same fields).

``prompt`` (HelpSteer3: ``context`` as chat messages), ``response_1``, ``response_2``,
``preference_strength`` from -3 to 3 (negative: response 1 is better; HelpSteer3 calls it
``overall_preference``), and the written justification (``preference_statement`` and
``preference_elaboration``) which becomes the pair's source reason. Individual annotator
judgements (HelpSteer3's ``individual_preference``: score + reasoning) become annotations,
so their reasons can ground principles. The order of the two responses is kept: it was
never tied to which one won.
"""

from __future__ import annotations

import re
from typing import Any

from annotations.importers.base import (
    AnnotationRow,
    PairRow,
    ParseOptions,
    Record,
    Sniffed,
    register,
)
from annotations.importers.chat import messages_from, render_messages
from annotations.importers.readers import RecordFormat

RESPONSE_KEYS = (("response_1", "response1"), ("response_2", "response2"))
STRENGTH_KEYS = ("preference_strength", "overall_preference")
REASON_KEYS = ("preference_statement", "preference_elaboration", "overall_justification")
KNOWN = {
    "prompt",
    "context",
    "split",
    "id",
    "individual_preference",
    *(k for pair in RESPONSE_KEYS for k in pair),
    *STRENGTH_KEYS,
    *REASON_KEYS,
}
_TURN = re.compile(r"\n?<extra_id_1>(User|Assistant)\n")


@register
class HelpSteerFormat(RecordFormat):
    name = "helpsteer2"
    label = "HelpSteer2-preference (prompt, response_1, response_2, preference_strength)"

    def score(self, sniffed: Sniffed) -> int:
        columns = set(sniffed.columns)
        has_responses = all(any(k in columns for k in keys) for keys in RESPONSE_KEYS)
        return 85 if has_responses and any(k in columns for k in STRENGTH_KEYS) else 0

    def pair_from_record(self, record: Record, options: ParseOptions) -> PairRow:
        prompt, prompt_messages = _prompt(record)
        response_1 = record.response(_first_key(record, RESPONSE_KEYS[0]))
        response_2 = record.response(_first_key(record, RESPONSE_KEYS[1]))
        strength_key = _first_key(record, STRENGTH_KEYS)
        strength = _strength(record, strength_key)
        reason = "\n\n".join(
            record.text(k, required=False).strip() for k in REASON_KEYS if record.has(k)
        )
        annotations = _individual(record)
        metadata = {k: v for k, v in record.data.items() if k not in KNOWN}
        metadata["preference_strength"] = strength
        return PairRow(
            line=record.line,
            external_id=record.external_id("id"),
            prompt=prompt,
            prompt_messages=prompt_messages,
            response_a=response_1,
            response_b=response_2,
            source_preference=_preference(strength),
            source_reason=reason,
            split=record.split(),
            metadata=metadata,
            annotations=annotations,
        )


def _first_key(record: Record, keys: tuple[str, ...]) -> str:
    return next((k for k in keys if k in record.data), keys[0])


def _strength(record: Record, key: str) -> int:
    value = record.number(key)
    if value is None:
        raise record.error("missing field", key)
    if value != int(value) or not -3 <= value <= 3:
        raise record.error(f"expected a whole number from -3 to 3, got {record.data[key]!r}", key)
    return int(value)


def _preference(strength: float) -> str:
    if strength < 0:
        return "a"
    return "b" if strength > 0 else "tie"


def _prompt(record: Record) -> tuple[str, list[dict[str, str]] | None]:
    if "context" in record.data and "prompt" not in record.data:
        context = record.json_value("context", (list, str))
        if isinstance(context, str):
            return context, None
        messages = messages_from(context, error=lambda msg: record.error(msg, "context"))
        return render_messages(messages), messages
    prompt = record.text("prompt")
    if "<extra_id_1>" not in prompt:
        return prompt, None
    # HelpSteer2 writes multi-turn prompts as "u1<extra_id_1>Assistant\na1<extra_id_1>User\nu2".
    parts = _TURN.split(prompt)
    messages = [{"role": "user", "content": parts[0].strip()}]
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": role.lower(), "content": content.strip()})
    return render_messages(messages), messages


def _individual(record: Record) -> list[AnnotationRow]:
    items = record.json_value("individual_preference", list) or []
    rows = []
    for index, item in enumerate(items):
        field = f"individual_preference[{index}]"
        if not isinstance(item, dict):
            raise record.error("expected an object with score and reasoning", field)
        sub = Record(data=item, line=record.line, row=record.row)
        try:
            strength = _strength(sub, "score")
        except ValueError as exc:
            raise record.error(getattr(exc, "message", str(exc)), f"{field}.score") from None
        reasoning: Any = item.get("reasoning") or ""
        rows.append(
            AnnotationRow(
                annotator=f"helpsteer-annotator-{index + 1}",
                preferred=_preference(strength),
                reason=reasoning if isinstance(reasoning, str) else str(reasoning),
                metadata={"preference_strength": strength},
            )
        )
    return rows
