"""API input and output shapes for surveys.

Researcher serializers may name constitutions; participant serializers carry only
screen positions, texts and screen sides (see surveys.api)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from gcai.constitutions.models import Constitution
from surveys.models import QuestionKind, Survey, SurveyChoice, SurveyResponse, SurveyStatus
from surveys.services import LIKERT, SCREEN_SIDES


# --- Researchers ------------------------------------------------------------------------------
class QuestionInputSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=60)
    text = serializers.CharField(max_length=2000)
    kind = serializers.ChoiceField(choices=QuestionKind.choices, default=QuestionKind.COMPARE)
    expected_answer = serializers.ChoiceField(
        choices=SCREEN_SIDES,
        required=False,
        allow_blank=True,
        default="",
        help_text="Attention checks: the screen side participants are told to pick.",
    )
    allow_comment = serializers.BooleanField(default=True)


class SurveyInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    constitution_a = serializers.PrimaryKeyRelatedField(queryset=Constitution.objects.none())
    constitution_b = serializers.PrimaryKeyRelatedField(queryset=Constitution.objects.none())
    instructions = serializers.CharField(
        required=False, allow_blank=True, default=None, help_text="Omit for the default text."
    )
    consent_text = serializers.CharField(required=False, allow_blank=True, default="")
    questions = QuestionInputSerializer(
        many=True,
        required=False,
        default=None,
        help_text="Omit for the default GCAI question set with one attention check.",
    )
    allowed_choices = serializers.ListField(
        child=serializers.ChoiceField(choices=SurveyChoice.choices), required=False, default=None
    )
    rate_principles = serializers.BooleanField(default=False)
    ties_in_share = serializers.BooleanField(default=False)

    def __init__(self, *args, study=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the study's own constitutions resolve; another study's id is "invalid pk".
        qs = Constitution.objects.filter(study=study)
        self.fields["constitution_a"].queryset = qs
        self.fields["constitution_b"].queryset = qs


class SurveyStatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[SurveyStatus.OPEN, SurveyStatus.CLOSED])
    override = serializers.BooleanField(
        default=False,
        help_text="Open although the quality check flagged principles (recorded).",
    )


class ConstitutionBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Constitution
        fields = ["id", "title", "version", "method", "run_id"]


class QuestionOutputSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    key = serializers.CharField()
    kind = serializers.CharField()
    text = serializers.CharField()
    expected_answer = serializers.CharField()
    allow_comment = serializers.BooleanField()


class SurveyOutputSerializer(serializers.ModelSerializer):
    constitution_a = ConstitutionBriefSerializer()
    constitution_b = ConstitutionBriefSerializer()
    questions = QuestionOutputSerializer(many=True)
    choices = serializers.ListField(child=serializers.CharField())
    entry_url = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Survey
        fields = [
            "id",
            "title",
            "status",
            "instructions",
            "consent_text",
            "constitution_a",
            "constitution_b",
            "choices",
            "rate_principles",
            "ties_in_share",
            "completion_code",
            "screenout_code",
            "entry_url",
            "created_at",
            "questions",
            "counts",
        ]

    def get_entry_url(self, survey: Survey) -> str:
        path = reverse("survey_participant_enter", args=[survey.entry_token])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_counts(self, survey: Survey) -> dict[str, int] | None:
        if not hasattr(survey, "n_completed"):
            return None
        return {
            "completed": survey.n_completed,
            "screened_out": survey.n_screened_out,
            "in_progress": survey.n_in_progress,
        }


class AnswerOutputSerializer(serializers.Serializer):
    question = serializers.CharField(source="question.key")
    choice = serializers.CharField(help_text="In constitution terms: a, b, tie or both_bad.")
    chose_left = serializers.BooleanField(allow_null=True)
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class RatingOutputSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="item_id", help_text="ConstitutionPrinciple id")
    rating = serializers.IntegerField()


class ResponseOutputSerializer(serializers.ModelSerializer):
    participant = serializers.CharField(source="participant.pseudonym")
    prolific_pid = serializers.CharField(
        source="participant.prolific_pid",
        required=False,
        help_text="Only when the study's “reveal Prolific ids” setting is on; otherwise "
        "the field is absent and participants appear under their pseudonym alone.",
    )
    answers = AnswerOutputSerializer(many=True)
    ratings = RatingOutputSerializer(many=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Identities leave the platform only where the researcher asked for them.
        if not self.context.get("reveal_prolific_ids", False):
            data.pop("prolific_pid", None)
        return data

    class Meta:
        model = SurveyResponse
        fields = [
            "id",
            "participant",
            "prolific_pid",
            "status",
            "a_on_left",
            "attention_passed",
            "timings",
            "principle_order",
            "started_at",
            "completed_at",
            "answers",
            "ratings",
        ]


# --- Participants (BLINDED: screen positions, texts and sides only) ----------------------------
class ParticipantEnterSerializer(serializers.Serializer):
    PROLIFIC_PID = serializers.CharField(required=False, allow_blank=True, max_length=64)
    STUDY_ID = serializers.CharField(required=False, allow_blank=True, max_length=64)
    SESSION_ID = serializers.CharField(required=False, allow_blank=True, max_length=64)


class ParticipantPageSerializer(serializers.Serializer):
    elapsed_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class ParticipantAnswerSerializer(serializers.Serializer):
    number = serializers.IntegerField(min_value=1, help_text="The question's number on screen.")
    choice = serializers.ChoiceField(choices=SCREEN_SIDES)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class ParticipantAnswersSerializer(ParticipantPageSerializer):
    answers = ParticipantAnswerSerializer(many=True)

    def validate_answers(self, value):
        numbers = [a["number"] for a in value]
        if len(numbers) != len(set(numbers)):
            raise serializers.ValidationError("Each question may be answered once.")
        return value


class ParticipantRatingSerializer(serializers.Serializer):
    number = serializers.IntegerField(min_value=1, help_text="The principle's number on screen.")
    rating = serializers.ChoiceField(choices=LIKERT)


class ParticipantRatingsSerializer(ParticipantPageSerializer):
    ratings = ParticipantRatingSerializer(many=True)


class ParticipantStateSerializer(serializers.Serializer):
    """What a participant's client needs to show the current step (documentation only)."""

    step = serializers.CharField()
    consent_text = serializers.CharField(required=False)
    instructions = serializers.CharField(required=False)
    constitutions = serializers.ListField(child=serializers.DictField(), required=False)
    questions = serializers.ListField(child=serializers.DictField(), required=False)
    choices = serializers.ListField(child=serializers.DictField(), required=False)
    principles = serializers.ListField(child=serializers.DictField(), required=False)
    scale = serializers.ListField(child=serializers.DictField(), required=False)
    redirect_url = serializers.CharField(required=False, help_text="Prolific participants only.")
    completion_code = serializers.CharField(
        required=False, help_text="Always given when finished or screened out."
    )
    message = serializers.CharField(
        required=False, help_text="Screened out: what to tell the participant."
    )
