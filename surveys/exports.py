"""CSV exports of survey results and raw data (researchers only).

Results come in long format (section, item, metric, value) so every number on the
results page is in the file and new metrics never break a reader's column layout.
Raw answers keep both the stored constitution-term choice and the screen side the
participant actually clicked. Participants appear under their pseudonym only: exported
files travel further than the database, so Prolific ids stay out of them.

This is the one survey-answers export: the study Data page, its API and
``export_data survey-answers`` use it too (registered in ``annotations.exports`` by
``surveys.apps``). Every file is written by ``gcai.csvsafe.csv_lines``, which
neutralises spreadsheet formulas in every cell.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from gcai.csvsafe import csv_lines
from surveys.models import Answer, PrincipleRating, Survey
from surveys.results import SurveyResults
from surveys.services import choice_to_side

RESULTS_HEADER = ["section", "item", "metric", "value"]
ANSWERS_HEADER = [
    "response",
    "participant",
    "status",
    "attention_passed",
    "a_on_left",
    "question_position",
    "question_key",
    "question_kind",
    "choice",
    "screen_side",
    "chose_left",
    "comment",
    "answered_at",
    "survey_id",
    "chosen_constitution_id",
    "chosen_constitution",
    "started_at",
    "completed_at",
    "timings",
]
RATINGS_HEADER = [
    "response",
    "participant",
    "status",
    "constitution",
    "principle_position",
    "shown_number",
    "rating",
    "principle_text",
]


def results_rows(*, survey: Survey, results: SurveyResults) -> Iterator[list[Any]]:
    """Every number of ``results`` as (section, item, metric, value) rows."""
    data = results.to_dict()
    yield ["survey", survey.title, "constitution_a", survey.constitution_a.title]
    yield ["survey", survey.title, "constitution_b", survey.constitution_b.title]
    yield ["survey", survey.title, "ties_in_share", data["ties_in_share"]]
    for metric, value in data["counts"].items():
        yield ["responses", "all", metric, value]
    for q in data["questions"]:
        for metric, value in q.items():
            if metric not in ("key", "label", "text"):
                yield ["question", q["key"], metric, value]
    if data["side_bias"]:
        for metric, value in data["side_bias"].items():
            yield ["side_bias", "decisive_answers", metric, value]
    for r in data["ratings"]:
        item = f"{r['side']}{r['position']}"
        for metric in ("n", "mean", "sd", "lo", "hi"):
            yield ["principle_rating", item, metric, r[metric]]
        yield ["principle_rating", item, "text", r["text"]]
    for side, r in data["constitution_ratings"].items():
        for metric in ("n", "mean", "sd", "lo", "hi"):
            yield ["constitution_rating", side, metric, r[metric]]


def answer_rows(*, survey: Survey) -> Iterator[list[Any]]:
    """One row per stored answer, including screened-out and unfinished responses."""
    answers = (
        Answer.objects.filter(response__survey=survey)
        .select_related("response__participant", "question")
        .order_by("response_id", "question__position")
    )
    constitutions = {"a": survey.constitution_a, "b": survey.constitution_b}
    for a in answers.iterator(chunk_size=2000):
        r = a.response
        chosen = constitutions.get(a.choice)
        yield [
            r.pk,
            r.participant.pseudonym,
            r.status,
            r.attention_passed,
            r.a_on_left,
            a.question.position,
            a.question.key,
            a.question.kind,
            a.choice,
            choice_to_side(choice=a.choice, a_on_left=r.a_on_left),
            a.chose_left,
            a.comment,
            a.created_at.isoformat(),
            survey.pk,
            chosen.pk if chosen else None,
            f"{chosen.title} v{chosen.version}" if chosen else None,
            _iso(r.started_at),
            _iso(r.completed_at),
            json.dumps(r.timings, sort_keys=True) if r.timings else None,
        ]


def rating_rows(*, survey: Survey) -> Iterator[list[Any]]:
    """One row per principle rating, with the number it had on the participant's screen."""
    ratings = (
        PrincipleRating.objects.filter(response__survey=survey)
        .select_related("response__participant", "item")
        .order_by("response_id", "item__constitution_id", "item__position")
    )
    for rating in ratings.iterator(chunk_size=2000):
        r = rating.response
        order = list(r.principle_order)
        shown = order.index(rating.item_id) + 1 if rating.item_id in order else None
        side = "a" if rating.item.constitution_id == survey.constitution_a_id else "b"
        yield [
            r.pk,
            r.participant.pseudonym,
            r.status,
            side,
            rating.item.position,
            shown,
            rating.rating,
            rating.item.text,
        ]


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def results_csv(*, survey: Survey, results: SurveyResults) -> Iterator[str]:
    """The results table as CSV text chunks."""
    return csv_lines(RESULTS_HEADER, results_rows(survey=survey, results=results))


def answers_csv(*, survey: Survey) -> Iterator[str]:
    """Raw answers as CSV text chunks, one row per answer."""
    return csv_lines(ANSWERS_HEADER, answer_rows(survey=survey))


def ratings_csv(*, survey: Survey) -> Iterator[str]:
    """Principle ratings as CSV text chunks."""
    return csv_lines(RATINGS_HEADER, rating_rows(survey=survey))
