"""Anthropic HH-RLHF: ``chosen`` and ``rejected`` full transcripts.

Each side is a whole conversation ("\\n\\nHuman: ...\\n\\nAssistant: ..."). The turns
both sides share become the prompt (and ``prompt_messages``); what differs, usually the
last assistant turn, becomes the two responses. Which side becomes A is a seeded coin
flip per row, recorded in ``metadata["source_sides"]``.
"""

from __future__ import annotations

from annotations.importers.base import (
    PairRow,
    ParseOptions,
    Record,
    Sniffed,
    place_chosen,
    register,
    row_key,
)
from annotations.importers.chat import hh_turns, render_messages, response_text, shared_prefix
from annotations.importers.readers import RecordFormat

KNOWN = {"chosen", "rejected", "id"}


@register
class HhRlhfFormat(RecordFormat):
    name = "hh_rlhf"
    label = "Anthropic HH-RLHF (chosen/rejected transcripts)"
    chosen_rejected = True

    def score(self, sniffed: Sniffed) -> int:
        chosen = sniffed.first.get("chosen")
        if "rejected" in sniffed.columns and isinstance(chosen, str) and "Human:" in chosen:
            return 80
        return 0

    def pair_from_record(self, record: Record, options: ParseOptions) -> PairRow:
        chosen_text = record.response("chosen")
        rejected_text = record.response("rejected")
        chosen, rejected = hh_turns(chosen_text), hh_turns(rejected_text)
        for turns, key in ((chosen, "chosen"), (rejected, "rejected")):
            if not turns:
                raise record.error("no '\\n\\nHuman:' / '\\n\\nAssistant:' turns found", key)
        for turns, key in ((chosen, "chosen"), (rejected, "rejected")):
            if not any(turn["role"] == "assistant" for turn in turns):
                # Without an answer the human turn would become both "responses".
                raise record.error(
                    f"{_record_name(record)} has no Assistant turn, so there is no response "
                    "to compare",
                    key,
                )
        shared, rest_chosen, rest_rejected = shared_prefix(chosen, rejected)
        # An empty final Assistant turn is kept: an empty response is data.
        response_chosen = response_text(rest_chosen)
        response_rejected = response_text(rest_rejected)
        prompt = render_messages(shared) if shared else ""
        external_id = record.external_id("id")
        key = external_id or row_key(prompt, response_chosen, response_rejected)
        placed = place_chosen(
            seed=options.seed, key=key, chosen=response_chosen, rejected=response_rejected
        )
        metadata = {k: v for k, v in record.data.items() if k not in KNOWN}
        metadata["source_sides"] = placed["side"]
        return PairRow(
            line=record.line,
            external_id=external_id,
            prompt=prompt,
            prompt_messages=shared or None,
            response_a=placed["response_a"],
            response_b=placed["response_b"],
            source_preference=placed["source_preference"],
            metadata=metadata,
        )


def _record_name(record: Record) -> str:
    external_id = record.data.get("id")
    if isinstance(external_id, str | int) and not isinstance(external_id, bool):
        return f"the record (id {str(external_id)[:80]!r})"
    return "the record"
