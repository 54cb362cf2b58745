"""Blinding covers every text a participant reads, after Unicode folding, and those
texts cannot change while a survey is open."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Study
from gcai.constitutions.models import Method
from surveys import blinding, services
from surveys.models import SurveyStatus
from tests.factories import UserFactory
from tests.surveys.factories import published_constitution

pytestmark = pytest.mark.django_db

CYRILLIC_ES = "\u0421"  # looks exactly like a Latin C
WORDS = ["Grounded v1", "gcai", "icai"]


@pytest.mark.parametrize(
    "text",
    [
        f"We compare G{CYRILLIC_ES}AI with another method.",  # Cyrillic Es
        "We compare \uff27\uff23\uff21\uff29 here.",  # fullwidth letters
        "We compare G\u200bCAI here.",  # zero-width space inside
        "We compare g\u0441ai here.",  # Cyrillic small es
        "\u0406CAI is the baseline.",  # Cyrillic capital I (Byelorussian-Ukrainian)
        "Is GROUNDED V1 better?",
    ],
)
def test_lookalike_spellings_of_a_forbidden_word_are_caught(text):
    assert blinding.unblinding_word(text, WORDS) is not None


@pytest.mark.parametrize(
    "text",
    ["A logical, magical and musical answer.", "Vicarious pleasure", "Constitution 1 or 2?"],
)
def test_ordinary_words_containing_the_letters_pass(text):
    assert blinding.unblinding_word(text, WORDS) is None


def _pair(study):
    a = published_constitution(study=study, method=Method.GCAI, title="Grounded v1")
    b = published_constitution(study=study, method=Method.ICAI, title="Baseline v1")
    return a, b


def test_a_homoglyph_in_the_surveys_own_texts_is_refused(study):
    a, b = _pair(study)
    with pytest.raises(services.SurveyError, match="consent text mentions"):
        services.survey_create(
            study=study,
            title="S",
            constitution_a=a,
            constitution_b=b,
            consent_text=f"This study compares G{CYRILLIC_ES}AI and another method.",
        )
    with pytest.raises(services.SurveyError, match="Question 'q'"):
        services.survey_create(
            study=study,
            title="S",
            constitution_a=a,
            constitution_b=b,
            questions=[services.QuestionSpec("q", f"Do you prefer I{CYRILLIC_ES}AI?")],
        )


def test_the_study_consent_text_a_survey_falls_back_to_is_checked(study):
    a, b = _pair(study)
    study.consent_text = "You will compare a GCAI constitution with a baseline."
    study.save()
    with pytest.raises(services.SurveyError, match="study consent text"):
        services.survey_create(study=study, title="S", constitution_a=a, constitution_b=b)
    # Its own consent text replaces the study's, so the survey may be created.
    survey = services.survey_create(
        study=study, title="S", constitution_a=a, constitution_b=b, consent_text="You may stop."
    )
    assert survey.consent_text == "You may stop."


def test_opening_rechecks_the_study_consent_text_changed_after_writing(study):
    a, b = _pair(study)
    survey = services.survey_create(study=study, title="S", constitution_a=a, constitution_b=b)
    Study.objects.filter(pk=study.pk).update(consent_text="Compare Baseline v1 with another.")
    survey.study.refresh_from_db()
    with pytest.raises(services.SurveyError, match="Baseline v1"):
        services.survey_open(survey=survey)
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.DRAFT


def test_a_principle_naming_a_method_is_refused(study):
    a = published_constitution(
        study=study, title="Alpha run", texts=["Behave like ICAI says.", "Be honest."]
    )
    b = published_constitution(study=study, method=Method.ICAI, title="Beta run")
    with pytest.raises(services.SurveyError, match="Principle 1"):
        services.survey_create(study=study, title="S", constitution_a=a, constitution_b=b)


def _edit_data(study, **changes):
    data = {
        "name": study.name,
        "description": study.description,
        "consent_text": study.consent_text,
        "statements_min": study.statements_min,
        "statements_max": study.statements_max,
        "prolific_completion_code": study.prolific_completion_code,
        "participation": study.participation,
        "reason_min_length": study.reason_min_length,
        "accepting_participants": "on",
        "value_questions_text": "",
    }
    data.update(changes)
    return data


def test_the_study_consent_text_is_locked_while_a_survey_shows_it(owner_client, study):
    a, b = _pair(study)
    survey = services.survey_create(study=study, title="S", constitution_a=a, constitution_b=b)
    services.survey_open(survey=survey)
    original = study.consent_text
    edit = reverse("study_edit", args=[study.pk])
    response = owner_client.post(edit, _edit_data(study, consent_text="A new consent text."))
    assert response.status_code == 200
    assert "close the survey before changing it" in response.content.decode()
    study.refresh_from_db()
    assert study.consent_text == original
    # Other settings still change while the survey is open.
    response = owner_client.post(edit, _edit_data(study, description="New description"))
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.description == "New description"
    # Once the survey is closed, the text may change.
    services.survey_close(survey=survey)
    response = owner_client.post(edit, _edit_data(study, consent_text="A new consent text."))
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.consent_text == "A new consent text."


def test_the_admin_cannot_change_texts_participants_see_once_a_survey_is_open(client, study):
    a, b = _pair(study)
    survey = services.survey_create(study=study, title="S", constitution_a=a, constitution_b=b)
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    survey_page = reverse("admin:surveys_survey_change", args=[survey.pk])
    study_page = reverse("admin:annotations_study_change", args=[study.pk])
    assert 'name="instructions"' in client.get(survey_page).content.decode()
    assert 'name="consent_text"' in client.get(study_page).content.decode()
    services.survey_open(survey=survey)
    page = client.get(survey_page).content.decode()
    assert 'name="instructions"' not in page
    assert 'name="questions-0-text"' not in page
    # The study's consent text is what this survey shows: locked too.
    assert 'name="consent_text"' not in client.get(study_page).content.decode()
