"""REST API for surveys.

Researchers (``/api/studies/<study_id>/surveys/...``): list, create, open/close,
responses and results; ownership through ``StudyScopedAPIView`` (strangers get 404).

Participants (``/api/s/<entry_token>/...``): the same flow as the pages, for custom
front-ends. BLINDED: answers and ratings are sent and received by their number on
the participant's screen and by screen side; nothing names a method, a constitution,
an id or which side is A. JSON only (the browsable renderer would show view docs).
"""

from __future__ import annotations

from django.http import Http404
from django.middleware.csrf import get_token
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from annotations.api import StudyScopedAPIView
from annotations.browser import remember_browser
from annotations.participants import (
    ParticipantError,
    completion_redirect_url,
    participant_consent,
)
from surveys import selectors, services
from surveys.models import Survey, SurveyStatus
from surveys.results import survey_results_compute
from surveys.serializers import (
    ParticipantAnswersSerializer,
    ParticipantEnterSerializer,
    ParticipantPageSerializer,
    ParticipantRatingsSerializer,
    ParticipantStateSerializer,
    ResponseOutputSerializer,
    SurveyInputSerializer,
    SurveyOutputSerializer,
    SurveyStatusInputSerializer,
)
from surveys.services import QuestionSpec
from surveys.views_participant import (
    enter_survey,
    entry_status,
    participant_from_session,
    survey_or_404,
)


# --- Researchers ------------------------------------------------------------------------------
class SurveyScopedAPIView(StudyScopedAPIView):
    def get_survey(self) -> Survey:
        survey = selectors.survey_get_for_study(
            study=self.get_study(), survey_id=self.kwargs["survey_id"]
        )
        if survey is None:
            raise Http404("No such survey.")
        return survey


class SurveyListCreateAPI(StudyScopedAPIView, generics.ListAPIView):
    serializer_class = SurveyOutputSerializer

    def get_queryset(self):
        return selectors.survey_list_for_study(study=self.get_study()).prefetch_related("questions")

    @extend_schema(request=SurveyInputSerializer, responses={201: SurveyOutputSerializer})
    def post(self, request, study_id: int):
        study = self.get_study()
        data = SurveyInputSerializer(data=request.data, study=study)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if fields["questions"] is not None:
            fields["questions"] = [QuestionSpec(**q) for q in fields["questions"]]
        try:
            survey = services.survey_create(study=study, user=request.user, **fields)
        except services.SurveyError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        payload = SurveyOutputSerializer(survey, context={"request": request}).data
        return Response(payload, status=status.HTTP_201_CREATED)


class SurveyDetailAPI(SurveyScopedAPIView):
    @extend_schema(responses=SurveyOutputSerializer)
    def get(self, request, study_id: int, survey_id: int):
        survey = self.get_survey()
        return Response(SurveyOutputSerializer(survey, context={"request": request}).data)


class SurveyStatusAPI(SurveyScopedAPIView):
    """Open or close a survey."""

    @extend_schema(request=SurveyStatusInputSerializer, responses=SurveyOutputSerializer)
    def post(self, request, study_id: int, survey_id: int):
        survey = self.get_survey()
        data = SurveyStatusInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            if data.validated_data["status"] == SurveyStatus.OPEN:
                services.survey_open(
                    survey=survey, override=data.validated_data["override"], user=request.user
                )
            else:
                services.survey_close(survey=survey)
        except services.QualityGateError as exc:
            return Response(
                {"detail": str(exc), "flags": exc.flags}, status=status.HTTP_400_BAD_REQUEST
            )
        except services.SurveyError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SurveyOutputSerializer(survey, context={"request": request}).data)


class SurveyResponsesAPI(SurveyScopedAPIView, generics.ListAPIView):
    """Every response with its answers (in constitution terms) and ratings, under the
    participant's pseudonym; ``prolific_pid`` only when the study reveals Prolific ids."""

    serializer_class = ResponseOutputSerializer

    def get_queryset(self):
        return selectors.response_list_for_survey(survey=self.get_survey())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["reveal_prolific_ids"] = self.get_study().reveal_prolific_ids
        return context


class SurveyResultsAPI(SurveyScopedAPIView):
    """All result numbers, computed live."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, study_id: int, survey_id: int):
        survey = self.get_survey()
        payload = survey_results_compute(survey=survey).to_dict()
        payload["constitution_a"] = {
            "id": survey.constitution_a_id,
            "title": survey.constitution_a.title,
        }
        payload["constitution_b"] = {
            "id": survey.constitution_b_id,
            "title": survey.constitution_b.title,
        }
        return Response(payload)


# --- Participants (BLINDED) -----------------------------------------------------------------
class ParticipantCSRF(BasePermission):
    """Participants are anonymous, known by their session cookie; CSRF is still checked
    on writes so another site cannot answer on a participant's behalf. (DRF skips CSRF
    for unauthenticated requests, hence this explicit check.)"""

    def has_permission(self, request, view) -> bool:
        if request.method not in SAFE_METHODS:
            SessionAuthentication().enforce_csrf(request)
        return True


class ParticipantAPIView(APIView):
    authentication_classes: list = []
    permission_classes = [ParticipantCSRF]
    renderer_classes = [JSONRenderer]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "participant"


SCREENED_OUT_MESSAGE = (
    "An attention check asked for a specific answer and yours was different, so the "
    "survey has ended here. Please return to Prolific with this code."
)


def participant_state(request, survey: Survey) -> dict:
    """The participant's current step and exactly what that step shows."""
    participant = participant_from_session(request, survey)
    if participant is None:
        return {"step": "enter"}
    response = selectors.response_for_participant(survey=survey, participant=participant)
    step = selectors.response_step(survey=survey, response=response)
    state: dict = {"step": step}
    if step == selectors.STEP_CONSENT:
        state["consent_text"] = survey.consent_text or survey.study.consent_text
    elif step == selectors.STEP_INSTRUCTIONS:
        state["instructions"] = survey.instructions
    elif step == selectors.STEP_QUESTIONS:
        screen = selectors.survey_screen(survey=survey, response=response)
        state["constitutions"] = [
            {"label": c.label, "principles": c.principles} for c in screen.constitutions
        ]
        state["questions"] = [
            {"number": q.number, "text": q.text, "allow_comment": q.allow_comment}
            for q in screen.questions
        ]
        state["choices"] = [{"value": o.value, "label": o.label} for o in screen.options]
    elif step == selectors.STEP_RATINGS:
        state["principles"] = [
            {"number": i.number, "text": i.text} for i in selectors.rating_items(response=response)
        ]
        state["scale"] = [{"value": v, "label": lbl} for v, lbl in selectors.LIKERT_LABELS.items()]
    elif step in (selectors.STEP_DONE, selectors.STEP_SCREENED_OUT):
        code = survey.completion_code if step == selectors.STEP_DONE else survey.screenout_code
        state["completion_code"] = code
        if participant.prolific_pid:
            state["redirect_url"] = completion_redirect_url(code)
        if step == selectors.STEP_SCREENED_OUT:
            state["message"] = SCREENED_OUT_MESSAGE
    return state


def _refused(message: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"detail": message}, status=code)


class ParticipantStateAPI(ParticipantAPIView):
    """The current step of the survey for the participant in this session."""

    @extend_schema(responses=ParticipantStateSerializer)
    def get(self, request, entry_token: str):
        survey = survey_or_404(entry_token)
        # A client needs the CSRF cookie before its first write.
        get_token(request._request)
        return Response(participant_state(request, survey))


class ParticipantEnterAPI(ParticipantAPIView):
    """Enter (or resume) the survey, with the Prolific parameters if any."""

    @extend_schema(request=ParticipantEnterSerializer, responses=ParticipantStateSerializer)
    def post(self, request, entry_token: str):
        survey = survey_or_404(entry_token)
        data = ParticipantEnterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            enter_survey(
                request._request,
                survey,
                prolific_pid=data.validated_data.get("PROLIFIC_PID"),
                prolific_study_id=data.validated_data.get("STUDY_ID"),
                prolific_session_id=data.validated_data.get("SESSION_ID"),
            )
        except ParticipantError as exc:
            return _refused(str(exc), entry_status(exc))
        return remember_browser(request._request, Response(participant_state(request, survey)))


class _ParticipantStepAPI(ParticipantAPIView):
    step = ""
    input_serializer = ParticipantPageSerializer

    def post(self, request, entry_token: str):
        survey = survey_or_404(entry_token)
        participant = participant_from_session(request, survey)
        if participant is None:
            return _refused("Enter the survey first.", status.HTTP_409_CONFLICT)
        response = selectors.response_for_participant(survey=survey, participant=participant)
        if selectors.response_step(survey=survey, response=response) != self.step:
            return Response(
                {"detail": "Not the current step.", **participant_state(request, survey)},
                status=status.HTTP_409_CONFLICT,
            )
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            self.perform(survey, participant, response, data.validated_data)
        except services.SurveyError as exc:
            return _refused(str(exc))
        return Response(participant_state(request, survey))

    def perform(self, survey, participant, response, data) -> None:  # pragma: no cover
        raise NotImplementedError


class ParticipantConsentAPI(_ParticipantStepAPI):
    """Consent to take part; the participant's screen order is fixed now."""

    step = selectors.STEP_CONSENT

    @extend_schema(request=ParticipantPageSerializer, responses=ParticipantStateSerializer)
    def post(self, request, entry_token: str):
        return super().post(request, entry_token)

    def perform(self, survey, participant, response, data) -> None:
        participant_consent(participant=participant)
        services.response_start(
            survey=survey, participant=participant, consent_ms=data.get("elapsed_ms")
        )


class ParticipantInstructionsAPI(_ParticipantStepAPI):
    """Acknowledge the instructions."""

    step = selectors.STEP_INSTRUCTIONS

    @extend_schema(request=ParticipantPageSerializer, responses=ParticipantStateSerializer)
    def post(self, request, entry_token: str):
        return super().post(request, entry_token)

    def perform(self, survey, participant, response, data) -> None:
        services.instructions_acknowledge(response=response, elapsed_ms=data.get("elapsed_ms"))


class ParticipantAnswersAPI(_ParticipantStepAPI):
    """Answer every question at once, by question number and screen side."""

    step = selectors.STEP_QUESTIONS
    input_serializer = ParticipantAnswersSerializer

    @extend_schema(request=ParticipantAnswersSerializer, responses=ParticipantStateSerializer)
    def post(self, request, entry_token: str):
        return super().post(request, entry_token)

    def perform(self, survey, participant, response, data) -> None:
        answers = {a["number"]: (a["choice"], a["comment"]) for a in data["answers"]}
        services.answers_submit(
            response=response, answers=answers, elapsed_ms=data.get("elapsed_ms")
        )


class ParticipantRatingsAPI(_ParticipantStepAPI):
    """Rate every principle, by its number on screen."""

    step = selectors.STEP_RATINGS
    input_serializer = ParticipantRatingsSerializer

    @extend_schema(request=ParticipantRatingsSerializer, responses=ParticipantStateSerializer)
    def post(self, request, entry_token: str):
        return super().post(request, entry_token)

    def perform(self, survey, participant, response, data) -> None:
        ratings = {r["number"]: r["rating"] for r in data["ratings"]}
        services.ratings_submit(
            response=response, ratings=ratings, elapsed_ms=data.get("elapsed_ms")
        )
