"""Researcher pages: builder, list, detail, results (live), report and CSV exports."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from annotations.models import Participant
from gcai.constitutions.models import Constitution, Method
from surveys.models import Survey, SurveyStatus
from tests.surveys.factories import open_survey, published_constitution
from tests.surveys.flow import complete

pytestmark = pytest.mark.django_db


def _kw(survey):
    return {"study_id": survey.study_id, "survey_id": survey.pk}


def test_builder_offers_only_published_constitutions_and_creates_a_draft(owner_client, study):
    a = published_constitution(study=study, method=Method.GCAI, title="Grounded v1")
    b = published_constitution(study=study, method=Method.ICAI, title="Baseline v1")
    Constitution.objects.create(study=study, title="Unpublished draft", method="gcai")
    page = owner_client.get(reverse("survey_create", kwargs={"study_id": study.pk}))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Grounded v1" in html
    assert "Unpublished draft" not in html
    assert "Which constitution is more morally grounded?" in html

    form = page.context["form"]
    data = {name: field.initial for name, field in form.fields.items() if field.initial is not None}
    data.update(
        title="Moral grounding study",
        constitution_a=a.pk,
        constitution_b=b.pk,
        consent_text="",
        rate_principles="on",
    )
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    response = owner_client.post(reverse("survey_create", kwargs={"study_id": study.pk}), data)

    survey = Survey.objects.get(title="Moral grounding study")
    assert response["Location"] == reverse("survey_detail", kwargs=_kw(survey))
    assert survey.status == SurveyStatus.DRAFT
    assert survey.rate_principles
    assert list(survey.questions.values_list("key", flat=True)) == [
        "moral_grounding",
        "personal_preference",
        "coherence",
        "attention_check",
        "plurality",
        "wide_governance",
    ]
    assert survey.choices() == ["a", "b", "tie", "both_bad"]


def test_builder_shows_service_refusals(owner_client, study):
    a = published_constitution(study=study, method=Method.GCAI, title="Grounded v1")
    b = published_constitution(study=study, method=Method.ICAI, title="Baseline v1")
    response = owner_client.post(
        reverse("survey_create", kwargs={"study_id": study.pk}),
        {
            "title": "T",
            "constitution_a": a.pk,
            "constitution_b": b.pk,
            "instructions": "Compare the ICAI constitution with ours.",
            "questions_text": "Which is clearer?",
            "attention_expected": "right",
        },
    )
    assert response.status_code == 200
    assert "would unblind participants" in response.content.decode()
    assert not Survey.objects.exists()


def test_builder_parses_custom_questions_and_choices(owner_client, study):
    a = published_constitution(study=study, method=Method.GCAI, title="Grounded v1")
    b = published_constitution(study=study, method=Method.ICAI, title="Baseline v1")
    owner_client.post(
        reverse("survey_create", kwargs={"study_id": study.pk}),
        {
            "title": "Custom",
            "constitution_a": a.pk,
            "constitution_b": b.pk,
            "instructions": "Read both.",
            "questions_text": "clarity | Which is clearer?\nWhich is kinder?\n\n",
            "attention_text": "Select Constitution 1 here.",
            "attention_expected": "left",
        },
    )
    survey = Survey.objects.get(title="Custom")
    rows = list(survey.questions.values_list("key", "kind", "expected_answer", "allow_comment"))
    assert rows == [
        ("clarity", "compare", "", False),
        ("attention_check", "attention", "left", False),
        ("which_is_kinder", "compare", "", False),
    ]
    assert survey.choices() == ["a", "b"]


def test_list_detail_and_status_changes(owner_client, study, researcher):
    survey = open_survey(study=study, user=researcher)
    listing = owner_client.get(reverse("survey_list", kwargs={"study_id": study.pk}))
    assert survey.title in listing.content.decode()

    detail = owner_client.get(reverse("survey_detail", kwargs=_kw(survey)))
    html = detail.content.decode()
    entry = reverse("survey_participant_enter", args=[survey.entry_token])
    assert f"http://testserver{entry}" in html
    assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in html
    assert survey.completion_code in html
    assert survey.screenout_code in html

    assert "Yes, close the survey" in html
    # Closing needs the explicit confirmation; a bare POST changes nothing.
    owner_client.post(reverse("survey_close", kwargs=_kw(survey)))
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.OPEN
    owner_client.post(reverse("survey_close", kwargs=_kw(survey)), {"confirm": "yes"})
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.CLOSED
    owner_client.post(reverse("survey_open", kwargs=_kw(survey)))
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.OPEN


def test_results_page_counts_completed_and_screened_out(owner_client, study, researcher):
    survey = open_survey(study=study, user=researcher)
    complete(Client(), survey, pid="P1")
    complete(Client(), survey, pid="P2")
    complete(Client(), survey, pid="P3", pass_check=False)

    page = owner_client.get(reverse("survey_results", kwargs=_kw(survey)))
    html = page.content.decode()
    results = page.context["results"]
    assert (results.counts.completed, results.counts.screened_out) == (2, 1)
    assert '<div class="stat" id="count-completed"><span class="num">2</span>' in html
    assert '<div class="stat" id="count-screened-out"><span class="num">1</span>' in html
    assert "<svg" in html
    assert 'class="whisker"' in html
    # A label where a label belongs, never the question key; and the sample is called small.
    assert "Moral grounding" in html
    assert "moral_grounding" not in html
    assert "Only 2 completed participants" in html
    live = owner_client.get(reverse("survey_results_live", kwargs=_kw(survey)))
    assert live.status_code == 200
    assert "<html" not in live.content.decode()
    assert 'id="count-completed"' in live.content.decode()


def test_report_page_is_printable_and_names_both_constitutions(owner_client, study, researcher):
    survey = open_survey(study=study, user=researcher, rate_principles=True)
    complete(Client(), survey, pid="P1")
    html = owner_client.get(reverse("survey_report", kwargs=_kw(survey))).content.decode()
    assert "Grounded v1" in html
    assert "Baseline v1" in html
    assert "Holm" in html
    assert "Wilson" in html
    assert "Principle ratings" in html
    assert "window.print()" in html


def _csv_rows(response):
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_exports_hold_every_result_number_and_every_raw_answer(owner_client, study, researcher):
    survey = open_survey(study=study, user=researcher, rate_principles=True)
    prolific_ids = ("5f1a2b3c4d5e6f7a8b9c0d1e", "6a7b8c9d0e1f2a3b4c5d6e7f")
    complete(Client(), survey, pid=prolific_ids[0])
    complete(Client(), survey, pid=prolific_ids[1], pass_check=False)

    rows = _csv_rows(owner_client.get(reverse("survey_results_csv", kwargs=_kw(survey))))
    assert rows[0] == ["section", "item", "metric", "value"]
    metrics = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    assert metrics[("responses", "all", "completed")] == "1"
    assert metrics[("responses", "all", "screened_out")] == "1"
    for metric in (
        "n_a",
        "n_b",
        "n_tie",
        "share_a",
        "share_a_lo",
        "share_a_hi",
        "p_value",
        "p_holm",
    ):
        assert ("question", "moral_grounding", metric) in metrics
    assert ("side_bias", "decisive_answers", "p_value") in metrics
    assert ("principle_rating", "a1", "mean") in metrics

    answers = _csv_rows(owner_client.get(reverse("survey_answers_csv", kwargs=_kw(survey))))
    assert answers[0][:3] == ["response", "participant", "status"]
    # Participants appear under their pseudonym only, never their Prolific ID.
    participants = Participant.objects.filter(prolific_pid__in=prolific_ids)
    pseudonyms = set(participants.values_list("pseudonym", flat=True))
    assert len(pseudonyms) == 2  # the IDs reached the database, so leaving them out counts
    assert {r[1] for r in answers[1:]} == pseudonyms
    assert len(answers) == 1 + 2 * survey.questions.count()
    assert {r[2] for r in answers[1:]} == {"completed", "screened_out"}
    assert {r[9] for r in answers[1:]} <= {"left", "right", "tie", "both_bad"}

    ratings = _csv_rows(owner_client.get(reverse("survey_ratings_csv", kwargs=_kw(survey))))
    assert len(ratings) == 1 + 5
    exported = "\n".join(",".join(row) for row in [*rows, *answers, *ratings])
    assert not any(pid in exported for pid in prolific_ids)


def test_csv_neutralises_spreadsheet_formulas_in_comments(owner_client, study, researcher):
    survey = open_survey(study=study, user=researcher)
    client = Client()
    from tests.surveys.flow import answers_for, run_to_questions, url

    run_to_questions(client, survey, pid="P1")
    data = answers_for(survey)
    data["q1_comment"] = '=HYPERLINK("http://x")'
    client.post(url("survey_participant_questions", survey), data)
    answers = _csv_rows(owner_client.get(reverse("survey_answers_csv", kwargs=_kw(survey))))
    assert answers[1][11] == '\'=HYPERLINK("http://x")'


def test_list_and_results_pages_use_a_fixed_number_of_queries(
    owner_client, study, researcher, django_assert_max_num_queries
):
    for _ in range(3):
        survey = open_survey(study=study, user=researcher, rate_principles=True)
    for pid in ("P1", "P2", "P3", "P4"):
        complete(Client(), survey, pid=pid)
    with django_assert_max_num_queries(8):
        owner_client.get(reverse("survey_list", kwargs={"study_id": study.pk}))
    with django_assert_max_num_queries(14):
        owner_client.get(reverse("survey_results", kwargs=_kw(survey)))
    with django_assert_max_num_queries(10):
        owner_client.get(reverse("survey_answers_csv", kwargs=_kw(survey)))


def test_editing_is_possible_only_for_unanswered_drafts(owner_client, study, researcher):
    survey = open_survey(study=study, user=researcher)
    Survey.objects.filter(pk=survey.pk).update(status=SurveyStatus.DRAFT)
    page = owner_client.get(reverse("survey_edit", kwargs=_kw(survey)))
    assert page.status_code == 200
    data = {k: v for k, v in page.context["form"].initial.items() if v is not False}
    data = {k: ("on" if v is True else v) for k, v in data.items()}
    data["title"] = "Renamed"
    response = owner_client.post(reverse("survey_edit", kwargs=_kw(survey)), data)
    assert response.status_code == 302
    survey.refresh_from_db()
    assert survey.title == "Renamed"
    assert survey.questions.count() == 6
