"""Plain data passed between the pipelines and the Django layer.

Preferences are always expressed in the pair's own terms: ``"a"`` means
``response_a`` was preferred, whatever order a person or an LLM saw them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gcai.core.serial import Stored


class Preference(StrEnum):
    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"
    NONE = "none"  # unlabelled

    @property
    def is_decisive(self) -> bool:
        return self in (Preference.A, Preference.B)


class Origin(StrEnum):
    ICAI = "icai"
    CONTEXTUAL = "contextual"
    GENERAL = "general"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class Pair:
    """A prompt with two responses and (optionally) a recorded preference."""

    id: str
    prompt: str
    response_a: str
    response_b: str
    preferred: Preference = Preference.NONE
    score_a: float | None = None
    score_b: float | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    """A human's choice on a pair plus the reason they wrote (GCAI's contextual input)."""

    id: str  # annotation id
    pair: Pair
    preferred: Preference
    reason: str
    annotator: str = ""  # pseudonym, never an identity


@dataclass(frozen=True, slots=True)
class Statement:
    """A participant's free-text value statement (GCAI's general input)."""

    id: str
    text: str
    participant: str  # pseudonym
    question: str = ""


@dataclass(slots=True)
class Principle(Stored):
    text: str
    origin: Origin = Origin.ICAI
    # Evidence: ids of the inputs that produced the principle.
    pair_ids: list[str] = field(default_factory=list)
    judgement_ids: list[str] = field(default_factory=list)
    statement_ids: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Constitution:
    principles: list[Principle]
    title: str = ""

    def as_text(self) -> str:
        return "\n".join(f"{i}. {p.text}" for i, p in enumerate(self.principles, 1))
