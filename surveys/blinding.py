"""Blinding of survey texts: nothing a participant reads may name a method or one of the
compared constitutions.

Every participant-visible text is checked: the survey's instructions and questions, the
consent text it shows (its own, or the study's it falls back to) and the principles of
both constitutions (against method names only: a principle may well contain a word that
happens to be a title). Texts are compared after Unicode folding, so look-alike spellings
(GCAI written with a Cyrillic Es for the C, in fullwidth letters, or with zero-width
characters inside) are caught too.
While a survey is open, the study texts it shows cannot change.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from confusable_homoglyphs.confusables import confusables_data

from annotations.models import Study
from gcai.constitutions.models import Constitution, ConstitutionPrinciple, Method

METHOD_WORDS = frozenset({m.value for m in Method} | {"gcai", "icai", "inverse constitutional"})


class BlindingError(ValueError):
    """A participant-visible text would unblind the survey."""


@lru_cache(maxsize=1)
def _ascii_lookalikes() -> dict[int, str]:
    """Non-ASCII characters that look like an ASCII letter or digit (Unicode's
    confusables list, as packaged by confusable-homoglyphs) -> that letter or digit."""
    table: dict[int, str] = {}
    for char, glyphs in confusables_data.items():
        for glyph in glyphs:
            other = glyph["c"]
            pair = (char, other) if len(char) == 1 and not char.isascii() else (other, char)
            source, target = pair
            if (
                len(source) == 1
                and not source.isascii()
                and len(target) == 1
                and target.isascii()
                and target.isalnum()
            ):
                table.setdefault(ord(source), target)
    return table


def fold(text: str) -> str:
    """Text as it reads to a person: compatibility forms unified (NFKC), invisible
    format characters dropped, look-alike letters replaced by their ASCII twin, case
    folded. Two texts that look the same fold to the same string."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    # Case first: a capital look-alike (Cyrillic I) may only be listed by its small form.
    return text.casefold().translate(_ascii_lookalikes()).casefold()


def forbidden_words(*constitutions: Constitution) -> list[str]:
    """Words that would unblind participants: method names and the constitutions' titles."""
    words = set(METHOD_WORDS) | {c.title.strip() for c in constitutions if c.title.strip()}
    return sorted(words, key=len, reverse=True)


def unblinding_word(text: str, words: Iterable[str]) -> str | None:
    """The first of ``words`` that ``text`` contains as a whole word (after folding)."""
    folded = fold(text)
    for word in words:
        needle = fold(word)
        if needle and re.search(rf"(?<![^\W_]){re.escape(needle)}(?![^\W_])", folded):
            return word
    return None


def check_texts(words: Sequence[str], **texts: str) -> None:
    """Raise BlindingError naming the first text (by its keyword) that unblinds."""
    for name, text in texts.items():
        word = unblinding_word(text or "", words)
        if word:
            raise BlindingError(
                f"The {name.replace('_', ' ')} mentions “{word}”, which would unblind participants."
            )


def shown_consent(*, consent_text: str, study: Study) -> tuple[str, str]:
    """(label, text) of the consent participants read: the survey's own, or the study's."""
    if consent_text.strip():
        return "consent_text", consent_text
    return "study_consent_text_(which_the_survey_shows)", study.consent_text


def check_survey_texts(
    *,
    study: Study,
    constitution_a: Constitution,
    constitution_b: Constitution,
    instructions: str,
    consent_text: str,
    questions: Iterable[tuple[str, str]] = (),
) -> None:
    """Every participant-visible text of a survey: instructions, the consent shown,
    ``questions`` as (key, text), and the principles of both constitutions."""
    words = forbidden_words(constitution_a, constitution_b)
    label, consent = shown_consent(consent_text=consent_text, study=study)
    check_texts(words, instructions=instructions, **{label: consent})
    for key, text in questions:
        if word := unblinding_word(text, words):
            raise BlindingError(
                f"Question {key!r} mentions “{word}”, which would unblind participants."
            )
    principles = ConstitutionPrinciple.objects.filter(
        constitution_id__in=[constitution_a.pk, constitution_b.pk]
    ).values_list("position", "text")
    for position, text in principles:
        word = unblinding_word(text, METHOD_WORDS)
        if word:
            raise BlindingError(
                f"Principle {position} of a compared constitution mentions “{word}”, which "
                "would unblind participants."
            )


def study_text_guard(study: Study, changed: set[str]) -> tuple[str, str] | None:
    """Refuse changing the study's consent text while an open survey shows it.

    Registered with ``annotations.services`` (which cannot import surveys) in
    SurveysConfig.ready. Returns (field, reason) or None."""
    from surveys.models import Survey, SurveyStatus

    if "consent_text" not in changed:
        return None
    showing = (
        Survey.objects.filter(study=study, status=SurveyStatus.OPEN, consent_text="")
        .order_by("pk")
        .first()
    )
    if showing is None:
        return None
    return (
        "consent_text",
        f"The open survey “{showing.title}” shows this consent text to its participants; "
        "close the survey before changing it (participants must all read the same text, "
        "checked for blinding when the survey opens).",
    )
