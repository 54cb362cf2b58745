from django import forms

from annotations.models import VOTE_SAMPLE_MAX, Role, Study
from annotations.questionnaire import (
    MAX_OPTIONS,
    MAX_QUESTIONS,
    QuestionnaireError,
    questions_as_text,
    questions_parse,
)

# Form-only fields: the views turn them into model values.
TEXT_FIELDS = ("value_questions_text", "attribute_questions_text")


class StudyForm(forms.ModelForm):
    value_questions_text = forms.CharField(
        label="Value questions (one per line)",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=(
            "What participants are asked when they write value statements. Empty: one "
            "general question about the values AI systems should hold."
        ),
    )

    attribute_questions_text = forms.CharField(
        label="Questions about participants (optional, one per line)",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text=(
            "Asked after the statements; answers become the participant's attributes, "
            "shown only aggregated and never for groups below the minimum group size. "
            "One question per line: name | question | option; option; ... e.g. "
            "“region | Where do you live? | North; South; East; West”. Names are lowercase "
            f"letters, digits and underscores; 1 to {MAX_OPTIONS} options; at most "
            f"{MAX_QUESTIONS} questions. “Prefer not to say” is always offered. Empty: no "
            "questions."
        ),
    )

    class Meta:
        model = Study
        fields = [
            "name",
            "description",
            "consent_text",
            "statements_min",
            "statements_max",
            "vote_sample_size",
            "prolific_completion_code",
            "participation",
            "reveal_prolific_ids",
            "reason_min_length",
            "accepting_participants",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "consent_text": forms.Textarea(attrs={"rows": 4}),
            "participation": forms.RadioSelect,
        }
        help_texts = {
            "name": "For researchers; participants and annotators see it in page titles.",
            "description": "Optional notes for the research team.",
            "consent_text": (
                "Shown to every participant before they start; they must agree to take "
                "part. Surveys can override it with their own text."
            ),
            "statements_min": "Value statements a participant must write to finish.",
            "statements_max": "The most a participant may write (at most 20).",
            "prolific_completion_code": (
                "The code Prolific gave you for this study. Participants who came from "
                "Prolific are sent back with it when they finish."
            ),
            "reason_min_length": (
                "Annotators must explain every choice in at least this many characters."
            ),
            "accepting_participants": (
                "Off: the study's participant links turn everyone away, including "
                "people who already started."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vote_sample_size"].required = False
        self.fields["vote_sample_size"].widget.attrs["max"] = VOTE_SAMPLE_MAX
        if self.instance and self.instance.pk:
            self.fields["value_questions_text"].initial = "\n".join(self.instance.value_questions)
            self.fields["attribute_questions_text"].initial = questions_as_text(
                self.instance.attribute_questions
            )

    def clean(self):
        data = super().clean()
        lo, hi = data.get("statements_min"), data.get("statements_max")
        if lo is not None and hi is not None and lo > hi:
            self.add_error("statements_max", "Must be at least the minimum.")
        if hi is not None and hi > 20:
            self.add_error("statements_max", "At most 20 statements per participant.")
        votes = data.get("vote_sample_size")
        if votes is None and "vote_sample_size" not in self.errors:
            # Left empty (or posted by an older form): keep the current setting.
            data["vote_sample_size"] = self.instance.vote_sample_size
        elif votes is not None and votes > VOTE_SAMPLE_MAX:
            self.add_error(
                "vote_sample_size", f"At most {VOTE_SAMPLE_MAX} statements per participant."
            )
        return data

    def clean_attribute_questions_text(self) -> str:
        text = self.cleaned_data.get("attribute_questions_text") or ""
        try:
            self._attribute_questions = questions_parse(text)
        except QuestionnaireError as exc:
            raise forms.ValidationError(exc.message) from None
        return text

    def attribute_questions(self) -> list[dict]:
        return getattr(self, "_attribute_questions", [])

    def value_questions(self) -> list[str]:
        raw = self.cleaned_data.get("value_questions_text") or ""
        return [line.strip() for line in raw.splitlines() if line.strip()]


class InvitationForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)
    note = forms.CharField(
        max_length=100, required=False, help_text="For your records, e.g. who it is for."
    )
