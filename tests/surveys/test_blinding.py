"""BLINDING: nothing a participant can reach may reveal which constitution is which.

Every page, redirect, cookie and API answer a participant can obtain, through the
whole flow, both screen orders, ratings, errors, screen-out, thank-you and closed
pages, is scanned for method names, constitution titles, ids (constitutions, their
principles, runs) and A/B labels. The ids are made distinctive so that they can be
searched for anywhere in the text, not just where one expects them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from gcai.constitutions.models import Method
from surveys import services
from surveys.models import Survey, SurveyResponse
from tests.surveys.factories import published_constitution
from tests.surveys.flow import answers_for, url

pytestmark = pytest.mark.django_db

A_PK, B_PK = 987651, 987652
A_RUN, B_RUN = 876541, 876542
A_PRINCIPLES, B_PRINCIPLES = 765400, 765500
A_ITEMS, B_ITEMS = 654300, 654400
A_TITLE, B_TITLE = "Harmony Charter v3", "Kestrel Rules v2"

METHOD_WORDS = sorted(
    {m.value for m in Method} | {m.label for m in Method} | {"gcai", "icai", "inverse"}
)
SECRET_WORDS = [
    A_TITLE,
    B_TITLE,
    "Harmony Charter",
    "Kestrel",
    "Secret survey title",
    "constitution_a",
    "constitution_b",
    "a_on_left",
    "contextual",
    "run_id",
]
# Case-sensitive: "constitution better ..." is ordinary English.
SECRET_PATTERNS = [r"\bConstitution [AB]\b", r"\bmethod\b(?!=\"post\")", r"\b[Oo]rigin\b"]


def _ids(survey: Survey) -> list[str]:
    from gcai.constitutions.models import ConstitutionPrinciple, Principle

    ids = {A_PK, B_PK, A_RUN, B_RUN}
    ids |= set(Principle.objects.filter(run_id__in=[A_RUN, B_RUN]).values_list("pk", flat=True))
    ids |= set(
        ConstitutionPrinciple.objects.filter(constitution_id__in=[A_PK, B_PK]).values_list(
            "pk", flat=True
        )
    )
    return sorted(str(i) for i in ids)


@pytest.fixture
def blinded_survey(study, researcher):
    a = published_constitution(
        study=study,
        method=Method.GCAI,
        title=A_TITLE,
        pk=A_PK,
        run_pk=A_RUN,
        principle_pk_start=A_PRINCIPLES,
        item_pk_start=A_ITEMS,
    )
    b = published_constitution(
        study=study,
        method=Method.ICAI,
        title=B_TITLE,
        pk=B_PK,
        run_pk=B_RUN,
        principle_pk_start=B_PRINCIPLES,
        item_pk_start=B_ITEMS,
    )
    survey = services.survey_create(
        study=study,
        user=researcher,
        title="Secret survey title GCAI vs ICAI",
        constitution_a=a,
        constitution_b=b,
        rate_principles=True,
    )
    services.survey_open(survey=survey)
    # Fixed codes: random hex could, very rarely, contain a searched-for number.
    Survey.objects.filter(pk=survey.pk).update(completion_code="DONE4242", screenout_code="OUT4242")
    survey.refresh_from_db()
    return survey


class Reached:
    """Everything participants received: bodies, redirect targets and cookies."""

    def __init__(self, survey: Survey) -> None:
        self.survey = survey
        self.items: list[tuple[str, str]] = []

    def add(self, label: str, response) -> object:
        text = response.content.decode("utf-8", errors="replace")
        if response.get("Location"):
            text += "\nLOCATION " + response["Location"]
        for morsel in response.cookies.values():
            text += f"\nCOOKIE {morsel.key}={morsel.value}"
        # Random tokens are neutralised: a random string may spell anything.
        text = text.replace(self.survey.entry_token, "<entry-token>")
        text = re.sub(r'(name="csrfmiddlewaretoken" value=")[^"]+', r"\1<csrf>", text)
        text = re.sub(r"(csrftoken=)[^;\s]+", r"\1<csrf>", text)
        text = re.sub(r"(sessionid=)[^;\s]+", r"\1<session>", text)
        text = re.sub(r"(browser=)[^;\s]+", r"\1<browser>", text)
        self.items.append((label, text))
        return response

    def get(self, client, label, path, data=None, **kw):
        return self.add(label, client.get(path, data or {}, **kw))

    def post(self, client, label, path, data=None, **kw):
        return self.add(label, client.post(path, data or {}, **kw))


def _pages_flow(reached: Reached, survey: Survey, *, pid: str | None, a_on_left: bool, fail: bool):
    client = Client()
    enter_params = {"PROLIFIC_PID": pid, "STUDY_ID": "STUDYX", "SESSION_ID": "SESSX"} if pid else {}
    reached.get(client, "enter", url("survey_participant_enter", survey), enter_params)
    reached.get(client, "consent", url("survey_participant_consent", survey))
    reached.post(client, "consent-post", url("survey_participant_consent", survey), {"agree": "1"})
    response = SurveyResponse.objects.get(survey=survey, participant__prolific_pid=pid or "")
    SurveyResponse.objects.filter(pk=response.pk).update(a_on_left=a_on_left)
    reached.get(client, "instructions", url("survey_participant_instructions", survey))
    reached.post(client, "instructions-post", url("survey_participant_instructions", survey))
    page = reached.get(client, "questions", url("survey_participant_questions", survey))
    # The left column really is A exactly when a_on_left: the randomisation is applied.
    left = page.context["screen"].constitutions[0].principles
    assert (left == list(survey.constitution_a.items.values_list("text", flat=True))) == a_on_left
    radios = set(re.findall(r'type="radio" name="q\d+" value="([^"]+)"', page.content.decode()))
    assert radios == {"left", "right", "tie", "both_bad"}
    data = answers_for(survey, pass_check=not fail)
    missing = {k: v for k, v in data.items() if k != "q1"}
    reached.post(client, "questions-error", url("survey_participant_questions", survey), missing)
    reached.post(client, "questions-post", url("survey_participant_questions", survey), data)
    if fail:
        reached.get(client, "ended", url("survey_participant_ended", survey))
        return
    ratings = reached.get(client, "ratings", url("survey_participant_ratings", survey))
    values = set(re.findall(r'type="radio" name="r\d+" value="([^"]+)"', ratings.content.decode()))
    assert values == {"1", "2", "3", "4", "5"}
    n = len(ratings.context["form"].items)
    reached.post(client, "ratings-error", url("survey_participant_ratings", survey), {"r1": "3"})
    reached.post(
        client,
        "ratings-post",
        url("survey_participant_ratings", survey),
        {f"r{i}": "4" for i in range(1, n + 1)},
    )
    reached.get(client, "done", url("survey_participant_done", survey))
    reached.get(client, "done-again", url("survey_participant_enter", survey), enter_params)


def _api_flow(reached: Reached, survey: Survey, *, pid: str, a_on_left: bool):
    client = Client()

    def api(name):
        return url(name, survey)

    reached.get(client, "api-state-before", api("api_survey_participant_state"))
    reached.post(
        client,
        "api-enter",
        api("api_survey_participant_enter"),
        {"PROLIFIC_PID": pid},
        content_type="application/json",
    )
    reached.post(client, "api-consent", api("api_survey_participant_consent"), {})
    SurveyResponse.objects.filter(survey=survey, participant__prolific_pid=pid).update(
        a_on_left=a_on_left
    )
    reached.post(client, "api-instructions", api("api_survey_participant_instructions"), {})
    state = reached.get(client, "api-questions", api("api_survey_participant_state")).json()
    answers = []
    for q in state["questions"]:
        check = survey.questions.get(position=q["number"])
        answers.append({"number": q["number"], "choice": check.expected_answer or "right"})
    reached.post(
        client,
        "api-answers-invalid",
        api("api_survey_participant_answers"),
        {"answers": [{"number": 1, "choice": "a"}]},
        content_type="application/json",
    )
    ratings = reached.post(
        client,
        "api-answers",
        api("api_survey_participant_answers"),
        {"answers": answers},
        content_type="application/json",
    ).json()
    reached.post(
        client,
        "api-ratings",
        api("api_survey_participant_ratings"),
        {"ratings": [{"number": p["number"], "rating": 5} for p in ratings["principles"]]},
        content_type="application/json",
    )
    reached.get(client, "api-done", api("api_survey_participant_state"))


def _static_files() -> list[tuple[str, str]]:
    out = []
    for rel in ("js/survey.js",):
        path = Path(settings.BASE_DIR) / "static" / rel
        out.append((f"static {rel}", path.read_text()))
    return out


def test_nothing_a_participant_can_reach_reveals_method_title_ids_or_sides(blinded_survey):
    survey = blinded_survey
    reached = Reached(survey)
    _pages_flow(reached, survey, pid="PIDLEFT1", a_on_left=True, fail=False)
    _pages_flow(reached, survey, pid="PIDRIGHT1", a_on_left=False, fail=False)
    _pages_flow(reached, survey, pid="PIDFAIL1", a_on_left=True, fail=True)
    _pages_flow(reached, survey, pid=None, a_on_left=False, fail=False)
    _api_flow(reached, survey, pid="PIDAPI1", a_on_left=False)
    services.survey_close(survey=survey)
    reached.get(
        Client(), "closed", url("survey_participant_enter", survey), {"PROLIFIC_PID": "LATE9"}
    )
    reached.get(Client(), "unknown-link", "/s/no-such-token/")

    scanned = reached.items + _static_files()
    ids = _ids(survey)
    problems = []
    for label, text in scanned:
        lowered = text.lower()
        for word in METHOD_WORDS + SECRET_WORDS:
            if word.lower() in lowered:
                problems.append(f"{label}: contains {word!r}")
        for value in ids:
            if re.search(rf"(?<!\d){value}(?!\d)", text):
                problems.append(f"{label}: contains id {value}")
        for pattern in SECRET_PATTERNS:
            if re.search(pattern, text):
                problems.append(f"{label}: matches {pattern!r}")
        if "<!--" in text:
            problems.append(f"{label}: has an HTML comment")
        if re.search(r"\{[#%]|\{\{", text):
            problems.append(f"{label}: shows unrendered template syntax (e.g. a comment)")
    assert len(scanned) > 40
    assert not problems, "\n".join(problems)

    # The flows really ran: two completed on pages, one screened out, one without
    # Prolific, one through the API.
    statuses = sorted(SurveyResponse.objects.filter(survey=survey).values_list("status", flat=True))
    assert statuses == ["completed"] * 4 + ["screened_out"]


def test_participant_api_payloads_carry_no_ids(blinded_survey):
    client = Client()
    client.post(
        url("api_survey_participant_enter", blinded_survey),
        {"PROLIFIC_PID": "PIDJSON1"},
        content_type="application/json",
    )
    client.post(url("api_survey_participant_consent", blinded_survey), {})
    client.post(url("api_survey_participant_instructions", blinded_survey), {})
    state = client.get(url("api_survey_participant_state", blinded_survey)).json()

    def keys(value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)
        elif isinstance(value, list):
            for v in value:
                yield from keys(v)

    assert set(keys(state)) <= {
        "step",
        "constitutions",
        "label",
        "principles",
        "questions",
        "number",
        "text",
        "allow_comment",
        "choices",
        "value",
    }
    assert [c["label"] for c in state["constitutions"]] == ["Constitution 1", "Constitution 2"]
    assert {c["value"] for c in state["choices"]} == {"left", "right", "tie", "both_bad"}
    # The only numbers are screen positions: 1..number of questions.
    numbers = re.findall(r'"(\w+)": (\d+)', json.dumps(state))
    assert {key for key, _ in numbers} == {"number"}
    assert sorted(int(v) for _, v in numbers) == list(range(1, len(state["questions"]) + 1))
