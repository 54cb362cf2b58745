"""A researcher-defined questionnaire about participants, stored as their attributes.

A study may list up to ``MAX_QUESTIONS`` multiple-choice questions (``Study.
attribute_questions``: ``[{"key", "label", "options"}]``). Participants answer them in a
short step after rating others' statements; every question also offers "Prefer not to
say", which stores nothing. Answers become ``PersonAttribute`` rows (source
"questionnaire") and are read only through ``annotations.attributes``, so they are
shown aggregated and never for groups smaller than ``Study.min_group_size``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.attributes import PROLIFIC_COLUMNS, attribute_key
from annotations.models import AttributeSource, Participant, PersonAttribute, Study

MAX_QUESTIONS = 10
MAX_OPTIONS = 12
KEY_MAX = 50
LABEL_MAX = 300
OPTION_MAX = 100
KEY_PATTERN = re.compile(rf"^[a-z][a-z0-9_]{{0,{KEY_MAX - 1}}}$")
PREFER_NOT = "prefer_not_to_say"
PREFER_NOT_LABEL = "Prefer not to say"
# Keys the Prolific import sets: a questionnaire answer and an import would overwrite
# each other's values, so these names are left to the import.
RESERVED_KEYS = frozenset(
    "age_band" if column == "Age" else attribute_key(column) for column in PROLIFIC_COLUMNS
)


class QuestionnaireError(ValueError):
    """Refused input; ``errors`` maps a field (a question key, or a line) to a message."""

    def __init__(
        self, message: str, *, errors: dict[str, str] | None = None, code: str = "invalid"
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.code = code


# --------------------------------------------------------------------------- researchers


def _question_problems(key: str, label: str, options: list[str], seen: set[str]) -> str:
    if not KEY_PATTERN.match(key):
        return (
            f"the name “{key}” must be lowercase letters, digits and underscores, starting "
            f"with a letter, at most {KEY_MAX} characters (e.g. country_of_residence)"
        )
    if key in RESERVED_KEYS:
        return f"“{key}” is set by the Prolific import; choose another name"
    if key in seen:
        return f"the name “{key}” is used twice"
    if not label or len(label) > LABEL_MAX:
        return f"the question must have 1 to {LABEL_MAX} characters"
    if not 1 <= len(options) <= MAX_OPTIONS:
        return f"give 1 to {MAX_OPTIONS} options separated by “;”"
    folded = [o.casefold() for o in options]
    if any(not o or len(o) > OPTION_MAX for o in options):
        return f"each option must have 1 to {OPTION_MAX} characters"
    if len(set(folded)) != len(folded):
        return "an option is listed twice"
    if PREFER_NOT_LABEL.casefold() in folded:
        return f"“{PREFER_NOT_LABEL}” is always offered; leave it out of the options"
    return ""


def questions_validate(raw: Any) -> list[dict[str, Any]]:
    """Normalised questions from ``[{"key", "label", "options"}]``, or QuestionnaireError
    naming each bad question (by position, from 1)."""
    if not isinstance(raw, list):
        raise QuestionnaireError("Questions must be a list.")
    if len(raw) > MAX_QUESTIONS:
        raise QuestionnaireError(f"At most {MAX_QUESTIONS} questions.", code="too_many")
    out: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    seen: set[str] = set()
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping) or not isinstance(item.get("options"), list):
            errors[str(n)] = "needs a key, a label and a list of options"
            continue
        key = str(item.get("key", "")).strip()
        label = str(item.get("label", "")).strip()
        options = [str(o).strip() for o in item["options"]]
        problem = _question_problems(key, label, options, seen)
        if problem:
            errors[str(n)] = problem
            continue
        seen.add(key)
        out.append({"key": key, "label": label, "options": options})
    if errors:
        detail = "; ".join(f"question {n}: {msg}" for n, msg in errors.items())
        raise QuestionnaireError(f"Some questions need attention: {detail}.", errors=errors)
    return out


def questions_parse(text: str) -> list[dict[str, Any]]:
    """Questions from the settings page's text: one per line, ``key | question |
    option; option; ...``. Errors name the line."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    lines = [(n, line) for n, line in lines if line]
    raw: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for n, line in lines:
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3:
            errors[str(n)] = "write name | question | option; option; ..."
            continue
        raw.append(
            {
                "key": parts[0],
                "label": parts[1],
                "options": [o.strip() for o in parts[2].split(";")],
            }
        )
    if not errors:
        try:
            return questions_validate(raw)
        except QuestionnaireError as exc:
            if not exc.errors:
                raise
            # Map question positions back to line numbers.
            line_of = [n for n, _ in lines]
            errors = {str(line_of[int(i) - 1]): msg for i, msg in exc.errors.items()}
    detail = "; ".join(f"line {n}: {msg}" for n, msg in errors.items())
    raise QuestionnaireError(f"Some lines need attention: {detail}.", errors=errors)


def questions_as_text(questions: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{q['key']} | {q['label']} | {'; '.join(q['options'])}" for q in questions or []
    )


# --------------------------------------------------------------------------- participants


def questionnaire_pending(*, participant: Participant, study: Study) -> bool:
    return bool(study.attribute_questions) and participant.questionnaire_at is None


def _checked_answers(
    questions: list[dict[str, Any]], answers: Mapping[str, str | None]
) -> dict[str, str]:
    """key -> chosen option for every question not answered "Prefer not to say"."""
    errors: dict[str, str] = {}
    chosen: dict[str, str] = {}
    for q in questions:
        value = answers.get(q["key"])
        if not value:
            errors[q["key"]] = f"Choose an answer (or “{PREFER_NOT_LABEL}”)."
        elif value != PREFER_NOT and value not in q["options"]:
            errors[q["key"]] = "That is not one of the answers offered."
        elif value != PREFER_NOT:
            chosen[q["key"]] = value
    if errors:
        raise QuestionnaireError("Some questions need an answer.", errors=errors)
    return chosen


def questionnaire_submit(
    *, participant: Participant, study: Study, answers: Mapping[str, str | None]
) -> int:
    """Store ``participant``'s answers (question key -> chosen option, or PREFER_NOT) as
    their attributes; returns how many were stored. All or nothing.

    Every question needs an answer ("Prefer not to say" counts and stores nothing).
    Refused when the participant belongs to another study, has not consented, or has
    already answered.
    """
    if participant.study_id != study.pk:
        raise QuestionnaireError(
            "This participation belongs to another study; nothing was saved.", code="wrong_study"
        )
    now = timezone.now()
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.consented_at is None:
            raise QuestionnaireError(
                "Please read and accept the consent form first.", code="no_consent"
            )
        if locked.questionnaire_at is not None or locked.completed_at is not None:
            raise QuestionnaireError("You have already answered. Thank you!", code="duplicate")
        questions = study.attribute_questions or []
        chosen = _checked_answers(questions, answers)
        keys = [q["key"] for q in questions]
        PersonAttribute.objects.filter(study=study, participant=locked, key__in=keys).delete()
        PersonAttribute.objects.bulk_create(
            PersonAttribute(
                study=study,
                participant=locked,
                key=key,
                value=value,
                source=AttributeSource.QUESTIONNAIRE,
                updated_at=now,
            )
            for key, value in chosen.items()
        )
        locked.questionnaire_at = now
        locked.save(update_fields=["questionnaire_at"])
    participant.questionnaire_at = now
    return len(chosen)
