"""Writes for blinded pairwise surveys: building, opening and closing a survey, and
recording what participants answer.

Blinding is enforced here as much as in the templates: participants answer in SCREEN
terms (``left`` = "Constitution 1", ``right`` = "Constitution 2", ``tie``,
``both_bad``); this module alone maps those to CONSTITUTION terms (``a``/``b``) using
the response's randomised ``a_on_left``, so nothing a participant sends or receives
ever carries the A/B identity.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.models import Participant, Study, new_completion_code
from gcai.constitutions.models import Constitution
from gcai.constitutions.quality import (
    QualityGateError,
    constitution_quality_flags,
    flags_as_dicts,
    gate_message,
    override_record,
)
from surveys import blinding
from surveys.models import (
    Answer,
    PrincipleRating,
    QuestionKind,
    ResponseStatus,
    Survey,
    SurveyChoice,
    SurveyQuestion,
    SurveyResponse,
    SurveyStatus,
)


class SurveyError(ValueError):
    """A refused survey operation, with a message safe to show to the person who asked."""


# --- Screen terms ---------------------------------------------------------------------------
LEFT, RIGHT, TIE, BOTH_BAD = "left", "right", "tie", "both_bad"
SCREEN_SIDES = (LEFT, RIGHT, TIE, BOTH_BAD)
SCREEN_LABELS = {
    LEFT: "Constitution 1",
    RIGHT: "Constitution 2",
    TIE: "Both equally",
    BOTH_BAD: "Both are bad",
}
# Pages whose time on screen is recorded in SurveyResponse.timings.
PAGES = ("consent", "instructions", "questions", "ratings")
# A page open longer than a day is a forgotten tab, not a measurement.
_MAX_PAGE_MS = 24 * 3600 * 1000
LIKERT = (1, 2, 3, 4, 5)


@dataclass(frozen=True, slots=True)
class QuestionSpec:
    """One question of a survey as the builder describes it."""

    key: str
    text: str
    kind: str = QuestionKind.COMPARE
    expected_answer: str = ""  # attention checks only, in screen terms
    allow_comment: bool = True


# The GCAI human evaluation: five comparative judgements.
DEFAULT_QUESTIONS: tuple[QuestionSpec, ...] = (
    QuestionSpec("moral_grounding", "Which constitution is more morally grounded?"),
    QuestionSpec("personal_preference", "Which constitution would you personally prefer?"),
    QuestionSpec("coherence", "Which constitution is more coherent?"),
    QuestionSpec("plurality", "Which constitution better reflects a plurality of views?"),
    QuestionSpec(
        "wide_governance",
        "Which constitution would you rather see govern AI systems in wide use?",
    ),
)
DEFAULT_ATTENTION_CHECK = QuestionSpec(
    "attention_check",
    "This question checks that you are reading carefully: please select “Constitution 2”.",
    kind=QuestionKind.ATTENTION,
    expected_answer=RIGHT,
    allow_comment=False,
)
DEFAULT_INSTRUCTIONS = (
    "You will read two constitutions: short lists of principles that an AI system could be "
    "asked to follow. They are shown side by side as “Constitution 1” and “Constitution 2”. "
    "Read both carefully, then answer each question by choosing the constitution you think "
    "fits best. There are no right or wrong answers; we are interested in your own judgement."
)


def default_questions(*, attention_check: bool = True) -> list[QuestionSpec]:
    """The default question set, with the attention check placed mid-way so that it
    catches participants who stopped reading after the first few questions."""
    questions = list(DEFAULT_QUESTIONS)
    if attention_check:
        questions.insert((len(questions) + 1) // 2, DEFAULT_ATTENTION_CHECK)
    return questions


def _check_blinding(
    *,
    study: Study,
    constitution_a: Constitution,
    constitution_b: Constitution,
    instructions: str,
    consent_text: str,
    questions: Sequence[tuple[str, str]] = (),
) -> None:
    try:
        blinding.check_survey_texts(
            study=study,
            constitution_a=constitution_a,
            constitution_b=constitution_b,
            instructions=instructions,
            consent_text=consent_text,
            questions=questions,
        )
    except blinding.BlindingError as exc:
        raise SurveyError(str(exc)) from None


def _validate_constitutions(*, study: Study, constitution_a: Constitution, constitution_b):
    if constitution_a.pk == constitution_b.pk:
        raise SurveyError("Choose two different constitutions.")
    for label, constitution in (("A", constitution_a), ("B", constitution_b)):
        if constitution.study_id != study.pk:
            raise SurveyError(f"Constitution {label} belongs to another study.")
        if not constitution.is_published:
            raise SurveyError(
                f"Constitution {label} is a draft; publish it first so that participants "
                "judge a version that can no longer change."
            )
        if not constitution.items.exists():
            raise SurveyError(f"Constitution {label} has no principles.")


def _clean_choices(allowed_choices: Sequence[str] | None) -> list[str]:
    choices = list(dict.fromkeys(allowed_choices or SurveyChoice.values))
    unknown = [c for c in choices if c not in SurveyChoice.values]
    if unknown:
        raise SurveyError(f"Unknown answer choices: {', '.join(unknown)}.")
    if SurveyChoice.A not in choices or SurveyChoice.B not in choices:
        raise SurveyError("Participants must be able to choose either constitution.")
    # Stored in canonical order so the screen shows them in a stable order.
    return [c for c in SurveyChoice.values if c in choices]


def screen_sides(choices: Sequence[str]) -> list[str]:
    """The screen-side options offered for a survey whose constitution-term choices are
    ``choices`` (A and B are always offered, as left and right)."""
    return [LEFT, RIGHT] + [side for side in (TIE, BOTH_BAD) if side in choices]


def _clean_questions(
    questions: Sequence[QuestionSpec], *, choices: Sequence[str], words: Sequence[str]
) -> list[QuestionSpec]:
    if not any(q.kind == QuestionKind.COMPARE for q in questions):
        raise SurveyError("A survey needs at least one comparison question.")
    seen: set[str] = set()
    sides = screen_sides(choices)
    cleaned = []
    for q in questions:
        key, text = q.key.strip(), q.text.strip()
        if not re.fullmatch(r"[a-z0-9_-]{1,60}", key):
            raise SurveyError(f"Question key {key!r}: use 1-60 lower-case letters, digits, _ or -.")
        if key in seen:
            raise SurveyError(f"Two questions share the key {key!r}.")
        seen.add(key)
        if not text:
            raise SurveyError(f"Question {key!r} has no text.")
        if q.kind not in QuestionKind.values:
            raise SurveyError(f"Question {key!r}: unknown kind {q.kind!r}.")
        if q.kind == QuestionKind.ATTENTION and q.expected_answer not in sides:
            raise SurveyError(
                f"Attention check {key!r}: the expected answer must be one of {', '.join(sides)}."
            )
        word = blinding.unblinding_word(text, words)
        if word:
            raise SurveyError(
                f"Question {key!r} mentions “{word}”, which would unblind participants."
            )
        expected = q.expected_answer if q.kind == QuestionKind.ATTENTION else ""
        cleaned.append(QuestionSpec(key, text, q.kind, expected, q.allow_comment))
    return cleaned


@transaction.atomic
def survey_create(
    *,
    study: Study,
    title: str,
    constitution_a: Constitution,
    constitution_b: Constitution,
    user: Any = None,
    instructions: str | None = None,
    consent_text: str = "",
    questions: Sequence[QuestionSpec] | None = None,
    allowed_choices: Sequence[str] | None = None,
    rate_principles: bool = False,
    ties_in_share: bool = False,
) -> Survey:
    """Create a draft survey comparing two published constitutions of ``study``.

    Without ``questions`` the GCAI evaluation's five questions and one attention check
    are used. Text shown to participants (instructions, consent, questions) is refused
    when it names a method or a constitution's title, because it would unblind them.
    """
    title = title.strip()
    if not title:
        raise SurveyError("A survey needs a title.")
    _validate_constitutions(
        study=study, constitution_a=constitution_a, constitution_b=constitution_b
    )
    choices = _clean_choices(allowed_choices)
    words = blinding.forbidden_words(constitution_a, constitution_b)
    instructions = DEFAULT_INSTRUCTIONS if instructions is None else instructions.strip()
    consent_text = consent_text.strip()
    _check_blinding(
        study=study,
        constitution_a=constitution_a,
        constitution_b=constitution_b,
        instructions=instructions,
        consent_text=consent_text,
    )
    specs = _clean_questions(
        default_questions() if questions is None else questions, choices=choices, words=words
    )
    survey = Survey(
        study=study,
        title=title,
        instructions=instructions,
        consent_text=consent_text,
        constitution_a=constitution_a,
        constitution_b=constitution_b,
        allowed_choices=choices,
        rate_principles=rate_principles,
        ties_in_share=ties_in_share,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    # Two independent random codes collide once in 2**32 surveys; the constraint
    # survey_codes_differ would then fail, so draw again instead.
    while survey.screenout_code == survey.completion_code:
        survey.screenout_code = new_completion_code()
    survey.save()
    _questions_replace(survey=survey, specs=specs)
    return survey


def _questions_replace(*, survey: Survey, specs: Sequence[QuestionSpec]) -> None:
    survey.questions.all().delete()
    SurveyQuestion.objects.bulk_create(
        SurveyQuestion(
            survey=survey,
            position=i,
            kind=spec.kind,
            key=spec.key,
            text=spec.text,
            expected_answer=spec.expected_answer,
            allow_comment=spec.allow_comment,
        )
        for i, spec in enumerate(specs, start=1)
    )


@transaction.atomic
def survey_update(
    *,
    survey: Survey,
    title: str,
    constitution_a: Constitution,
    constitution_b: Constitution,
    instructions: str,
    consent_text: str = "",
    questions: Sequence[QuestionSpec],
    allowed_choices: Sequence[str] | None = None,
    rate_principles: bool = False,
    ties_in_share: bool = False,
) -> Survey:
    """Change a draft survey that nobody has answered yet.

    Once participants have answered, changing questions or constitutions would mix
    answers to different surveys, so the researcher makes a new survey instead.
    """
    survey = Survey.objects.select_for_update().get(pk=survey.pk)
    if survey.status != SurveyStatus.DRAFT or survey.responses.exists():
        raise SurveyError("Only a draft survey without responses can be changed.")
    title = title.strip()
    if not title:
        raise SurveyError("A survey needs a title.")
    _validate_constitutions(
        study=survey.study, constitution_a=constitution_a, constitution_b=constitution_b
    )
    choices = _clean_choices(allowed_choices)
    words = blinding.forbidden_words(constitution_a, constitution_b)
    _check_blinding(
        study=survey.study,
        constitution_a=constitution_a,
        constitution_b=constitution_b,
        instructions=instructions,
        consent_text=consent_text,
    )
    specs = _clean_questions(questions, choices=choices, words=words)
    survey.title = title
    survey.constitution_a = constitution_a
    survey.constitution_b = constitution_b
    survey.instructions = instructions.strip()
    survey.consent_text = consent_text.strip()
    survey.allowed_choices = choices
    survey.rate_principles = rate_principles
    survey.ties_in_share = ties_in_share
    survey.save()
    _questions_replace(survey=survey, specs=specs)
    return survey


def survey_quality_flags(*, survey: Survey) -> list[dict[str, Any]]:
    """Quality-gate flags of both constitutions, each labelled A or B."""
    return [
        flag
        for label, constitution in (("A", survey.constitution_a), ("B", survey.constitution_b))
        for flag in flags_as_dicts(
            constitution_quality_flags(constitution=constitution), label=label
        )
    ]


def survey_open(*, survey: Survey, override: bool = False, user: Any = None) -> Survey:
    """Start (or resume) accepting participants.

    Participants must not judge garbage: flagged principles in either constitution (see
    :func:`gcai.constitutions.quality.constitution_quality_flags`) refuse the opening with
    :class:`QualityGateError` unless ``override`` is set; the override is recorded.
    """
    _validate_constitutions(
        study=survey.study,
        constitution_a=survey.constitution_a,
        constitution_b=survey.constitution_b,
    )
    if not survey.questions.filter(kind=QuestionKind.COMPARE).exists():
        raise SurveyError("A survey needs at least one comparison question.")
    # Texts may have changed since the survey was written (the study's consent text it
    # falls back to): check everything participants will read, once more.
    _check_blinding(
        study=survey.study,
        constitution_a=survey.constitution_a,
        constitution_b=survey.constitution_b,
        instructions=survey.instructions,
        consent_text=survey.consent_text,
        questions=list(survey.questions.values_list("key", "text")),
    )
    flags = survey_quality_flags(survey=survey)
    if flags and not override:
        raise QualityGateError(gate_message(flags, action="opened", confirm="Open anyway"), flags)
    survey.status = SurveyStatus.OPEN
    fields = ["status"]
    if flags or survey.quality_override:
        survey.quality_override = override_record(flags, user) if flags else {}
        fields.append("quality_override")
    survey.save(update_fields=fields)
    return survey


def survey_close(*, survey: Survey) -> Survey:
    """Stop accepting new participants. Those already inside may finish, so that a
    participant who started is never stranded without a completion code."""
    if survey.status == SurveyStatus.DRAFT:
        raise SurveyError("A draft survey has not been opened.")
    survey.status = SurveyStatus.CLOSED
    survey.save(update_fields=["status"])
    return survey


# --- Participants ---------------------------------------------------------------------------
def _clean_ms(elapsed_ms: Any) -> int | None:
    try:
        value = int(elapsed_ms)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= _MAX_PAGE_MS else None


def response_start(
    *,
    survey: Survey,
    participant: Participant,
    consent_ms: int | None = None,
    rng: random.Random | None = None,
) -> tuple[SurveyResponse, bool]:
    """The participant's response to ``survey``, created on consent; (response, created).

    A new response gets a random left/right order and, when principles are rated, a
    shuffled order of both constitutions' principles. A returning participant gets
    their existing response back unchanged, so their screen never flips.
    """
    if participant.study_id != survey.study_id:
        raise SurveyError("This participant belongs to another study.")
    existing = SurveyResponse.objects.filter(survey=survey, participant=participant).first()
    if existing:
        return existing, False
    if survey.status != SurveyStatus.OPEN:
        raise SurveyError("This survey is not accepting participants at the moment.")
    rng = rng or random.SystemRandom()
    order: list[int] = []
    if survey.rate_principles:
        order = list(
            survey.constitution_a.items.values_list("pk", flat=True).order_by("position")
        ) + list(survey.constitution_b.items.values_list("pk", flat=True).order_by("position"))
        rng.shuffle(order)
    timings = {}
    if (ms := _clean_ms(consent_ms)) is not None:
        timings["consent"] = ms
    try:
        with transaction.atomic():
            response = SurveyResponse.objects.create(
                survey=survey,
                participant=participant,
                a_on_left=rng.random() < 0.5,
                principle_order=order,
                timings=timings,
            )
    except IntegrityError:
        # A second tab consented at the same moment: keep the first response.
        return SurveyResponse.objects.get(survey=survey, participant=participant), False
    return response, True


def response_timing_record(*, response: SurveyResponse, page: str, elapsed_ms: Any) -> None:
    """Record how long ``page`` was on screen (first submission wins: a page reloaded
    after submitting must not overwrite the real reading time)."""
    if page not in PAGES:
        raise SurveyError(f"Unknown page {page!r}.")
    if page in response.timings:
        return
    response.timings = {**response.timings, page: _clean_ms(elapsed_ms)}
    response.save(update_fields=["timings"])


def instructions_acknowledge(*, response: SurveyResponse, elapsed_ms: Any = None) -> None:
    """The participant has read the instructions and goes on to the questions."""
    _require_in_progress(response)
    response_timing_record(response=response, page="instructions", elapsed_ms=elapsed_ms)


def _require_in_progress(response: SurveyResponse) -> None:
    if response.status != ResponseStatus.IN_PROGRESS:
        raise SurveyError("This survey response is already finished.")


def side_to_choice(*, side: str, a_on_left: bool) -> str:
    """Map a screen side to constitution terms for a response with ``a_on_left``."""
    if side == LEFT:
        return SurveyChoice.A if a_on_left else SurveyChoice.B
    if side == RIGHT:
        return SurveyChoice.B if a_on_left else SurveyChoice.A
    if side in (TIE, BOTH_BAD):
        return side
    raise SurveyError(f"Unknown answer {side!r}.")


def choice_to_side(*, choice: str, a_on_left: bool) -> str:
    """The inverse of :func:`side_to_choice`."""
    if choice == SurveyChoice.A:
        return LEFT if a_on_left else RIGHT
    if choice == SurveyChoice.B:
        return RIGHT if a_on_left else LEFT
    return choice


def _answer_create(
    *, response: SurveyResponse, question: SurveyQuestion, side: str, comment: str
) -> Answer:
    if question.survey_id != response.survey_id:
        raise SurveyError("That question belongs to another survey.")
    if side not in screen_sides(response.survey.choices()):
        raise SurveyError(f"“{side}” is not an answer this survey offers.")
    comment = (comment or "").strip()[:5000] if question.allow_comment else ""
    try:
        with transaction.atomic():
            return Answer.objects.create(
                response=response,
                question=question,
                choice=side_to_choice(side=side, a_on_left=response.a_on_left),
                chose_left={LEFT: True, RIGHT: False}.get(side),
                comment=comment,
            )
    except IntegrityError:
        raise SurveyError("This question has already been answered.") from None


def _screen_out(response: SurveyResponse) -> None:
    response.status = ResponseStatus.SCREENED_OUT
    response.attention_passed = False
    response.completed_at = timezone.now()
    response.save(update_fields=["status", "attention_passed", "completed_at"])


def _complete(response: SurveyResponse) -> None:
    response.status = ResponseStatus.COMPLETED
    if (
        response.attention_passed is None
        and response.survey.questions.filter(kind=QuestionKind.ATTENTION).exists()
    ):
        response.attention_passed = True
    response.completed_at = timezone.now()
    response.save(update_fields=["status", "attention_passed", "completed_at"])


@transaction.atomic
def answer_submit(
    *, response: SurveyResponse, question: SurveyQuestion, side: str, comment: str = ""
) -> Answer:
    """Record one answer given in screen terms and store it in constitution terms.

    An attention check is judged in screen terms (the participant was told which
    side to pick); a wrong answer screens the response out at once.
    """
    response = (
        SurveyResponse.objects.select_for_update().select_related("survey").get(pk=response.pk)
    )
    _require_in_progress(response)
    answer = _answer_create(response=response, question=question, side=side, comment=comment)
    if question.kind == QuestionKind.ATTENTION:
        if side != question.expected_answer:
            _screen_out(response)
        elif response.attention_passed is None:
            response.attention_passed = True
            response.save(update_fields=["attention_passed"])
    return answer


@transaction.atomic
def answers_submit(
    *,
    response: SurveyResponse,
    answers: Mapping[int, tuple[str, str]],
    elapsed_ms: Any = None,
) -> SurveyResponse:
    """Record the whole questions page: ``answers`` maps question position to
    (screen side, comment). Every question must be answered.

    All answers are stored, even after a failed attention check, so researchers can
    inspect what screened-out participants did; results leave them out. Without
    principle ratings the response is complete afterwards.
    """
    response = (
        SurveyResponse.objects.select_for_update().select_related("survey").get(pk=response.pk)
    )
    _require_in_progress(response)
    if response.answers.exists():
        raise SurveyError("These questions have already been answered.")
    questions = list(response.survey.questions.all())
    missing = [q.position for q in questions if q.position not in answers]
    if missing:
        raise SurveyError("Please answer every question.")
    failed = False
    for question in questions:
        side, comment = answers[question.position]
        _answer_create(response=response, question=question, side=side, comment=comment)
        if question.kind == QuestionKind.ATTENTION and side != question.expected_answer:
            failed = True
    response.timings = {**response.timings, "questions": _clean_ms(elapsed_ms)}
    response.save(update_fields=["timings"])
    if failed:
        _screen_out(response)
    else:
        if any(q.kind == QuestionKind.ATTENTION for q in questions):
            response.attention_passed = True
            response.save(update_fields=["attention_passed"])
        if not response.survey.rate_principles:
            _complete(response)
    return response


@transaction.atomic
def ratings_submit(
    *, response: SurveyResponse, ratings: Mapping[int, int], elapsed_ms: Any = None
) -> SurveyResponse:
    """Record Likert ratings keyed by the principle's NUMBER ON SCREEN (1-based index into
    the response's shuffled ``principle_order``), then complete the response.

    Participants never see principle ids, so they cannot send them either.
    """
    response = (
        SurveyResponse.objects.select_for_update().select_related("survey").get(pk=response.pk)
    )
    _require_in_progress(response)
    if not response.survey.rate_principles:
        raise SurveyError("This survey does not ask for ratings.")
    if not response.answers.exists():
        raise SurveyError("Please answer the questions first.")
    order = list(response.principle_order)
    if set(ratings) != set(range(1, len(order) + 1)):
        raise SurveyError("Please rate every principle.")
    rows = []
    for number, value in ratings.items():
        if value not in LIKERT:
            raise SurveyError("Ratings go from 1 to 5.")
        rows.append(PrincipleRating(response=response, item_id=order[number - 1], rating=value))
    try:
        with transaction.atomic():
            PrincipleRating.objects.bulk_create(rows)
    except IntegrityError:
        raise SurveyError("These principles have already been rated.") from None
    response.timings = {**response.timings, "ratings": _clean_ms(elapsed_ms)}
    response.save(update_fields=["timings"])
    _complete(response)
    return response


@transaction.atomic
def response_complete(*, response: SurveyResponse) -> SurveyResponse:
    """Finish a response built answer by answer with :func:`answer_submit`: every
    question must be answered (and every principle rated, when the survey asks)."""
    response = (
        SurveyResponse.objects.select_for_update().select_related("survey").get(pk=response.pk)
    )
    _require_in_progress(response)
    answered = set(response.answers.values_list("question_id", flat=True))
    if any(q.pk not in answered for q in response.survey.questions.all()):
        raise SurveyError("Please answer every question.")
    if response.survey.rate_principles and not response.ratings.exists():
        raise SurveyError("Please rate every principle.")
    _complete(response)
    return response
