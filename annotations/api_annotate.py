"""REST API for annotators, participants and moderation.

Annotators: next pair, submit, skip, flag, progress (the pair screen uses these).
Participants (public, identified by the token kept in their session, throttled per
participant): read the study's questions and submit value statements.
Researchers: statement moderation (one or in bulk) and the study dashboard.

Serializers validate and shape; the services in ``annotations.queue`` and
``annotations.statements`` decide and save.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.http import Http404
from django.utils.safestring import mark_safe
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from annotations import dashboard, queue
from annotations.api import DatabaseIdField, StudyScopedAPIView
from annotations.importers import is_empty_response
from annotations.markdown import render_markdown, render_turns
from annotations.models import (
    Moderation,
    PairAssignment,
    Participant,
    Study,
    ValueStatement,
)
from annotations.participant_steps import STEPS, participant_step
from annotations.participants import token_from_session
from annotations.statements import (
    STATEMENT_MAX_CHARS,
    STATEMENT_MIN_CHARS,
    StatementError,
    StatementInput,
    statement_slots,
    statements_moderate,
    statements_submit,
)

# --------------------------------------------------------------------------- participants


class ParticipantThrottle(SimpleRateThrottle):
    """Per-participant rate limit (settings: REST_FRAMEWORK THROTTLE_RATES "participant").

    Keyed by the participant's token when the request carries one, else by client
    address, so one participant cannot exhaust another's allowance.
    """

    scope = "participant"

    def get_cache_key(self, request, view) -> str:
        token = getattr(request, "gcai_participant_token", None)
        ident = token or self.get_ident(request)
        digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}


def participant_request_allowed(request, *, token: str | None = None) -> bool:
    """The same limit for the participant HTML pages (which are not DRF views)."""
    request.gcai_participant_token = token
    return ParticipantThrottle().allow_request(request, None)


def _enforce_csrf(request) -> None:
    """Participants are not logged in, so DRF's session authentication would skip its CSRF
    check; the participant API enforces it itself on every unsafe request."""
    if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
        SessionAuthentication().enforce_csrf(request)


def study_for_entry(entry_token: str) -> Study:
    try:
        return Study.objects.get(entry_token=entry_token)
    except Study.DoesNotExist:
        raise Http404("Unknown study link.") from None


def participant_for_session(request, study: Study) -> Participant:
    """The participant this browser session entered ``study`` as, or PermissionDenied."""
    token = token_from_session(request, study.pk)
    if not token:
        raise PermissionDenied("Open the study link you were given first.")
    participant = Participant.objects.filter(token=token).first()
    if participant is None:
        raise PermissionDenied("Your participation link has expired; open the study link again.")
    if participant.study_id != study.pk:
        raise PermissionDenied("This participation belongs to another study; nothing was changed.")
    return participant


class HasParticipantSession(BasePermission):
    def has_permission(self, request, view) -> bool:
        _enforce_csrf(request)
        view.study = study_for_entry(view.kwargs["entry_token"])
        view.participant = participant_for_session(request, view.study)
        # Lets ParticipantThrottle key on the participant rather than the address.
        request.gcai_participant_token = view.participant.token
        return True


class StatementItemInput(serializers.Serializer):
    question = serializers.IntegerField(min_value=0, default=0)
    text = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=10000)


class StatementsSubmitInput(serializers.Serializer):
    statements = StatementItemInput(many=True)


class StatementSlotOutput(serializers.Serializer):
    number = serializers.IntegerField()
    question_index = serializers.IntegerField()
    question = serializers.CharField()
    required = serializers.BooleanField()


class ParticipantStatementOutput(serializers.ModelSerializer):
    class Meta:
        model = ValueStatement
        fields = ["id", "question", "text", "created_at"]


class ParticipantStatementsOutput(serializers.Serializer):
    study = serializers.CharField()
    questions = serializers.ListField(child=serializers.CharField())
    slots = StatementSlotOutput(many=True)
    statements_min = serializers.IntegerField()
    statements_max = serializers.IntegerField()
    min_chars = serializers.IntegerField()
    max_chars = serializers.IntegerField()
    consented = serializers.BooleanField()
    completed = serializers.BooleanField()
    next_step = serializers.ChoiceField(
        choices=list(STEPS),
        help_text="The participant's next step; 'votes' (rate others' statements) and "
        "'about' (the study's questions about them) are answered on the participant "
        "pages before the participation is complete.",
    )
    statements = ParticipantStatementOutput(many=True)


def _statements_payload(study: Study, participant: Participant) -> dict[str, Any]:
    step = participant_step(participant=participant, study=study)  # may complete them
    return {
        "study": study.name,
        "questions": study.questions(),
        "slots": statement_slots(study),
        "statements_min": study.statements_min,
        "statements_max": study.statements_max,
        "min_chars": STATEMENT_MIN_CHARS,
        "max_chars": STATEMENT_MAX_CHARS,
        "consented": participant.consented_at is not None,
        "completed": participant.completed_at is not None,
        "next_step": step,
        "statements": list(participant.statements.order_by("id")),
    }


ERROR_OUTPUT = inline_serializer(
    "ErrorOutput",
    fields={
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.CharField(), required=False),
    },
)


class ParticipantAPIView(APIView):
    """A participant API endpoint: the participant comes from the session only (never from
    an id in the request), with CSRF and the participant rate limit. Sets ``self.study``
    and ``self.participant``."""

    authentication_classes: list = []  # identified by the session, not as a user
    permission_classes = [HasParticipantSession]
    throttle_classes = [ParticipantThrottle]

    @staticmethod
    def refused(exc: Any, *, conflicts: tuple[str, ...]) -> Response:
        """A refused submission: 409 when its ``code`` is a conflict with what is stored,
        else 400. ``exc.message`` is safe to show; ``exc.errors`` (per field) when the
        error carries them."""
        body = {"detail": exc.message, "code": exc.code}
        if hasattr(exc, "errors"):
            body["errors"] = exc.errors
        code = status.HTTP_409_CONFLICT if exc.code in conflicts else status.HTTP_400_BAD_REQUEST
        return Response(body, status=code)


class ParticipantStatementsAPI(ParticipantAPIView):
    """The participant's own statements page data, and submitting statements."""

    @extend_schema(responses=ParticipantStatementsOutput, tags=["participate"])
    def get(self, request, entry_token: str):
        payload = _statements_payload(self.study, self.participant)
        return Response(ParticipantStatementsOutput(payload).data)

    @extend_schema(
        request=StatementsSubmitInput,
        responses={201: ParticipantStatementsOutput, 400: ERROR_OUTPUT, 409: ERROR_OUTPUT},
        tags=["participate"],
    )
    def post(self, request, entry_token: str):
        data = StatementsSubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        items = [StatementInput(**item) for item in data.validated_data["statements"]]
        try:
            statements_submit(participant=self.participant, study=self.study, items=items)
        except StatementError as exc:
            return self.refused(exc, conflicts=("duplicate", "no_consent", "wrong_study"))
        self.participant.refresh_from_db()
        payload = _statements_payload(self.study, self.participant)
        return Response(ParticipantStatementsOutput(payload).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------- annotators


class ProgressOutput(serializers.Serializer):
    done = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    assigned = serializers.IntegerField()
    skipped = serializers.IntegerField()
    flagged = serializers.IntegerField()
    available = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.IntegerField()


class TurnOutput(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField(allow_blank=True)
    html = serializers.CharField(allow_blank=True)


class ShownResponseOutput(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    empty = serializers.BooleanField(help_text="The response is empty (shown as such).")
    html = serializers.CharField(allow_blank=True)


class LeasedPairOutput(serializers.Serializer):
    """A pair as the annotator sees it: ``first`` and ``second`` are in screen order
    (randomised per lease); which of them is the pair's response A is not revealed.

    BLINDED: no row id, dataset name or metadata. Imported ids and dataset names often
    name the models or the source under comparison (``Mistral-7B-Instruct-v0.2-6``)."""

    pair_id = serializers.IntegerField()
    prompt = serializers.CharField(allow_blank=True)
    prompt_html = serializers.CharField(allow_blank=True)
    turns = TurnOutput(many=True)
    first = ShownResponseOutput()
    second = ShownResponseOutput()
    shown_at = serializers.DateTimeField()
    lease_expires_at = serializers.DateTimeField()
    reason_min_length = serializers.IntegerField()


class NextOutput(serializers.Serializer):
    pair = LeasedPairOutput(allow_null=True)
    progress = ProgressOutput()


EMPTY_RESPONSE_HTML = mark_safe('<p class="empty-response"><em>(empty response)</em></p>')


def shown_response(text: str) -> dict[str, Any]:
    """A response as the pair screen shows it. An empty one (a model that refused or
    failed) is a real answer to judge, so it is labelled rather than left blank."""
    empty = is_empty_response(text)
    return {
        "text": text,
        "empty": empty,
        "html": EMPTY_RESPONSE_HTML if empty else render_markdown(text),
    }


def leased_pair_payload(assignment: PairAssignment, *, study: Study) -> dict[str, Any]:
    """What the pair screen shows for a lease, in screen order."""
    pair = assignment.pair
    first, second = (
        (pair.response_b, pair.response_a)
        if assignment.shown_swapped
        else (pair.response_a, pair.response_b)
    )
    return {
        "pair_id": pair.pk,
        "prompt": pair.prompt,
        "prompt_html": render_markdown(pair.prompt),
        "turns": render_turns(pair.prompt_messages) if pair.prompt_messages else [],
        "first": shown_response(first),
        "second": shown_response(second),
        "shown_at": assignment.shown_at,
        "lease_expires_at": assignment.lease_expires_at,
        "reason_min_length": study.reason_min_length,
    }


class PairActionInput(serializers.Serializer):
    pair_id = DatabaseIdField()


class SubmitInput(PairActionInput):
    # Named for what it is: a choice in screen order, translated to a/b by the service.
    screen_choice = serializers.ChoiceField(
        choices=queue.ScreenChoice.values,
        help_text="In screen order: the first (left/top) response, the second, or a tie.",
    )
    reason = serializers.CharField(
        allow_blank=True, trim_whitespace=False, max_length=queue.REASON_MAX_LENGTH
    )


class NoteInput(PairActionInput):
    note = serializers.CharField(
        allow_blank=True, required=False, default="", max_length=queue.NOTE_MAX_LENGTH
    )


class AnnotationOutput(serializers.Serializer):
    """The saved judgement as the annotator made it: in screen order, so the reply does
    not reveal which response was the pair's A (the stored row is in a/b terms)."""

    id = serializers.IntegerField()
    pair_id = serializers.IntegerField()
    screen_choice = serializers.SerializerMethodField()
    reason = serializers.CharField()
    duration_ms = serializers.IntegerField(allow_null=True)
    submitted_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ChoiceField(choices=queue.ScreenChoice.values))
    def get_screen_choice(self, annotation) -> str:
        return queue.screen_choice_of(annotation)


class ClosedOutput(serializers.Serializer):
    pair_id = serializers.IntegerField()
    status = serializers.CharField()


def _refusal(exc: queue.QueueError) -> Response:
    code = status.HTTP_409_CONFLICT if exc.conflict else status.HTTP_400_BAD_REQUEST
    if exc.code == "not_annotator":
        code = status.HTTP_403_FORBIDDEN
    return Response({"detail": exc.message, "code": exc.code}, status=code)


class AnnotatorAPIView(StudyScopedAPIView):
    # Any member of the study gets past the 404; the queue services then refuse anyone
    # who is not an annotator (403 with a message).
    study_role = None

    def progress(self) -> dict[str, int]:
        return queue.annotation_progress(user=self.request.user, study=self.get_study()).as_dict()


class AnnotateNextAPI(AnnotatorAPIView):
    """Lease the next pair (or return the one already leased). POST: it hands out work."""

    @extend_schema(request=None, responses={200: NextOutput, 403: ERROR_OUTPUT}, tags=["annotate"])
    def post(self, request, study_id: int):
        study = self.get_study()
        try:
            assignment = queue.pair_next_for_annotator(user=request.user, study=study)
        except queue.QueueError as exc:
            return _refusal(exc)
        pair = leased_pair_payload(assignment, study=study) if assignment else None
        return Response(NextOutput({"pair": pair, "progress": self.progress()}).data)


class AnnotateSubmitAPI(AnnotatorAPIView):
    @extend_schema(
        request=SubmitInput,
        responses={201: AnnotationOutput, 400: ERROR_OUTPUT, 409: ERROR_OUTPUT},
        tags=["annotate"],
    )
    def post(self, request, study_id: int):
        data = SubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            annotation = queue.annotation_submit(
                user=request.user,
                study=self.get_study(),
                pair_id=data.validated_data["pair_id"],
                choice=data.validated_data["screen_choice"],
                reason=data.validated_data["reason"],
            )
        except queue.QueueError as exc:
            return _refusal(exc)
        # Progress is not repeated here: the client asks for the next pair, which has it.
        return Response(AnnotationOutput(annotation).data, status=status.HTTP_201_CREATED)


class AnnotateSkipAPI(AnnotatorAPIView):
    service = staticmethod(queue.assignment_skip)

    @extend_schema(
        request=NoteInput, responses={200: ClosedOutput, 409: ERROR_OUTPUT}, tags=["annotate"]
    )
    def post(self, request, study_id: int):
        data = NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            assignment = self.service(
                user=request.user, study=self.get_study(), **data.validated_data
            )
        except queue.QueueError as exc:
            return _refusal(exc)
        payload = {"pair_id": assignment.pair_id, "status": assignment.status}
        return Response(ClosedOutput(payload).data)


class AnnotateFlagAPI(AnnotateSkipAPI):
    service = staticmethod(queue.assignment_flag)


class AnnotateProgressAPI(AnnotatorAPIView):
    """Any member may ask; a researcher who does not annotate simply has nothing done."""

    @extend_schema(responses=ProgressOutput, tags=["annotate"])
    def get(self, request, study_id: int):
        return Response(ProgressOutput(self.progress()).data)


# --------------------------------------------------------------------------- moderation


class StatementOutput(serializers.ModelSerializer):
    participant = serializers.SerializerMethodField()

    class Meta:
        model = ValueStatement
        fields = [
            "id",
            "participant",
            "question",
            "text",
            "moderation",
            "moderated_at",
            "created_at",
        ]

    def get_participant(self, obj: ValueStatement) -> str:
        return obj.author_pseudonym


class ModerateBulkInput(serializers.Serializer):
    ids = serializers.ListField(child=DatabaseIdField(), allow_empty=False)
    moderation = serializers.ChoiceField(choices=Moderation.choices)


class ModerateOneInput(serializers.Serializer):
    moderation = serializers.ChoiceField(choices=Moderation.choices)


class ModeratedOutput(serializers.Serializer):
    updated = serializers.IntegerField()
    moderation = serializers.CharField()


def statement_queryset(*, study: Study, moderation: str | None):
    qs = ValueStatement.objects.filter(study=study).select_related("participant").order_by("id")
    if moderation in Moderation.values:
        qs = qs.filter(moderation=moderation)
    return qs


class StatementListAPI(StudyScopedAPIView, generics.ListAPIView):
    serializer_class = StatementOutput

    def get_queryset(self):
        return statement_queryset(
            study=self.get_study(), moderation=self.request.query_params.get("moderation")
        )

    @extend_schema(
        parameters=[OpenApiParameter("moderation", enum=Moderation.values, required=False)],
        tags=["moderation"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _moderate(request, study: Study, ids: list[int], moderation: str) -> Response:
    try:
        updated = statements_moderate(
            study=study, statement_ids=ids, moderation=moderation, user=request.user
        )
    except StatementError as exc:
        code = status.HTTP_404_NOT_FOUND if exc.code == "not_found" else 400
        return Response({"detail": exc.message, "code": exc.code}, status=code)
    return Response(ModeratedOutput({"updated": updated, "moderation": moderation}).data)


class StatementModerateBulkAPI(StudyScopedAPIView):
    @extend_schema(
        request=ModerateBulkInput,
        responses={200: ModeratedOutput, 400: ERROR_OUTPUT, 404: ERROR_OUTPUT},
        tags=["moderation"],
    )
    def post(self, request, study_id: int):
        data = ModerateBulkInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _moderate(
            request, self.get_study(), data.validated_data["ids"], data.validated_data["moderation"]
        )


class StatementModerateAPI(StudyScopedAPIView):
    @extend_schema(
        request=ModerateOneInput,
        responses={200: ModeratedOutput, 404: ERROR_OUTPUT},
        tags=["moderation"],
    )
    def patch(self, request, study_id: int, statement_id: int):
        data = ModerateOneInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _moderate(
            request, self.get_study(), [statement_id], data.validated_data["moderation"]
        )


# --------------------------------------------------------------------------- dashboard


class HistogramOutput(serializers.Serializer):
    annotations = serializers.IntegerField()
    pairs = serializers.IntegerField()


class AgreementOutput(serializers.Serializer):
    pairs = serializers.IntegerField()
    ratings = serializers.IntegerField()
    alpha = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha (nominal).")
    fleiss_kappa = serializers.FloatField(allow_null=True)
    percent_agreement = serializers.FloatField(allow_null=True)


class DatasetProgressOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    overlap = serializers.IntegerField()
    pairs = serializers.IntegerField()
    annotations = serializers.IntegerField()
    complete_pairs = serializers.IntegerField()
    percent = serializers.IntegerField()
    annotations_per_pair = HistogramOutput(many=True)
    in_progress = serializers.IntegerField()
    flagged = serializers.IntegerField()
    skipped = serializers.IntegerField()
    agreement = AgreementOutput()


class AnnotatorProgressOutput(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    pseudonym = serializers.CharField()
    done = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    skipped = serializers.IntegerField()
    flagged = serializers.IntegerField()
    median_ms = serializers.IntegerField(allow_null=True)
    median_s = serializers.FloatField(allow_null=True)


class TimingOutput(serializers.Serializer):
    median_ms = serializers.IntegerField(allow_null=True)
    median_s = serializers.FloatField(allow_null=True)
    items = serializers.IntegerField()


class StatementCountsOutput(serializers.Serializer):
    pending = serializers.IntegerField()
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()
    total = serializers.IntegerField()


class FlaggedOutput(serializers.Serializer):
    pair_id = serializers.IntegerField()
    external_id = serializers.CharField(allow_blank=True)
    dataset = serializers.CharField()
    annotator = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField(allow_null=True)


class TotalsOutput(serializers.Serializer):
    pairs = serializers.IntegerField()
    annotations = serializers.IntegerField()
    complete_pairs = serializers.IntegerField()


class DashboardOutput(serializers.Serializer):
    datasets = DatasetProgressOutput(many=True)
    annotators = AnnotatorProgressOutput(many=True)
    timing = TimingOutput()
    agreement = AgreementOutput()
    statements = StatementCountsOutput()
    flagged = FlaggedOutput(many=True)
    totals = TotalsOutput()


class StudyDashboardAPI(StudyScopedAPIView):
    @extend_schema(responses=DashboardOutput, tags=["dashboard"])
    def get(self, request, study_id: int):
        return Response(DashboardOutput(dashboard.study_dashboard(study=self.get_study())).data)
