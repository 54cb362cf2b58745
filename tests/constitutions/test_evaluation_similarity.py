"""Similarity to a ground truth in an evaluation: embedding matching always, the paper's
LLM matching rated 1-10 (with its ceiling) when asked."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gcai.constitutions.evaluations import evaluation_create, evaluation_run_inline
from gcai.constitutions.models import Evaluation
from tests.constitutions.evaluation_support import (
    PLEASE,
    make_constitution,
    polite_pairs,
    serve_judge,
)
from tests.core.eval_fakes import as_responder, rule_judge
from tests.core.test_llm_similarity import matcher
from tests.fakes.openai_server import last_user_message

pytestmark = pytest.mark.django_db

BRIEF = "Select the response that is brief."


@pytest.fixture
def judge_server(settings):
    yield from serve_judge(settings)


def _run(evaluation: Evaluation) -> Evaluation:
    assert evaluation_run_inline(evaluation=evaluation) == "succeeded", Evaluation.objects.get(
        pk=evaluation.pk
    ).error
    return Evaluation.objects.get(pk=evaluation.pk)


def _serve(judge_server):
    pairs_judge = as_responder(rule_judge({PLEASE: lambda t: "please" in t}))

    def respond(body):
        if "<candidates>" in last_user_message(body):
            return matcher(body)
        return pairs_judge(body)

    judge_server.responder = respond


def test_llm_matching_rates_each_ground_truth_principle_and_reports_the_ceiling(
    study, judge_server, owner_client
):
    polite_pairs(study, 2)
    _serve(judge_server)
    evaluation = _run(
        evaluation_create(
            study=study,
            constitution=make_constitution(study, [PLEASE]),
            ground_truth=[PLEASE, BRIEF],
            llm_similarity=True,
        )
    )
    llm = evaluation.results["similarity_llm"]
    ceiling = evaluation.results["similarity_llm_reference"]
    assert [(m["text"], m["match_text"], m["score"]) for m in llm["matches"]] == [
        (PLEASE, PLEASE, 10),
        (BRIEF, PLEASE, 2),
    ]
    assert llm["mean_score"] == 6
    assert ceiling["mean_score"] == 10
    assert llm["judge"] == "fake-judge"
    # The cheap embedding matching is still there, without judge ratings.
    assert evaluation.results["similarity"]["n_a"] == 2
    assert evaluation.results["similarity"]["judge"] == ""

    page = owner_client.get(
        reverse("evaluation_detail", kwargs={"study_id": study.pk, "evaluation_id": evaluation.pk})
    ).content.decode()
    assert "judged by the LLM" in page
    assert "Mean rating <strong>6.00</strong> / 10" in page
    assert "the ground truth against itself scores 10.00 (the ceiling)" in page


def test_without_llm_similarity_no_match_request_is_made(study, judge_server):
    polite_pairs(study, 2)
    _serve(judge_server)
    evaluation = _run(
        evaluation_create(
            study=study,
            constitution=make_constitution(study, [PLEASE]),
            ground_truth=[PLEASE, BRIEF],
        )
    )
    assert evaluation.results["similarity_llm"] is None
    assert evaluation.results["similarity"]["mean_similarity"] is not None
    asked = [b for b in judge_server.bodies("chat") if "<candidates>" in last_user_message(b)]
    assert asked == []
