"""Training data conditioned on a constitution, in the formats TRL reads.

Preference data for DPO/ORPO (``prompt``/``chosen``/``rejected``) and KTO
(``prompt``/``completion``/``label``), and SFT data (``messages`` or
``prompt``/``completion``), each either *standard* (plain strings) or *conversational*
(lists of ``{"role", "content"}`` messages), as in TRL's dataset-formats guide.

The constitution goes into the system turn or the user turn. The constitutional-DPO
report places it in the user turn (small models handle system prompts poorly) and
rewords each principle from selection form ("Select the response that ...") to
generation form ("When generating a response, make sure to formulate a response
that ..."): :class:`RewordRule` is that one rule, editable. See docs/methods.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from gcai.core.serial import Stored

SELECTION_FORM = "Select the response that"
GENERATION_FORM = "When generating a response, make sure to formulate a response that"
DEFAULT_HEADER = "Follow these principles when you respond:"

KINDS = ("dpo", "kto", "sft")  # ORPO reads the DPO format.
STYLES = ("conversational", "standard")
PLACEMENTS = ("user", "system", "none")
DECISIVE = ("a", "b")


@dataclass(frozen=True, slots=True)
class RewordRule:
    """Replace a leading ``source`` phrase (case-insensitive) with ``target``."""

    source: str = SELECTION_FORM
    target: str = GENERATION_FORM

    def apply(self, text: str) -> str:
        text = " ".join(text.split())
        if not self.source.strip():
            return text
        pattern = re.compile(r"^\s*" + re.escape(self.source.strip()), re.IGNORECASE)
        return pattern.sub(self.target.strip(), text, count=1)


@dataclass(frozen=True, slots=True)
class ExportSettings(Stored):
    """How each row is built. ``relevant_only`` keeps only the principles relevant to a
    pair (the caller supplies them); pairs with none get the whole constitution."""

    kind: str = "dpo"
    style: str = "conversational"
    placement: str = "user"
    reword: bool = True
    reword_from: str = SELECTION_FORM
    reword_to: str = GENERATION_FORM
    header: str = DEFAULT_HEADER
    relevant_only: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (
            ("kind", KINDS),
            ("style", STYLES),
            ("placement", PLACEMENTS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: must be one of {', '.join(allowed)}")
        if self.placement == "system" and self.style == "standard":
            raise ValueError(
                "placement: a plain-text (standard) prompt has no system turn; "
                "use the conversational style or the user turn"
            )
        if self.reword and not self.reword_from.strip():
            raise ValueError("reword_from: give the phrase to replace, or switch rewording off")

    @property
    def rule(self) -> RewordRule | None:
        return RewordRule(self.reword_from, self.reword_to) if self.reword else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        # Settings typed by people: an unknown key is an error, not silently dropped.
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown setting")
        return cls(**dict(data))


@dataclass(frozen=True, slots=True)
class ExportPair:
    """One labelled pair as the exporter needs it. ``label``: a | b | tie | both_bad | none."""

    prompt: str
    response_a: str
    response_b: str
    label: str
    prompt_messages: Sequence[Mapping[str, str]] | None = None
    relevant: Sequence[int] = field(default_factory=tuple)  # 1-based principle positions

    @property
    def decisive(self) -> bool:
        return self.label in DECISIVE

    @property
    def chosen(self) -> str:
        return self.response_a if self.label == "a" else self.response_b

    @property
    def rejected(self) -> str:
        return self.response_b if self.label == "a" else self.response_a


def principle_lines(principles: Sequence[str], rule: RewordRule | None) -> list[str]:
    return [rule.apply(p) if rule else " ".join(p.split()) for p in principles if p.strip()]


def constitution_block(
    principles: Sequence[str], *, rule: RewordRule | None, header: str = DEFAULT_HEADER
) -> str:
    """The text that conditions the model: a header and the numbered principles."""
    lines = [f"{i}. {text}" for i, text in enumerate(principle_lines(principles, rule), 1)]
    if not lines:
        return ""
    return "\n".join([header.strip(), *lines] if header.strip() else lines)


def prompt_messages(
    prompt: str,
    messages: Sequence[Mapping[str, str]] | None,
    block: str,
    placement: str,
) -> list[dict[str, str]]:
    """The prompt turns with the constitution placed in the system or the first user turn."""
    turns = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages or ()]
    if not turns:
        turns = [{"role": "user", "content": prompt}]
    if not block or placement == "none":
        return turns
    if placement == "system":
        if turns[0]["role"] == "system":
            turns[0] = {"role": "system", "content": f"{block}\n\n{turns[0]['content']}"}
            return turns
        return [{"role": "system", "content": block}, *turns]
    for i, turn in enumerate(turns):
        if turn["role"] == "user":
            turns[i] = {"role": "user", "content": f"{block}\n\n{turn['content']}"}
            return turns
    return [{"role": "user", "content": block}, *turns]


def conditioned_prompt(pair: ExportPair, block: str, settings: ExportSettings) -> Any:
    """The row's prompt: messages (conversational) or one string (standard)."""
    if settings.style == "conversational":
        return prompt_messages(pair.prompt, pair.prompt_messages, block, settings.placement)
    if block and settings.placement == "user":
        return f"{block}\n\n{pair.prompt}"
    return pair.prompt


def _answer(text: str, settings: ExportSettings) -> Any:
    if settings.style == "conversational":
        return [{"role": "assistant", "content": text}]
    return text


def rows_for(
    pair: ExportPair, principles: Sequence[str], settings: ExportSettings
) -> list[dict[str, Any]]:
    """The training rows one pair yields: none for a tie or unlabelled pair, one DPO or
    SFT row, or two KTO rows (chosen desirable, rejected undesirable)."""
    if not pair.decisive:
        return []
    chosen_texts = principles
    if settings.relevant_only and pair.relevant:
        chosen_texts = [
            principles[i - 1] for i in sorted(set(pair.relevant)) if 0 < i <= len(principles)
        ]
    block = constitution_block(chosen_texts, rule=settings.rule, header=settings.header)
    prompt = conditioned_prompt(pair, block, settings)
    if settings.kind == "dpo":
        return [
            {
                "prompt": prompt,
                "chosen": _answer(pair.chosen, settings),
                "rejected": _answer(pair.rejected, settings),
            }
        ]
    if settings.kind == "kto":
        return [
            {"prompt": prompt, "completion": _answer(pair.chosen, settings), "label": True},
            {"prompt": prompt, "completion": _answer(pair.rejected, settings), "label": False},
        ]
    if settings.style == "conversational":
        return [{"messages": [*prompt, {"role": "assistant", "content": pair.chosen}]}]
    return [{"prompt": prompt, "completion": pair.chosen}]


def critique_sft_row(
    *, prompt: str, revision: str, principle: str, style: str = "conversational"
) -> dict[str, Any]:
    """One Constitutional AI supervised row: the prompt answered by the revised response,
    with the principle that drove the revision kept as an extra column."""
    if style == "conversational":
        return {
            "messages": [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": revision},
            ],
            "principle": principle,
        }
    return {"prompt": prompt, "completion": revision, "principle": principle}
