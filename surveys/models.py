"""Blinded pairwise surveys: participants compare two constitutions.

Participants only ever see "Constitution 1" and "Constitution 2"; which one is A is
stored per response (``a_on_left``) and answers are stored in constitution terms
(a = ``constitution_a``), never in screen terms.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotations.models import Participant, Study, new_completion_code, new_token
from gcai.constitutions.models import Constitution, ConstitutionPrinciple


class SurveyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class SurveyChoice(models.TextChoices):
    A = "a", "Constitution A"
    B = "b", "Constitution B"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Survey(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="surveys")
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    consent_text = models.TextField(blank=True)
    constitution_a = models.ForeignKey(Constitution, on_delete=models.PROTECT, related_name="+")
    constitution_b = models.ForeignKey(Constitution, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=10, choices=SurveyStatus.choices, default=SurveyStatus.DRAFT
    )
    allowed_choices = models.JSONField(default=list, blank=True)  # subset of SurveyChoice values
    rate_principles = models.BooleanField(default=False)
    # Public entry token: what appears in the participant link instead of any id.
    entry_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    completion_code = models.CharField(max_length=64, default=new_completion_code)
    screenout_code = models.CharField(max_length=64, default=new_completion_code)
    ties_in_share = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Set when it was opened although the quality gate flagged principles of A or B: the
    # flags, who confirmed and when (see gcai.constitutions.quality).
    quality_override = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(constitution_a=models.F("constitution_b")),
                name="survey_two_constitutions",
            ),
            models.CheckConstraint(
                condition=Q(status__in=SurveyStatus.values), name="survey_valid_status"
            ),
            models.CheckConstraint(
                condition=~Q(completion_code=models.F("screenout_code")), name="survey_codes_differ"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def choices(self) -> list[str]:
        return list(self.allowed_choices) or [c.value for c in SurveyChoice]


class QuestionKind(models.TextChoices):
    COMPARE = "compare", "Compare the two constitutions"
    ATTENTION = "attention", "Attention check (instructed item)"


class SurveyQuestion(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveIntegerField()
    kind = models.CharField(
        max_length=12, choices=QuestionKind.choices, default=QuestionKind.COMPARE
    )
    key = models.SlugField(
        max_length=60, help_text="Short stable name used in exports, e.g. moral_grounding"
    )
    text = models.TextField()
    # Attention checks: the screen-side answer the participant is told to give
    # ("left" = Constitution 1, "right" = Constitution 2, "tie", "both_bad").
    expected_answer = models.CharField(max_length=12, blank=True)
    allow_comment = models.BooleanField(default=True)

    class Meta:
        ordering = ["survey", "position"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "position"], name="question_unique_position"),
            models.UniqueConstraint(fields=["survey", "key"], name="question_unique_key"),
            models.CheckConstraint(
                condition=Q(kind__in=QuestionKind.values), name="question_valid_kind"
            ),
            models.CheckConstraint(
                condition=~Q(kind="attention") | ~Q(expected_answer=""),
                name="question_attention_has_expected_answer",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class ResponseStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    SCREENED_OUT = "screened_out", "Screened out (failed attention check)"


class SurveyResponse(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="survey_responses"
    )
    a_on_left = models.BooleanField()
    status = models.CharField(
        max_length=14, choices=ResponseStatus.choices, default=ResponseStatus.IN_PROGRESS
    )
    attention_passed = models.BooleanField(null=True)
    # Per page: {"consent": ms, "questions": ms, ...}
    timings = models.JSONField(default=dict, blank=True)
    principle_order = models.JSONField(default=list, blank=True)  # ConstitutionPrinciple ids shown
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "participant"], name="response_one_per_participant"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ResponseStatus.values), name="response_valid_status"
            ),
        ]

    def __str__(self) -> str:
        return f"Response {self.pk} to {self.survey_id}"


class Answer(models.Model):
    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(SurveyQuestion, on_delete=models.CASCADE, related_name="answers")
    choice = models.CharField(max_length=10, choices=SurveyChoice.choices)
    chose_left = models.BooleanField(
        null=True, help_text="Screen side of a decisive choice (bias test)"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response", "question"], name="answer_one_per_question"
            ),
            models.CheckConstraint(
                condition=Q(choice__in=SurveyChoice.values), name="answer_valid_choice"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.question_id}: {self.choice}"


class PrincipleRating(models.Model):
    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="ratings")
    item = models.ForeignKey(ConstitutionPrinciple, on_delete=models.CASCADE, related_name="+")
    rating = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "item"], name="rating_one_per_principle"),
            models.CheckConstraint(
                condition=Q(rating__gte=1, rating__lte=5), name="rating_likert_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.rating}"
