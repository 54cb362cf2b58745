"""The participant flow through the pages: Prolific entry, consent, instructions,
questions, ratings, completion and screen-out redirects, resume, one response each."""

from __future__ import annotations

import pytest
from django.test import Client

from annotations.models import Participant
from annotations.participants import completion_redirect_url
from surveys import services
from surveys.models import ResponseStatus, SurveyResponse
from tests.surveys.flow import answers_for, complete, enter, run_to_questions, url

pytestmark = pytest.mark.django_db


def test_prolific_participant_is_sent_back_with_the_completion_code(client, survey):
    response = enter(client, survey)
    assert response.status_code == 302
    assert response["Location"] == url("survey_participant_consent", survey)
    participant = Participant.objects.get(study=survey.study, prolific_pid="PID0001")
    assert (participant.prolific_study_id, participant.prolific_session_id) == ("STUDY9", "SESS9")

    consent = client.get(response["Location"])
    assert consent.status_code == 200
    assert survey.study.consent_text in consent.content.decode()

    after = complete(client, survey)
    assert after["Location"] == url("survey_participant_done", survey)
    done = client.get(after["Location"])
    # The code as text, and the way back to Prolific (a link and a timed redirect).
    assert done.status_code == 200
    page = done.content.decode()
    assert f'id="completion-code">{survey.completion_code}<' in page
    assert f'href="{completion_redirect_url(survey.completion_code)}"' in page
    assert (
        f'http-equiv="refresh" content="10;url={completion_redirect_url(survey.completion_code)}"'
        in page
    )

    record = SurveyResponse.objects.get(survey=survey)
    assert record.status == ResponseStatus.COMPLETED
    assert record.attention_passed is True
    assert record.participant == participant
    assert record.participant.consented_at is not None
    assert set(record.timings) == {"consent", "instructions", "questions"}
    assert record.timings["questions"] == 30000


def test_failing_the_attention_check_redirects_with_the_screenout_code(client, survey):
    after = complete(client, survey, pass_check=False)
    assert after["Location"] == url("survey_participant_ended", survey)
    ended = client.get(after["Location"])
    # Told why before going back: no automatic redirect, the code and a button.
    assert ended.status_code == 200
    page = ended.content.decode()
    assert "attention check" in page
    assert "your answers will not be counted" in page
    assert f'id="completion-code">{survey.screenout_code}<' in page
    assert f'href="{completion_redirect_url(survey.screenout_code)}"' in page
    assert "http-equiv" not in page
    record = SurveyResponse.objects.get(survey=survey)
    assert (record.status, record.attention_passed) == (ResponseStatus.SCREENED_OUT, False)
    # Going back to the questions cannot undo it.
    again = client.post(url("survey_participant_questions", survey), answers_for(survey))
    assert again["Location"] == url("survey_participant_ended", survey)


def test_without_prolific_a_thank_you_page_shows_the_code(client, survey):
    complete(client, survey, pid=None)
    done = client.get(url("survey_participant_done", survey))
    assert done.status_code == 200
    assert survey.completion_code in done.content.decode()


def test_ratings_page_follows_the_questions_when_the_survey_asks(client, rated_survey):
    run_to_questions(client, rated_survey)
    after = client.post(
        url("survey_participant_questions", rated_survey), answers_for(rated_survey)
    )
    assert after["Location"] == url("survey_participant_ratings", rated_survey)
    page = client.get(after["Location"])
    n = len(page.context["form"].items)
    assert n == 5
    incomplete = client.post(after["Location"], {"r1": "5"})
    assert incomplete.status_code == 200
    assert "Please rate this principle." in incomplete.content.decode()
    done = client.post(after["Location"], {f"r{i}": str(i % 5 + 1) for i in range(1, n + 1)})
    assert done["Location"] == url("survey_participant_done", rated_survey)
    record = SurveyResponse.objects.get(survey=rated_survey)
    assert record.status == ResponseStatus.COMPLETED
    assert record.ratings.count() == 5
    assert "ratings" in record.timings


def test_missing_answers_are_shown_again_with_errors(client, survey):
    run_to_questions(client, survey)
    data = answers_for(survey)
    del data["q2"]
    page = client.post(url("survey_participant_questions", survey), data)
    assert page.status_code == 200
    assert "Please choose an answer." in page.content.decode()
    assert not SurveyResponse.objects.get(survey=survey).answers.exists()


def test_returning_with_the_same_prolific_id_resumes_the_same_response(survey):
    first = Client()
    run_to_questions(first, survey, pid="RESUME1")
    record = SurveyResponse.objects.get(survey=survey)

    # A new browser (no session): the Prolific id finds the participant again.
    second = Client()
    response = enter(second, survey, pid="RESUME1")
    assert response["Location"] == url("survey_participant_questions", survey)
    page = second.get(response["Location"])
    assert page.status_code == 200
    assert Participant.objects.filter(study=survey.study, prolific_pid="RESUME1").count() == 1
    assert SurveyResponse.objects.get(survey=survey).pk == record.pk
    # The sides stay as first drawn.
    left = page.context["screen"].constitutions[0].principles
    a_texts = list(survey.constitution_a.items.values_list("text", flat=True))
    assert (left == a_texts) == record.a_on_left


def test_a_finished_participant_cannot_take_the_survey_twice(survey):
    complete(Client(), survey, pid="TWICE1")
    again = Client()
    response = enter(again, survey, pid="TWICE1")
    assert response["Location"] == url("survey_participant_done", survey)
    assert again.get(url("survey_participant_consent", survey))["Location"] == url(
        "survey_participant_done", survey
    )
    assert SurveyResponse.objects.filter(survey=survey).count() == 1


def test_pages_out_of_order_redirect_to_the_current_step(client, survey):
    assert client.get(url("survey_participant_questions", survey))["Location"] == url(
        "survey_participant_enter", survey
    )
    enter(client, survey)
    assert client.get(url("survey_participant_questions", survey))["Location"] == url(
        "survey_participant_consent", survey
    )
    assert client.get(url("survey_participant_done", survey))["Location"] == url(
        "survey_participant_consent", survey
    )


def test_declining_consent_records_nothing(client, survey):
    enter(client, survey)
    page = client.post(url("survey_participant_consent", survey), {"decline": "1"})
    assert page.status_code == 200
    assert not SurveyResponse.objects.exists()


def test_draft_surveys_are_unknown_and_closed_ones_refuse_newcomers(client, study, survey):
    services.survey_close(survey=survey)
    assert enter(client, survey, pid="NEW1").status_code == 410
    assert not Participant.objects.filter(prolific_pid="NEW1").exists()
    survey.status = "draft"
    survey.save()
    assert enter(client, survey).status_code == 404
    assert client.get("/s/not-a-token/").status_code == 404


def test_participants_who_started_may_finish_after_the_survey_closes(client, survey):
    run_to_questions(client, survey, pid="LATE1")
    services.survey_close(survey=survey)
    assert enter(Client(), survey, pid="LATE1")["Location"] == url(
        "survey_participant_questions", survey
    )
    after = client.post(url("survey_participant_questions", survey), answers_for(survey))
    assert after["Location"] == url("survey_participant_done", survey)


def test_malformed_prolific_ids_are_refused(client, survey):
    response = client.get(url("survey_participant_enter", survey), {"PROLIFIC_PID": "<script>"})
    assert response.status_code == 400
    assert not Participant.objects.exists()


def test_survey_session_does_not_leak_into_the_statement_flow_scope(client, survey):
    from annotations.participants import token_from_session

    run_to_questions(client, survey)
    request = type("R", (), {"session": client.session})()
    assert token_from_session(request, survey.study_id) is None
    assert token_from_session(request, survey.study_id, scope=f"survey:{survey.pk}")


def test_instructions_announce_the_ratings_page_and_every_page_shows_the_steps(client, survey):
    survey.rate_principles = True
    survey.save(update_fields=["rate_principles"])
    enter(client, survey)
    client.post(url("survey_participant_consent", survey), {"agree": "1"})
    html = client.get(url("survey_participant_instructions", survey)).content.decode()
    n_questions = survey.questions.count()
    assert f"First, {n_questions} questions comparing" in html
    assert "rate each of the" in html
    assert "Step 2 of 5" in html
    assert 'aria-current="step"' in html


def test_a_partial_submit_lists_what_is_missing_at_the_top(client, survey):
    run_to_questions(client, survey)
    data = answers_for(survey)
    first = min(q.position for q in survey.questions.all())
    last = max(q.position for q in survey.questions.all())
    del data[f"q{last}"]
    response = client.post(url("survey_participant_questions", survey), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 question still needs an answer" in html
    assert f'href="#question-{last}"' in html
    assert html.index('id="error-summary"') < html.index(f'id="question-{first}"')
    assert not SurveyResponse.objects.get(survey=survey).answers.exists()
