"""UltraFeedback-binarized and other DPO-style files: ``prompt``, ``chosen``, ``rejected``.

``chosen``/``rejected`` are chat message lists (UltraFeedback: the user turn followed by
the assistant's answer) or plain answer strings; ``score_chosen``/``score_rejected``
become the pair's scores. Sides are assigned by a seeded coin flip per row, recorded in
``metadata["source_sides"]``.
"""

from __future__ import annotations

from typing import Any

from annotations.importers.base import (
    PairRow,
    ParseOptions,
    Record,
    Sniffed,
    place_chosen,
    register,
    row_key,
)
from annotations.importers.chat import messages_from, render_messages, response_text, shared_prefix
from annotations.importers.readers import RecordFormat

KNOWN = {"prompt", "chosen", "rejected", "score_chosen", "score_rejected", "prompt_id", "id"}
# Repeats of the chosen conversation: dropped rather than stored twice per pair.
DROPPED = {"messages"}


@register
class UltraFeedbackFormat(RecordFormat):
    name = "ultrafeedback"
    label = "UltraFeedback-binarized / DPO (prompt, chosen, rejected, score_chosen, score_rejected)"
    chosen_rejected = True

    def score(self, sniffed: Sniffed) -> int:
        columns = set(sniffed.columns)
        if not {"chosen", "rejected"} <= columns:
            return 0
        chosen = sniffed.first.get("chosen")
        is_messages = isinstance(chosen, list) or (
            isinstance(chosen, str) and chosen.lstrip().startswith("[{")
        )
        if is_messages:
            return 85
        return 70 if "prompt" in columns else 0

    def pair_from_record(self, record: Record, options: ParseOptions) -> PairRow:
        chosen = _side(record, "chosen")
        rejected = _side(record, "rejected")
        prompt_messages = None
        if isinstance(chosen, list) and isinstance(rejected, list):
            shared, rest_chosen, rest_rejected = shared_prefix(chosen, rejected)
            response_chosen = response_text(rest_chosen)
            response_rejected = response_text(rest_rejected)
            prompt_messages = shared or None
        else:
            response_chosen = _as_text(chosen)
            response_rejected = _as_text(rejected)
        if record.has("prompt"):
            prompt = record.text("prompt")
        elif prompt_messages:
            prompt = render_messages(prompt_messages)
        else:
            raise record.error("missing field", "prompt")
        external_id = record.external_id("prompt_id" if record.has("prompt_id") else "id")
        key = external_id or row_key(prompt, response_chosen, response_rejected)
        placed = place_chosen(
            seed=options.seed,
            key=key,
            chosen=response_chosen,
            rejected=response_rejected,
            score_chosen=record.number("score_chosen"),
            score_rejected=record.number("score_rejected"),
        )
        metadata = {k: v for k, v in record.data.items() if k not in KNOWN and k not in DROPPED}
        metadata["source_sides"] = placed["side"]
        return PairRow(
            line=record.line,
            external_id=external_id,
            prompt=prompt,
            prompt_messages=prompt_messages,
            response_a=placed["response_a"],
            response_b=placed["response_b"],
            source_preference=placed["source_preference"],
            score_a=placed["score_a"],
            score_b=placed["score_b"],
            metadata=metadata,
        )


def _side(record: Record, key: str) -> Any:
    value = record.data.get(key)
    if value is None:
        raise record.error("missing field", key)
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        value = record.json_value(key, list)
    if isinstance(value, list):
        return messages_from(value, error=lambda msg: record.error(msg, key))
    if not isinstance(value, str):
        raise record.error("expected a list of messages or text", key)
    return value


def _as_text(side: Any) -> str:
    if isinstance(side, list):
        # A message list whose partner is plain text: the answer is its last turn.
        return side[-1]["content"] if side else ""
    return side
