"""Constitution similarity judged by an LLM (improved-ICAI paper, section 3.2), through
the real OpenAI client and the fake server."""

from __future__ import annotations

import re

import pytest

from gcai.core.llm.openai_client import OpenAIChatModel
from gcai.core.llm.retry import RetryPolicy
from gcai.core.llm_similarity import (
    LlmSimilarity,
    llm_constitution_similarity,
    llm_reference_similarity,
)
from gcai.core.types import Constitution, Principle
from tests.fakes import FakeOpenAIServer, Fault
from tests.fakes.openai_server import last_user_message

TRUTH = [
    "Select the response that features a cat.",
    "Select the response that recommends the blue shirt.",
    "Select the response that recommends lemon ice cream.",
]
KEYS = ("cat", "blue", "lemon", "washington")


def _key(text: str) -> str | None:
    words = set(re.findall(r"[a-z]+", text.lower()))
    return next((k for k in KEYS if k in words), None)


def matcher(request: dict) -> dict:
    """A judge that matches principles about the same thing; identical wording scores 10."""
    user = last_user_message(request)
    principle = re.search(r"<principle>\n(.*?)\n</principle>", user, re.S).group(1)
    listing = re.search(r"<candidates>\n(.*?)\n</candidates>", user, re.S).group(1)
    candidates = [re.sub(r"^\d+\.\s*", "", line) for line in listing.splitlines()]
    for i, text in enumerate(candidates, 1):
        if text == principle:
            return {"match": i, "score": 10}
    for i, text in enumerate(candidates, 1):
        if _key(text) is not None and _key(text) == _key(principle):
            return {"match": i, "score": 8}
    return {"match": 1, "score": 2}


@pytest.fixture
def judge():
    with FakeOpenAIServer(responder=matcher) as server:
        model = OpenAIChatModel(
            model="fake-judge",
            base_url=server.base_url,
            api_key="x",
            retry_policy=RetryPolicy(max_retries=0),
            timeout=5.0,
        )
        model.server = server  # type: ignore[attr-defined]
        yield model


def test_ground_truth_against_itself_is_the_ceiling(judge):
    ceiling = llm_reference_similarity(TRUTH, judge)
    assert ceiling.mean_score == 10
    assert ceiling.normalised == 1.0
    assert [(m.index, m.match_index) for m in ceiling.matches] == [(0, 0), (1, 1), (2, 2)]
    assert judge.server.chat_calls == 3  # one call per reference principle


def test_each_truth_principle_is_matched_to_its_closest_and_rated_1_to_10(judge):
    recovered = Constitution(
        principles=[
            Principle("Select the response that names Washington as the capital."),
            Principle("Select the response where the pet is a cat."),
            Principle("Select the response favouring blue."),
        ]
    )
    result = llm_constitution_similarity(TRUTH, recovered, judge)
    assert [(m.match_index, m.score) for m in result.matches] == [(1, 8), (2, 8), (0, 2)]
    assert result.matches[0].match_text == "Select the response where the pet is a cat."
    assert result.mean_score == pytest.approx(6.0)
    assert result.normalised == pytest.approx(5 / 9)
    assert result.unmatched_other == []  # "Washington" was picked, wrongly, for lemon
    assert result.mean_score < llm_reference_similarity(TRUTH, judge).mean_score
    # The prompt lists the candidates numbered and asks for a 1-10 rating.
    body = judge.server.bodies("chat")[0]
    user = last_user_message(body)
    assert "1. Select the response that names Washington" in user
    assert "1 to 10" in body["messages"][0]["content"]


def test_a_failed_or_out_of_range_answer_is_recorded_and_left_out_of_the_mean(judge):
    judge.server.inject(Fault.server_error(), Fault.text('{"match": 7, "score": 9}'))
    result = llm_constitution_similarity(TRUTH, TRUTH, judge)
    errors = sorted(m.error or "" for m in result.matches)
    assert result.failed == 2
    assert any("not between 1 and 3" in e for e in errors)
    assert result.mean_score == 10  # the one good answer
    assert LlmSimilarity.from_dict(result.to_dict()).to_dict() == result.to_dict()


def test_an_empty_constitution_scores_the_minimum_without_asking(judge):
    result = llm_constitution_similarity(TRUTH, [], judge)
    assert result.mean_score == 1
    assert result.normalised == 0.0
    assert judge.server.chat_calls == 0
