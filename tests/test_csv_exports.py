"""Every CSV the platform writes neutralises spreadsheet formulas.

Text from participants, annotators and imported datasets ends up in files researchers
open in a spreadsheet; a cell starting with ``=``, ``+``, ``-`` or ``@`` would run there.
``CSV_EXPORTS`` lists every route that answers with a CSV file and seeds each with
formula-leading text; ``test_every_csv_route_is_listed`` finds the CSV routes itself (it
requests every named route as the study owner), so a new CSV export cannot be missed,
and ``test_no_module_writes_csv_by_itself`` keeps every writer on ``gcai.csvsafe``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from gcai.csvsafe import csv_text, safe_cell, unescape_cell
from tests import entry_points
from tests.factories import AnnotationFactory, PairFactory, ParticipantFactory, StatementFactory
from tests.owned_objects import make_owned_objects
from tests.test_entry_points import ROUTES

ROOT = Path(__file__).resolve().parent.parent
FORMULA = '=HYPERLINK("http://attacker.example/x","click me")'
OTHERS = ("+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)")


# --- Seeds: formula-leading text in each export's data; return (url kwargs, query) --------
def _pairs(owned: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    study = owned["study"]
    pair = PairFactory(
        dataset__study=study,
        dataset__name=OTHERS[2],
        external_id=OTHERS[0],
        prompt=FORMULA,
        response_a=OTHERS[1],
        response_b="plain",
        score_a=-0.5,
    )
    AnnotationFactory(pair=pair, reason=FORMULA)
    return {"study_id": study.pk}, {"fmt": "csv"}


def _statements(owned):
    study = owned["study"]
    StatementFactory(study=study, text=FORMULA, question=OTHERS[2])
    return {"study_id": study.pk}, {"fmt": "csv"}


def _survey_with_answers(owned):
    from surveys.models import Answer, PrincipleRating, SurveyResponse
    from tests.surveys.factories import open_survey, published_constitution

    study = owned["study"]
    a = published_constitution(study=study, title=FORMULA, texts=[FORMULA, "Be kind."])
    survey = open_survey(study=study, user=owned["researcher"], a=a, rate_principles=True)
    response = SurveyResponse.objects.create(
        survey=survey, participant=ParticipantFactory(study=study), a_on_left=True
    )
    for question in survey.questions.all():
        Answer.objects.create(response=response, question=question, choice="a", comment=FORMULA)
    for item in a.items.all():
        PrincipleRating.objects.create(response=response, item=item, rating=4)
    return survey


def _survey(owned):
    survey = _survey_with_answers(owned)
    return {"study_id": survey.study_id, "survey_id": survey.pk}, {}


def _evaluation_of(owned):
    from gcai.constitutions.models import Constitution, Evaluation

    study = owned["study"]
    pair = PairFactory(dataset__study=study, dataset__name=FORMULA, external_id=OTHERS[0])
    constitution = Constitution.objects.create(study=study, title=FORMULA)
    judgement = {
        "pair_id": str(pair.pk),
        "human": "a",
        "original": "a",
        "swapped": "b",
        "final": "error",
        "errors": [FORMULA],
    }
    return Evaluation.objects.create(
        study=study,
        kind="constitution",
        constitution=constitution,
        comparison_group="csv-group",
        results={"judgements": [judgement]},
    )


def _evaluation(owned):
    evaluation = _evaluation_of(owned)
    return {"study_id": evaluation.study_id, "evaluation_id": evaluation.pk}, {}


def _evaluation_group(owned):
    evaluation = _evaluation_of(owned)
    return {"study_id": evaluation.study_id, "group": evaluation.comparison_group}, {}


def _attributes(owned):
    from annotations.attributes import attribute_set

    study = owned["study"]
    for _ in range(study.min_group_size):
        attribute_set(
            study=study, key=OTHERS[2], value=FORMULA, participant=ParticipantFactory(study=study)
        )
    return {"study_id": study.pk}, {}


def _votes(owned):
    from annotations.models import StatementVote

    study = owned["study"]
    statement = StatementFactory(study=study, participant=None, external_participant=FORMULA)
    StatementVote.objects.create(
        participant=ParticipantFactory(study=study), statement=statement, vote="agree"
    )
    return {"study_id": study.pk}, {}


def _group_comparison(owned):
    from tests.groups.groups_owned_objects import make_comparison

    comparison = make_comparison(owned["study"], values=(FORMULA, OTHERS[1]))
    return {"study_id": owned["study"].pk, "comparison_id": comparison.pk}, {}


# Every route that answers with a CSV file, with how to seed it.
CSV_EXPORTS: dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]] = {
    "study_export_pairs": _pairs,
    "api_export_pairs": _pairs,
    "study_export_statements": _statements,
    "api_export_statements": _statements,
    "study_export_survey_answers": _survey,
    "api_export_survey_answers": _survey,
    "survey_results_csv": _survey,
    "survey_answers_csv": _survey,
    "survey_ratings_csv": _survey,
    "evaluation_export_csv": _evaluation,
    "api_evaluation_export_csv": _evaluation,
    "evaluation_compare_csv": _evaluation_group,
    "study_attributes_export": _attributes,
    "study_export_votes": _votes,
    "group_comparison_csv": _group_comparison,
}


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(CSV_EXPORTS))
def test_every_csv_export_escapes_formula_leading_cells(owner_client, study, researcher, name):
    owned = {"study": study, "researcher": researcher}
    kwargs, query = CSV_EXPORTS[name](owned)
    response = owner_client.get(reverse(name, kwargs=kwargs), query)
    assert response.status_code == 200, (name, response.status_code)
    assert response["Content-Type"].startswith("text/csv")
    cells = _cells(_body(response))
    escaped = [c for c in cells if c.startswith("'" + FORMULA)]
    assert escaped, f"{name}: the seeded formula is missing or not escaped"
    live = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
    live += [c for c in cells if c[:1] == "-" and not _is_number(c)]
    assert not live, f"{name} writes cells a spreadsheet would run: {live}"


@pytest.mark.django_db
def test_every_csv_route_is_listed(owner_client, study, researcher):
    owned = make_owned_objects(study, researcher)
    found = set()
    for name, _route, params in ROUTES:
        if name in entry_points.PUBLIC or (not params and name not in entry_points.PERSONAL):
            continue
        if params and params != ["study_id"] and name not in entry_points.OBJECT_ROUTES:
            continue
        if name in entry_points.OBJECT_ROUTES:
            kwargs = entry_points.OBJECT_ROUTES[name](owned)
        elif params:
            kwargs = {"study_id": study.pk}
        else:
            kwargs = {}
        response = owner_client.get(reverse(name, kwargs=kwargs), {"fmt": "csv"})
        if response.get("Content-Type", "").startswith("text/csv"):
            found.add(name)
    assert found == set(CSV_EXPORTS), (
        "CSV routes and tests/test_csv_exports.py CSV_EXPORTS differ: "
        f"unlisted {sorted(found - set(CSV_EXPORTS))}, not CSV {sorted(set(CSV_EXPORTS) - found)}"
    )


def test_no_module_writes_csv_by_itself():
    writers = re.compile(r"csv\.(writer|DictWriter)\(")
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("annotations", "gcai", "surveys", "scripts")
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "gcai" / "csvsafe.py" and writers.search(path.read_text())
    ]
    assert not offenders, f"write CSV with gcai.csvsafe.csv_lines instead: {offenders}"


@pytest.mark.parametrize(
    "value",
    [FORMULA, *OTHERS, "\tx", "\rx", "'=already quoted", "''@x", "'plain", "plain", "", "a=b"],
)
def test_escape_round_trips(value):
    assert unescape_cell(safe_cell(value)) == value
    assert safe_cell(value)[:1] not in ("=", "+", "-", "@", "\t", "\r")


def test_numbers_stay_numbers():
    assert csv_text(["n", "x"], [[-0.5, "-0.5"], [None, 3]]) == "n,x\r\n-0.5,'-0.5\r\n,3\r\n"
