"""Survey statistics: known published values, Holm, ties, position bias, exclusions."""

from __future__ import annotations

import math

import pytest

from annotations.models import Participant
from surveys import services
from surveys.models import ResponseStatus
from surveys.results import question_result, survey_results_compute
from tests.factories import ParticipantFactory
from tests.surveys.factories import open_survey


@pytest.mark.parametrize(
    ("k", "share", "p_value", "lo", "hi"),
    [
        # GCAI paper: 49 of 51 participants preferred the GCAI constitution (moral grounding).
        (49, 0.961, 1.2e-12, 0.87, 0.99),
        (38, 0.745, 6e-4, 0.61, 0.84),
    ],
)
def test_question_result_reproduces_known_share_p_value_and_wilson_interval(
    k, share, p_value, lo, hi
):
    result = question_result(position=1, key="q", text="?", n_a=k, n_b=51 - k)

    assert result.a.n == 51
    assert result.a.share == pytest.approx(share, abs=5e-4)
    assert result.p_value == pytest.approx(p_value, rel=0.05)
    assert result.a.lo == pytest.approx(lo, abs=5e-3)
    assert result.a.hi == pytest.approx(hi, abs=5e-3)
    # B's share is the mirror image with the same test.
    assert result.b.share == pytest.approx(1 - result.a.share)
    assert result.b.p_value == pytest.approx(result.a.p_value)


def test_binomial_p_value_is_the_exact_two_sided_tail():
    result = question_result(position=1, key="q", text="?", n_a=49, n_b=2)
    exact = 2 * (math.comb(51, 49) + math.comb(51, 50) + 1) / 2**51
    assert result.p_value == pytest.approx(exact, rel=1e-9)


def test_ties_are_left_out_of_the_share_unless_configured():
    excluded = question_result(position=1, key="q", text="?", n_a=6, n_b=2, n_tie=1, n_both_bad=1)
    included = question_result(
        position=1, key="q", text="?", n_a=6, n_b=2, n_tie=1, n_both_bad=1, ties_in_share=True
    )
    assert (excluded.a.k, excluded.a.n, excluded.a.share) == (6, 8, 0.75)
    assert (included.a.k, included.a.n, included.a.share) == (6, 10, 0.6)
    assert excluded.n_answers == included.n_answers == 10


def test_no_decisive_answers_gives_an_undefined_share_not_an_error():
    result = question_result(position=1, key="q", text="?", n_a=0, n_b=0, n_tie=3)
    assert result.a.share is None
    assert (result.a.lo, result.a.hi, result.p_value) == (0.0, 1.0, 1.0)


def _answer(survey, *, prefer: str, left_is: str, n: int, fail_attention: bool = False):
    """``n`` participants who prefer constitution ``prefer`` on every compare question,
    seeing ``left_is`` on the left."""
    for _ in range(n):
        participant = ParticipantFactory(study=survey.study)
        response, _ = services.response_start(survey=survey, participant=participant)
        response.a_on_left = left_is == "a"
        response.save(update_fields=["a_on_left"])
        services.instructions_acknowledge(response=response)
        answers = {}
        for q in survey.questions.all():
            if q.kind == "attention":
                side = "left" if fail_attention else q.expected_answer
            elif prefer in ("tie", "both_bad"):
                side = prefer
            else:
                side = "left" if prefer == left_is else "right"
            answers[q.position] = (side, "")
        services.answers_submit(response=response, answers=answers)


@pytest.mark.django_db
def test_survey_results_count_only_completed_responses_and_apply_holm(study, researcher):
    survey = open_survey(study=study, user=researcher)
    _answer(survey, prefer="a", left_is="a", n=7)
    _answer(survey, prefer="a", left_is="b", n=5)
    _answer(survey, prefer="b", left_is="a", n=1)
    _answer(survey, prefer="tie", left_is="a", n=2)
    _answer(survey, prefer="b", left_is="b", n=4, fail_attention=True)  # screened out
    unfinished, _ = services.response_start(
        survey=survey, participant=ParticipantFactory(study=study)
    )

    results = survey_results_compute(survey=survey)

    assert results.counts.completed == 15
    assert results.counts.screened_out == 4
    assert results.counts.in_progress == 1
    assert results.counts.started == 20
    assert [q.key for q in results.questions] == [
        "moral_grounding",
        "personal_preference",
        "coherence",
        "plurality",
        "wide_governance",
    ]
    q = results.questions[0]
    assert (q.n_a, q.n_b, q.n_tie, q.n_both_bad) == (12, 1, 2, 0)
    assert q.a.n == 13
    # Five identical questions: Holm multiplies the smallest p by 5, then keeps monotone.
    assert q.p_holm == pytest.approx(min(1.0, 5 * q.p_value))
    # Position: A on the left for 7 (chose left) + 1 (chose B = right); A on the right
    # for 5 (chose A = right). Per question 7 left vs 6 right, times five questions.
    assert results.side_bias.left == 35
    assert results.side_bias.right == 30
    assert unfinished.status == ResponseStatus.IN_PROGRESS
    assert Participant.objects.filter(study=study).count() == 20


@pytest.mark.django_db
def test_principle_ratings_have_means_and_intervals_inside_the_scale(study, researcher):
    survey = open_survey(study=study, user=researcher, rate_principles=True)
    for values in ([5, 4, 3, 2, 1], [4, 4, 4, 2, 2], [3, 5, 4, 1, 2]):
        response, _ = services.response_start(
            survey=survey, participant=ParticipantFactory(study=study)
        )
        services.instructions_acknowledge(response=response)
        services.answers_submit(
            response=response,
            answers={q.position: (q.expected_answer or "left", "") for q in survey.questions.all()},
        )
        # Rate by screen number; translate back to a fixed principle order for the test.
        order = response.principle_order
        items = sorted(order)
        by_item = dict(zip(items, values, strict=True))
        services.ratings_submit(
            response=response, ratings={i + 1: by_item[pk] for i, pk in enumerate(order)}
        )

    results = survey_results_compute(survey=survey)

    assert results.counts.completed == 3
    assert len(results.ratings) == 5
    first = results.ratings[0]
    assert (first.side, first.position, first.n) == ("a", 1, 3)
    assert first.mean == pytest.approx(4.0)
    assert first.sd == pytest.approx(1.0)
    # A t-interval would be 4 ± 2.48 = [1.52, 6.48], past the top of the 1-5 scale.
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, df=2)
    assert 4 + half > 5
    assert 1 <= first.lo < 4 < first.hi <= 5
    a_overall = results.constitution_ratings["a"]
    assert a_overall.n == 3
    assert a_overall.mean == pytest.approx((4 + 4 + 4) / 3)
    # Three equal means: still an interval, not "4.00 [4.00, 4.00]".
    assert a_overall.lo < 4 < a_overall.hi
    data = results.to_dict()
    assert data["ratings"][0]["mean"] == pytest.approx(4.0)
    # Three participants: every number carries the small-sample warning.
    assert "Only 3 completed participants" in results.warning
    assert data["warning"] == results.warning
    assert "Only 3 ratings" in data["ratings"][0]["warning"]
    assert data["questions"][0]["label"] == "Moral grounding"
    assert "Only 3 answers" in data["questions"][0]["warning"]
