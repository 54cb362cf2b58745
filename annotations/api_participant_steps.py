"""Participant API for the steps after the statements: rating others' statements and the
study's questions about the participant. Same rules as the pages (views_participant_steps):
identified by the session only, CSRF, the participant rate limit, and a step can only be
answered when it is the participant's next one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from annotations import participant_steps as steps
from annotations.api_annotate import ERROR_OUTPUT, ParticipantAPIView
from annotations.bridging import VoteError, vote_progress, vote_submit
from annotations.models import Participant, Study, VoteChoice
from annotations.questionnaire import PREFER_NOT, QuestionnaireError, questionnaire_submit


def _not_now(step: str) -> Response:
    return Response(
        {
            "detail": f"This step is not open: the participant's next step is {step!r}.",
            "code": "not_this_step",
        },
        status=status.HTTP_409_CONFLICT,
    )


# --------------------------------------------------------------------------- votes


class RateStatementOutput(serializers.Serializer):
    id = serializers.IntegerField()
    question = serializers.CharField()
    text = serializers.CharField()


class ParticipantVotesOutput(serializers.Serializer):
    next_step = serializers.ChoiceField(choices=list(steps.STEPS))
    total = serializers.IntegerField(help_text="Statements in the participant's sample.")
    done = serializers.IntegerField(help_text="Statements already rated.")
    statement = RateStatementOutput(
        allow_null=True, help_text="The next statement to rate; null when none is left."
    )


class ParticipantVoteInput(serializers.Serializer):
    statement = serializers.IntegerField(min_value=1)
    vote = serializers.ChoiceField(choices=VoteChoice.values)


def _votes_payload(study: Study, participant: Participant) -> dict[str, Any]:
    step = steps.participant_step(participant=participant, study=study)
    progress = vote_progress(participant=participant)
    shown = progress.next if step == steps.VOTES else None
    return {
        "next_step": step,
        "total": progress.total,
        "done": progress.done,
        "statement": None
        if shown is None
        else {"id": shown.pk, "question": shown.question, "text": shown.text},
    }


class ParticipantVotesAPI(ParticipantAPIView):
    """Rate other participants' approved statements: agree, disagree or pass."""

    @extend_schema(responses=ParticipantVotesOutput, tags=["participate"])
    def get(self, request, entry_token: str):
        return Response(ParticipantVotesOutput(_votes_payload(self.study, self.participant)).data)

    @extend_schema(
        request=ParticipantVoteInput,
        responses={200: ParticipantVotesOutput, 400: ERROR_OUTPUT, 409: ERROR_OUTPUT},
        tags=["participate"],
    )
    def post(self, request, entry_token: str):
        step = steps.participant_step(participant=self.participant, study=self.study)
        if step != steps.VOTES:
            return _not_now(step)
        data = ParticipantVoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            vote_submit(
                participant=self.participant,
                statement_id=data.validated_data["statement"],
                vote=data.validated_data["vote"],
            )
        except VoteError as exc:
            return self.refused(exc, conflicts=("finished", "not_in_sample"))
        self.participant.refresh_from_db()
        return Response(ParticipantVotesOutput(_votes_payload(self.study, self.participant)).data)


# --------------------------------------------------------------------------- about you


class AttributeQuestionOutput(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    options = serializers.ListField(child=serializers.CharField())


class ParticipantAboutOutput(serializers.Serializer):
    next_step = serializers.ChoiceField(choices=list(steps.STEPS))
    questions = AttributeQuestionOutput(many=True)
    prefer_not = serializers.CharField(
        help_text="The answer meaning 'Prefer not to say' (always allowed; stores nothing)."
    )


class ParticipantAboutInput(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.CharField(max_length=200),
        help_text="Question key -> one of its options, or the prefer_not value.",
    )


def _about_payload(study: Study, participant: Participant) -> dict[str, Any]:
    return {
        "next_step": steps.participant_step(participant=participant, study=study),
        "questions": [
            {"key": q["key"], "label": q["label"], "options": q["options"]}
            for q in study.attribute_questions or []
        ],
        "prefer_not": PREFER_NOT,
    }


class ParticipantAboutAPI(ParticipantAPIView):
    """The study's questions about the participant (answers become attributes, shown
    only aggregated for groups of at least the study's minimum size)."""

    @extend_schema(responses=ParticipantAboutOutput, tags=["participate"])
    def get(self, request, entry_token: str):
        return Response(ParticipantAboutOutput(_about_payload(self.study, self.participant)).data)

    @extend_schema(
        request=ParticipantAboutInput,
        responses={201: ParticipantAboutOutput, 400: ERROR_OUTPUT, 409: ERROR_OUTPUT},
        tags=["participate"],
    )
    def post(self, request, entry_token: str):
        step = steps.participant_step(participant=self.participant, study=self.study)
        if step != steps.ABOUT:
            return _not_now(step)
        data = ParticipantAboutInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            questionnaire_submit(
                participant=self.participant,
                study=self.study,
                answers=data.validated_data["answers"],
            )
        except QuestionnaireError as exc:
            return self.refused(exc, conflicts=("wrong_study", "duplicate", "no_consent"))
        self.participant.refresh_from_db()
        payload = _about_payload(self.study, self.participant)
        return Response(ParticipantAboutOutput(payload).data, status=status.HTTP_201_CREATED)
