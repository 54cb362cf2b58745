"""Researcher pages for surveys: builder, list, detail, live results, report, CSV.

Ownership goes through ``annotations.access.study_for``: a survey of a study the user
does not research is a 404, like the study itself.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotations.access import study_for
from gcai import charts
from gcai.constitutions.llm import embedded_model_of
from gcai.core.stats import MIN_N_RATINGS
from surveys import exports, selectors, services
from surveys.forms import SurveyForm
from surveys.models import Survey, SurveyStatus
from surveys.results import response_counts, survey_results_compute


def _survey(request, study_id: int, survey_id: int) -> Survey:
    study = study_for(request.user, study_id)
    survey = selectors.survey_get_for_study(study=study, survey_id=survey_id)
    if survey is None:
        raise Http404("No such survey.")
    return survey


def entry_url(request, survey: Survey) -> str:
    return request.build_absolute_uri(
        reverse("survey_participant_enter", args=[survey.entry_token])
    )


def prolific_url(request, survey: Survey) -> str:
    # Prolific substitutes the {{%...%}} placeholders with each participant's ids.
    return (
        entry_url(request, survey)
        + "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    )


@login_required
def survey_list(request, study_id: int):
    study = study_for(request.user, study_id)
    surveys = selectors.survey_list_for_study(study=study)
    return render(request, "surveys/survey_list.html", {"study": study, "surveys": surveys})


def _save_form(request, form: SurveyForm, *, study, survey: Survey | None):
    data = form.cleaned_data
    fields = {
        "title": data["title"],
        "constitution_a": data["constitution_a"],
        "constitution_b": data["constitution_b"],
        "instructions": data["instructions"],
        "consent_text": data["consent_text"],
        "questions": form.question_specs(),
        "allowed_choices": form.allowed_choices(),
        "rate_principles": data["rate_principles"],
        "ties_in_share": data["ties_in_share"],
    }
    if survey is None:
        return services.survey_create(study=study, user=request.user, **fields)
    return services.survey_update(survey=survey, **fields)


@login_required
@require_http_methods(["GET", "POST"])
def survey_create(request, study_id: int):
    study = study_for(request.user, study_id)
    constitutions = selectors.constitution_choices_for_study(study=study)
    form = SurveyForm(
        request.POST or None,
        constitutions=constitutions,
        initial={"consent_text": "", "title": f"Constitution survey ({study.name})"[:200]},
    )
    if request.method == "POST" and form.is_valid():
        try:
            survey = _save_form(request, form, study=study, survey=None)
        except services.SurveyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Survey created as a draft. Open it to accept participants.")
            return redirect("survey_detail", study_id=study.pk, survey_id=survey.pk)
    return render(
        request,
        "surveys/survey_form.html",
        {"study": study, "form": form, "has_constitutions": constitutions.count() >= 2},
    )


@login_required
@require_http_methods(["GET", "POST"])
def survey_edit(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    constitutions = selectors.constitution_choices_for_study(study=survey.study)
    form = SurveyForm(
        request.POST or None, constitutions=constitutions, initial=SurveyForm.initial_for(survey)
    )
    if request.method == "POST" and form.is_valid():
        try:
            _save_form(request, form, study=survey.study, survey=survey)
        except services.SurveyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Survey saved.")
            return redirect("survey_detail", study_id=survey.study_id, survey_id=survey.pk)
    return render(
        request,
        "surveys/survey_form.html",
        {"study": survey.study, "survey": survey, "form": form, "has_constitutions": True},
    )


@login_required
def survey_detail(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    counts = response_counts(survey=survey)
    context = {
        "study": survey.study,
        "survey": survey,
        "questions": selectors.survey_questions(survey=survey),
        "counts": counts,
        "entry_url": entry_url(request, survey),
        "prolific_url": prolific_url(request, survey),
        "choices": services.screen_sides(survey.choices()),
        "editable": survey.status == SurveyStatus.DRAFT and counts.started == 0,
        "quality_flags": services.survey_quality_flags(survey=survey)
        if survey.status != SurveyStatus.OPEN
        else [],
    }
    return render(request, "surveys/survey_detail.html", context)


@login_required
@require_POST
def survey_open(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    try:
        services.survey_open(
            survey=survey, override=request.POST.get("override") == "1", user=request.user
        )
    except (services.SurveyError, services.QualityGateError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The survey is open: participants can now take part.")
    return redirect("survey_detail", study_id=survey.study_id, survey_id=survey.pk)


@login_required
@require_POST
def survey_close(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    if request.POST.get("confirm") != "yes":
        # Closing turns away everyone still arriving from Prolific: never by one stray click.
        messages.error(request, "The survey is still open: confirm closing it first.")
        return redirect("survey_detail", study_id=survey.study_id, survey_id=survey.pk)
    try:
        services.survey_close(survey=survey)
    except services.SurveyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The survey is closed to new participants.")
    return redirect("survey_detail", study_id=survey.study_id, survey_id=survey.pk)


def _results_context(survey: Survey) -> dict:
    results = survey_results_compute(survey=survey)
    return {
        "study": survey.study,
        "survey": survey,
        "results": results,
        "share_chart": charts.share_chart(results.questions),
        "rating_chart": charts.rating_chart(
            results.ratings + list(results.constitution_ratings.values())
        )
        if results.ratings
        else None,
        "alpha": 0.05,
        "min_n": MIN_N_RATINGS,
        "embedded_model": embedded_model_of(survey.constitution_a.run, survey.constitution_b.run),
    }


@login_required
def survey_results(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    return render(request, "surveys/results.html", _results_context(survey))


@login_required
def survey_results_live(request, study_id: int, survey_id: int):
    """The results body alone, fetched by static/js/survey.js to refresh the page live."""
    survey = _survey(request, study_id, survey_id)
    return render(request, "surveys/_results_body.html", _results_context(survey))


@login_required
def survey_report(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    context = _results_context(survey)
    context["questions"] = selectors.survey_questions(survey=survey)
    context["principles_a"] = survey.constitution_a.items.order_by("position")
    context["principles_b"] = survey.constitution_b.items.order_by("position")
    return render(request, "surveys/report.html", context)


def _csv(filename: str, chunks) -> HttpResponse:
    response = HttpResponse("".join(chunks), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def survey_results_csv(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    results = survey_results_compute(survey=survey)
    chunks = exports.results_csv(survey=survey, results=results)
    return _csv(f"survey-{survey.pk}-results.csv", chunks)


@login_required
def survey_answers_csv(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    return _csv(f"survey-{survey.pk}-answers.csv", exports.answers_csv(survey=survey))


@login_required
def survey_ratings_csv(request, study_id: int, survey_id: int):
    survey = _survey(request, study_id, survey_id)
    return _csv(f"survey-{survey.pk}-ratings.csv", exports.ratings_csv(survey=survey))
