"""Reads for surveys: researcher lists and the participant's blinded view of a survey.

Everything a participant is shown is built by :func:`survey_screen` and
:func:`rating_items`, which return plain texts and screen positions only (no ids, no
titles, no methods), so templates and the participant API cannot leak what they were
never given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet

from annotations.models import Participant, Study
from gcai.constitutions.models import Constitution, ConstitutionPrinciple, ConstitutionStatus
from surveys.models import (
    Answer,
    ResponseStatus,
    Survey,
    SurveyQuestion,
    SurveyResponse,
    SurveyStatus,
)
from surveys.services import SCREEN_LABELS, screen_sides

# Steps of the participant flow, in order.
STEP_CONSENT = "consent"
STEP_INSTRUCTIONS = "instructions"
STEP_QUESTIONS = "questions"
STEP_RATINGS = "ratings"
STEP_DONE = "done"
STEP_SCREENED_OUT = "screened_out"

LIKERT_LABELS = {
    1: "Strongly disagree",
    2: "Disagree",
    3: "Neither agree nor disagree",
    4: "Agree",
    5: "Strongly agree",
}


def _count(status: str) -> Count:
    return Count("responses", filter=Q(responses__status=status), distinct=True)


def survey_list_for_study(*, study: Study) -> QuerySet[Survey]:
    """The study's surveys with both constitutions and response counts (one query)."""
    return (
        Survey.objects.filter(study=study)
        .select_related("constitution_a", "constitution_b")
        .annotate(
            n_completed=_count(ResponseStatus.COMPLETED),
            n_screened_out=_count(ResponseStatus.SCREENED_OUT),
            n_in_progress=_count(ResponseStatus.IN_PROGRESS),
        )
        .order_by("-created_at", "-pk")
    )


def survey_get_for_study(*, study: Study, survey_id: int) -> Survey | None:
    """One survey of ``study`` with its constitutions, or None."""
    return (
        Survey.objects.select_related("study", "constitution_a", "constitution_b")
        .filter(study=study, pk=survey_id)
        .first()
    )


def survey_for_entry_token(*, entry_token: str) -> Survey | None:
    """The survey behind a participant link, or None while it is a draft (unknown to
    the public until the researcher opens it)."""
    return (
        Survey.objects.select_related("study")
        .exclude(status=SurveyStatus.DRAFT)
        .filter(entry_token=entry_token)
        .first()
    )


def constitution_choices_for_study(*, study: Study) -> QuerySet[Constitution]:
    """Published constitutions of the study: the only ones a survey may compare."""
    return Constitution.objects.filter(study=study, status=ConstitutionStatus.PUBLISHED).order_by(
        "title", "-version"
    )


def response_for_participant(*, survey: Survey, participant: Participant) -> SurveyResponse | None:
    """The participant's one response to ``survey`` (None before they consent)."""
    return SurveyResponse.objects.filter(survey=survey, participant=participant).first()


def response_step(*, survey: Survey, response: SurveyResponse | None) -> str:
    """Where in the flow a participant stands; pages redirect here, so a participant
    who reloads, goes back or returns later always lands on the right page."""
    if response is None:
        return STEP_CONSENT
    if response.status == ResponseStatus.SCREENED_OUT:
        return STEP_SCREENED_OUT
    if response.status == ResponseStatus.COMPLETED:
        return STEP_DONE
    if "instructions" not in response.timings:
        return STEP_INSTRUCTIONS
    if not response.answers.exists():
        return STEP_QUESTIONS
    if survey.rate_principles and not response.ratings.exists():
        return STEP_RATINGS
    return STEP_DONE


@dataclass(frozen=True, slots=True)
class ScreenQuestion:
    number: int  # the question's position; the form field is f"q{number}"
    text: str
    allow_comment: bool


@dataclass(frozen=True, slots=True)
class ScreenOption:
    value: str  # screen side: left | right | tie | both_bad
    label: str


@dataclass(frozen=True, slots=True)
class ScreenConstitution:
    label: str  # "Constitution 1" (left) or "Constitution 2" (right)
    principles: list[str]


@dataclass(frozen=True, slots=True)
class SurveyScreen:
    """Everything a participant sees on the questions page, already blinded."""

    constitutions: list[ScreenConstitution]
    questions: list[ScreenQuestion]
    options: list[ScreenOption] = field(default_factory=list)


def _principle_texts(constitution_id: int) -> list[str]:
    return list(
        ConstitutionPrinciple.objects.filter(constitution_id=constitution_id)
        .order_by("position")
        .values_list("text", flat=True)
    )


def survey_screen(*, survey: Survey, response: SurveyResponse) -> SurveyScreen:
    """The two constitutions in this participant's left/right order, and the questions."""
    a = _principle_texts(survey.constitution_a_id)
    b = _principle_texts(survey.constitution_b_id)
    left, right = (a, b) if response.a_on_left else (b, a)
    questions = [
        ScreenQuestion(number=q.position, text=q.text, allow_comment=q.allow_comment)
        for q in survey.questions.order_by("position")
    ]
    options = [ScreenOption(side, SCREEN_LABELS[side]) for side in screen_sides(survey.choices())]
    return SurveyScreen(
        constitutions=[
            ScreenConstitution(SCREEN_LABELS["left"], left),
            ScreenConstitution(SCREEN_LABELS["right"], right),
        ],
        questions=questions,
        options=options,
    )


@dataclass(frozen=True, slots=True)
class RatingItem:
    number: int  # 1-based position in the participant's shuffled order; field f"r{number}"
    text: str


def rating_items(*, response: SurveyResponse) -> list[RatingItem]:
    """Both constitutions' principles in the participant's shuffled order, origin hidden."""
    order = list(response.principle_order)
    texts = dict(ConstitutionPrinciple.objects.filter(pk__in=order).values_list("pk", "text"))
    return [RatingItem(number=i, text=texts[pk]) for i, pk in enumerate(order, start=1)]


def response_list_for_survey(*, survey: Survey) -> QuerySet[SurveyResponse]:
    """Responses with participant, answers (and their questions) and ratings: a fixed
    number of queries however many responses there are."""
    return (
        SurveyResponse.objects.filter(survey=survey)
        .select_related("participant")
        .prefetch_related(
            Prefetch(
                "answers",
                queryset=Answer.objects.select_related("question").order_by("question__position"),
            ),
            "ratings",
        )
        .order_by("started_at", "pk")
    )


def survey_questions(*, survey: Survey) -> list[SurveyQuestion]:
    """All questions, attention checks included, in the order participants see them."""
    return list(survey.questions.order_by("position"))
