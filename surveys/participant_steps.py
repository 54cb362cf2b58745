"""The participant's map of the survey: every page named up front and the current one
marked, so nobody meets an unannounced page (the ratings page after the questions).

BLINDED like the pages that show it: labels and counts only.
"""

from __future__ import annotations

from dataclasses import dataclass

from gcai.constitutions.models import ConstitutionPrinciple
from surveys import selectors
from surveys.models import Survey


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    label: str
    state: str  # done | current | todo


def rating_count(*, survey: Survey) -> int:
    """How many principles the ratings page asks about (0 when the survey has none)."""
    if not survey.rate_principles:
        return 0
    return ConstitutionPrinciple.objects.filter(
        constitution_id__in=[survey.constitution_a_id, survey.constitution_b_id]
    ).count()


def participant_steps(*, survey: Survey, current: str) -> list[Step]:
    """Consent, instructions, questions, ratings (if asked for) and the end, in order."""
    n_questions = survey.questions.count()
    pages = [
        (selectors.STEP_CONSENT, "Consent"),
        (selectors.STEP_INSTRUCTIONS, "Instructions"),
        (selectors.STEP_QUESTIONS, f"{n_questions} question{'s' if n_questions != 1 else ''}"),
    ]
    n_ratings = rating_count(survey=survey)
    if survey.rate_principles:
        pages.append((selectors.STEP_RATINGS, f"Rate {n_ratings} principles"))
    pages.append((selectors.STEP_DONE, "Finish"))
    keys = [key for key, _ in pages]
    at = keys.index(current) if current in keys else len(keys) - 1
    return [
        Step(key, label, "done" if i < at else "current" if i == at else "todo")
        for i, (key, label) in enumerate(pages)
    ]
