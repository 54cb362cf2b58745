"""Survey services: building, blinding rules, screen/constitution mapping, attention
checks, one response per participant, timings."""

from __future__ import annotations

import random

import pytest

from gcai.constitutions.models import Constitution, Method
from surveys import services
from surveys.models import Answer, QuestionKind, ResponseStatus, SurveyResponse, SurveyStatus
from tests.factories import ParticipantFactory, StudyFactory
from tests.surveys.factories import open_survey, published_constitution

pytestmark = pytest.mark.django_db


def _pair(study):
    return (
        published_constitution(study=study, method=Method.GCAI, title="Grounded v1"),
        published_constitution(study=study, method=Method.ICAI, title="Baseline v1"),
    )


def test_survey_create_uses_the_gcai_question_set_with_an_attention_check(study, researcher):
    a, b = _pair(study)
    survey = services.survey_create(
        study=study, user=researcher, title="S", constitution_a=a, constitution_b=b
    )
    questions = list(survey.questions.order_by("position"))
    assert [q.key for q in questions] == [
        "moral_grounding",
        "personal_preference",
        "coherence",
        "attention_check",
        "plurality",
        "wide_governance",
    ]
    check = questions[3]
    assert check.kind == QuestionKind.ATTENTION
    assert check.expected_answer == "right"
    assert survey.status == SurveyStatus.DRAFT
    assert survey.choices() == ["a", "b", "tie", "both_bad"]
    assert survey.completion_code != survey.screenout_code
    assert survey.created_by == researcher


def test_survey_create_refuses_drafts_other_studies_and_the_same_constitution(study):
    a, _b = _pair(study)
    real_draft = Constitution.objects.create(study=study, title="Unpublished", method="gcai")
    foreign = published_constitution(study=StudyFactory(), title="Elsewhere")
    cases = [
        (a, a, "two different"),
        (a, real_draft, "draft"),
        (a, foreign, "another study"),
    ]
    for ca, cb, message in cases:
        with pytest.raises(services.SurveyError, match=message):
            services.survey_create(study=study, title="S", constitution_a=ca, constitution_b=cb)


def test_text_shown_to_participants_may_not_name_a_method_or_a_title(study):
    a, b = _pair(study)
    with pytest.raises(services.SurveyError, match="gcai"):
        services.survey_create(
            study=study, title="S", constitution_a=a, constitution_b=b, instructions="Rate GCAI."
        )
    with pytest.raises(services.SurveyError, match="Baseline v1"):
        services.survey_create(
            study=study,
            title="S",
            constitution_a=a,
            constitution_b=b,
            questions=[services.QuestionSpec("q", "Is baseline v1 better?")],
        )
    # The researcher's own title may say anything: participants never see it.
    services.survey_create(study=study, title="GCAI vs ICAI", constitution_a=a, constitution_b=b)


def test_attention_check_must_expect_an_offered_answer(study):
    a, b = _pair(study)
    with pytest.raises(services.SurveyError, match="expected answer"):
        services.survey_create(
            study=study,
            title="S",
            constitution_a=a,
            constitution_b=b,
            allowed_choices=["a", "b"],
            questions=[
                services.QuestionSpec("q", "Which?"),
                services.QuestionSpec("ac", "Pick tie", kind="attention", expected_answer="tie"),
            ],
        )


def test_response_start_randomises_sides_per_participant_and_records_them(survey):
    rng = random.Random(7)
    sides = []
    for _ in range(40):
        response, created = services.response_start(
            survey=survey, participant=ParticipantFactory(study=survey.study), rng=rng
        )
        assert created
        sides.append(response.a_on_left)
    assert 5 < sum(sides) < 35
    assert SurveyResponse.objects.filter(survey=survey, a_on_left=True).count() == sum(sides)


def test_one_response_per_participant_and_the_screen_order_never_flips(survey, participant):
    first, created = services.response_start(survey=survey, participant=participant)
    for seed in range(10):
        again, created_again = services.response_start(
            survey=survey, participant=participant, rng=random.Random(seed)
        )
        assert again.pk == first.pk
        assert again.a_on_left == first.a_on_left
        assert not created_again
    assert created
    assert SurveyResponse.objects.filter(survey=survey).count() == 1


def test_ratings_order_shuffles_both_constitutions_together(rated_survey, participant):
    response, _ = services.response_start(
        survey=rated_survey, participant=participant, rng=random.Random(3)
    )
    items_a = list(rated_survey.constitution_a.items.values_list("pk", flat=True))
    items_b = list(rated_survey.constitution_b.items.values_list("pk", flat=True))
    assert sorted(response.principle_order) == sorted(items_a + items_b)
    assert response.principle_order != items_a + items_b


@pytest.mark.parametrize(
    ("a_on_left", "side", "choice", "chose_left"),
    [
        (True, "left", "a", True),
        (True, "right", "b", False),
        (False, "left", "b", True),
        (False, "right", "a", False),
        (False, "tie", "tie", None),
        (True, "both_bad", "both_bad", None),
    ],
)
def test_answer_submit_stores_constitution_terms_and_the_screen_side(
    survey, participant, a_on_left, side, choice, chose_left
):
    response, _ = services.response_start(survey=survey, participant=participant)
    SurveyResponse.objects.filter(pk=response.pk).update(a_on_left=a_on_left)
    response.refresh_from_db()
    question = survey.questions.get(key="coherence")

    answer = services.answer_submit(response=response, question=question, side=side, comment="x")

    assert (answer.choice, answer.chose_left, answer.comment) == (choice, chose_left, "x")
    assert services.choice_to_side(choice=choice, a_on_left=a_on_left) == side


@pytest.mark.parametrize("a_on_left", [True, False])
def test_attention_check_is_judged_on_screen_side_whatever_the_order(
    survey, participant, a_on_left
):
    response, _ = services.response_start(survey=survey, participant=participant)
    SurveyResponse.objects.filter(pk=response.pk).update(a_on_left=a_on_left)
    response.refresh_from_db()
    check = survey.questions.get(kind="attention")

    services.answer_submit(response=response, question=check, side="right")
    response.refresh_from_db()
    assert response.attention_passed is True
    assert response.status == ResponseStatus.IN_PROGRESS


def test_failing_the_attention_check_screens_the_response_out(survey, participant):
    response, _ = services.response_start(survey=survey, participant=participant)
    services.instructions_acknowledge(response=response, elapsed_ms=1500)
    answers = {q.position: ("left", "") for q in survey.questions.all()}

    services.answers_submit(response=response, answers=answers, elapsed_ms=42000)

    response.refresh_from_db()
    assert response.status == ResponseStatus.SCREENED_OUT
    assert response.attention_passed is False
    assert response.completed_at is not None
    # Everything is kept for inspection, in constitution terms.
    assert Answer.objects.filter(response=response).count() == survey.questions.count()
    assert response.timings == {"instructions": 1500, "questions": 42000}
    with pytest.raises(services.SurveyError, match="already finished"):
        services.answer_submit(response=response, question=survey.questions.first(), side="left")


def test_passing_every_question_completes_the_response(survey, participant):
    response, _ = services.response_start(survey=survey, participant=participant, consent_ms=900)
    services.instructions_acknowledge(response=response, elapsed_ms=1200)
    answers = {q.position: (q.expected_answer or "tie", "") for q in survey.questions.all()}
    services.answers_submit(response=response, answers=answers, elapsed_ms=60000)
    response.refresh_from_db()
    assert response.status == ResponseStatus.COMPLETED
    assert response.attention_passed is True
    assert response.timings == {"consent": 900, "instructions": 1200, "questions": 60000}
    with pytest.raises(services.SurveyError):
        services.answers_submit(response=response, answers=answers)


def test_every_question_must_be_answered(survey, participant):
    response, _ = services.response_start(survey=survey, participant=participant)
    with pytest.raises(services.SurveyError, match="every question"):
        services.answers_submit(response=response, answers={1: ("left", "")})
    assert not response.answers.exists()


def test_answers_outside_the_offered_choices_are_refused(study):
    survey = open_survey(study=study, allowed_choices=["a", "b"])
    response, _ = services.response_start(
        survey=survey, participant=ParticipantFactory(study=study)
    )
    with pytest.raises(services.SurveyError, match="not an answer"):
        services.answer_submit(response=response, question=survey.questions.first(), side="tie")


def test_implausible_page_times_are_dropped(survey, participant):
    response, _ = services.response_start(survey=survey, participant=participant, consent_ms=-5)
    services.instructions_acknowledge(response=response, elapsed_ms=10**12)
    response.refresh_from_db()
    assert response.timings == {"instructions": None}


def test_closed_survey_admits_no_new_response_but_keeps_existing_ones(survey, participant):
    started, _ = services.response_start(survey=survey, participant=participant)
    services.survey_close(survey=survey)
    again, created = services.response_start(survey=survey, participant=participant)
    assert (again.pk, created) == (started.pk, False)
    with pytest.raises(services.SurveyError, match="not accepting"):
        services.response_start(survey=survey, participant=ParticipantFactory(study=survey.study))


def test_ratings_are_keyed_by_screen_number_and_complete_the_response(rated_survey, participant):
    response, _ = services.response_start(survey=rated_survey, participant=participant)
    services.instructions_acknowledge(response=response)
    services.answers_submit(
        response=response,
        answers={
            q.position: (q.expected_answer or "left", "") for q in rated_survey.questions.all()
        },
    )
    response.refresh_from_db()
    assert response.status == ResponseStatus.IN_PROGRESS
    n = len(response.principle_order)
    with pytest.raises(services.SurveyError, match="every principle"):
        services.ratings_submit(response=response, ratings={1: 3})
    with pytest.raises(services.SurveyError, match="1 to 5"):
        services.ratings_submit(response=response, ratings={i: 9 for i in range(1, n + 1)})

    services.ratings_submit(response=response, ratings={i: i % 5 + 1 for i in range(1, n + 1)})

    response.refresh_from_db()
    assert response.status == ResponseStatus.COMPLETED
    stored = dict(response.ratings.values_list("item_id", "rating"))
    for i, pk in enumerate(response.principle_order, start=1):
        assert stored[pk] == i % 5 + 1


def test_survey_update_only_while_draft_and_unanswered(study):
    a, b = _pair(study)
    survey = services.survey_create(study=study, title="S", constitution_a=a, constitution_b=b)
    services.survey_update(
        survey=survey,
        title="Renamed",
        constitution_a=b,
        constitution_b=a,
        instructions="Read carefully.",
        questions=[services.QuestionSpec("only", "Which is clearer?")],
    )
    survey.refresh_from_db()
    assert (survey.title, survey.constitution_a_id) == ("Renamed", b.pk)
    assert list(survey.questions.values_list("key", flat=True)) == ["only"]
    services.survey_open(survey=survey)
    with pytest.raises(services.SurveyError, match="draft"):
        services.survey_update(
            survey=survey,
            title="Again",
            constitution_a=a,
            constitution_b=b,
            instructions="",
            questions=[services.QuestionSpec("only", "Which?")],
        )


def test_opening_a_survey_on_a_malformed_or_unsupported_constitution_needs_an_override(
    study, researcher
):
    a = published_constitution(
        study=study,
        method=Method.GCAI,
        title="Tiny model",
        texts=["] } ```python 1. The person explained their judgement"],
    )
    b = published_constitution(study=study, method=Method.ICAI, title="Baseline v1")
    b.items.first().principle.supporting_statements.clear()
    survey = services.survey_create(study=study, title="S", constitution_a=a, constitution_b=b)

    with pytest.raises(services.QualityGateError, match="Open anyway") as caught:
        services.survey_open(survey=survey)
    assert [(f["constitution"], f["position"], f["kind"]) for f in caught.value.flags] == [
        ("A", 1, "malformed"),
        ("B", 1, "no_evidence"),
    ]
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.DRAFT

    services.survey_open(survey=survey, override=True, user=researcher)
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.OPEN
    assert survey.quality_override["username"] == researcher.username
    assert len(survey.quality_override["flags"]) == 2
