"""What a publishable principle looks like, and the quality gate that checks a list of them.

Every generation prompt asks for one sentence starting "Select the response that"
(ICAI's format, kept by GCAI). :data:`PRINCIPLE_PATTERN` is that format as a regular
expression in the subset llama.cpp's JSON-schema-to-grammar converter understands, so
the embedded model cannot produce anything else; :func:`sentence_problems` is the
(slightly more lenient) check applied to text from any model or typed by a researcher.

:func:`quality_check` is the gate run before a constitution is published or a survey
opened: principles that are not well-formed sentences, duplicates (same normalised text,
or nearly the same words) and principles without evidence are flagged.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gcai.core.serial import Stored

PRINCIPLE_PREFIX = "Select the response that"
# Marks a JSON-schema string as a principle. Validators ignore unknown formats; the local
# model's grammar turns it into PRINCIPLE_PATTERN (see gcai.core.llm.local).
PRINCIPLE_FORMAT = "gcai-principle"

# Words of letters, digits, apostrophes and hyphens, single spaces, optional commas, one
# full stop at the end: no second sentence, no markup, no code, no line breaks. The
# bounds keep a rambling small model short (about 40 words at most). The stop is "[.]"
# because llama.cpp's grammar parser rejects the escape "\\." in a literal.
_WORD = "[A-Za-z0-9'-]{1,24}"
PRINCIPLE_PATTERN = rf"^{PRINCIPLE_PREFIX} {_WORD}(,? {_WORD}){{1,39}}[.]$"
_PATTERN = re.compile(PRINCIPLE_PATTERN)

PRINCIPLE_STRING_SCHEMA: dict[str, Any] = {"type": "string", "format": PRINCIPLE_FORMAT}

MIN_WORDS = 6  # the prefix is four words; two more say what to select
MAX_WORDS = 45
# Characters that never belong in a one-sentence principle: code, markup, JSON debris.
_DEBRIS = re.compile(r"[`{}\[\]<>#*|\\_=~^$@]")
# A sentence end followed by more text: "... is kind. It also ..." or "1. ..." lists.
_INNER_STOP = re.compile(r"[.!?;:](\s+\S)")
_WORDS = re.compile(r"[A-Za-z0-9']+")
NEAR_DUPLICATE_RATIO = 0.9


def matches_grammar(text: str) -> bool:
    """Whether ``text`` is a string the embedded model's principle grammar can produce."""
    return _PATTERN.fullmatch(text) is not None


def sentence_problems(text: str) -> list[str]:
    """Why ``text`` is not one well-formed principle sentence (empty list if it is)."""
    problems: list[str] = []
    stripped = text.strip()
    if not stripped.startswith(PRINCIPLE_PREFIX + " "):
        problems.append(f'does not start with "{PRINCIPLE_PREFIX} …"')
    if "\n" in stripped or "\r" in stripped:
        problems.append("spans several lines")
    if _DEBRIS.search(stripped):
        problems.append("contains code or markup characters")
    if not stripped.endswith("."):
        problems.append("does not end with a full stop")
    if _INNER_STOP.search(stripped):
        problems.append("is more than one sentence")
    words = _WORDS.findall(stripped)
    if len(words) < MIN_WORDS:
        problems.append("is too short to say what to select")
    elif len(words) > MAX_WORDS:
        problems.append(f"is longer than {MAX_WORDS} words")
    return problems


def is_well_formed(text: str) -> bool:
    """One sentence, starting "Select the response that", with no code or markup."""
    return not sentence_problems(text)


def normalise(text: str) -> str:
    """Lower case words only: the text two principles share when they say the same thing."""
    return " ".join(_WORDS.findall(text.lower()))


def _core(text: str) -> str:
    """The normalised text without the shared prefix, so similarity compares the content."""
    norm = normalise(text)
    prefix = normalise(PRINCIPLE_PREFIX)
    return norm[len(prefix) :].strip() if norm.startswith(prefix) else norm


def similarity(a: str, b: str) -> float:
    """How alike two normalised texts are, 0..1: the larger of difflib's character ratio
    (catches small edits) and the Jaccard overlap of their word sets (catches reordering).
    """
    if not a or not b:
        return 0.0
    chars = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    wa, wb = set(a.split()), set(b.split())
    return max(chars, len(wa & wb) / len(wa | wb))


@dataclass(frozen=True, slots=True)
class PrincipleInput:
    """What the gate needs to know about one principle."""

    position: int  # 1-based place in the constitution
    text: str
    evidence: int  # reasons + statements + pairs behind it


@dataclass(frozen=True, slots=True)
class QualityFlag(Stored):
    position: int
    kind: str  # malformed | duplicate | no_evidence
    message: str


def quality_check(
    principles: Sequence[PrincipleInput], *, near_duplicate_ratio: float = NEAR_DUPLICATE_RATIO
) -> list[QualityFlag]:
    """Flags for principles that should not reach people without a second look.

    - ``malformed``: not one well-formed sentence (see :func:`sentence_problems`);
    - ``duplicate``: same normalised text as an earlier principle, or a
      :func:`similarity` of at least ``near_duplicate_ratio`` between the parts after
      the shared "Select the response that" prefix;
    - ``no_evidence``: nothing links the principle to human input.

    Flags come in the order of the principles; an empty list means the gate passes.
    """
    flags: list[QualityFlag] = []
    seen: list[tuple[int, str, str]] = []
    for p in principles:
        problems = sentence_problems(p.text)
        if problems:
            flags.append(QualityFlag(p.position, "malformed", "; ".join(problems).capitalize()))
        norm, core = normalise(p.text), _core(p.text)
        for position, other_norm, other_core in seen:
            if norm == other_norm:
                flags.append(
                    QualityFlag(p.position, "duplicate", f"Same text as principle {position}")
                )
                break
            ratio = similarity(core, other_core)
            if ratio >= near_duplicate_ratio:
                flags.append(
                    QualityFlag(
                        p.position,
                        "duplicate",
                        f"Nearly the same as principle {position} ({ratio:.0%} similar)",
                    )
                )
                break
        seen.append((p.position, norm, core))
        if p.evidence <= 0:
            flags.append(QualityFlag(p.position, "no_evidence", "No human input behind it"))
    return flags
