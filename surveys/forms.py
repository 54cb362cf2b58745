"""Forms for the survey builder (researchers) and the participant pages.

Participant forms use neutral field names: ``q<number>`` / ``q<number>_comment`` for
questions and ``r<number>`` for ratings, where the number is the position on the
participant's own screen. Values are screen sides (left/right/tie/both_bad) or 1..5.
"""

from __future__ import annotations

from django import forms
from django.utils.text import slugify

from surveys.models import QuestionKind, Survey
from surveys.selectors import LIKERT_LABELS, RatingItem, SurveyScreen
from surveys.services import (
    DEFAULT_ATTENTION_CHECK,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_QUESTIONS,
    SCREEN_LABELS,
    SCREEN_SIDES,
    QuestionSpec,
)

_KEY_SEPARATOR = "|"


def questions_to_text(specs: list[QuestionSpec]) -> str:
    return "\n".join(
        f"{q.key} {_KEY_SEPARATOR} {q.text}" for q in specs if q.kind == QuestionKind.COMPARE
    )


class SurveyForm(forms.Form):
    title = forms.CharField(
        max_length=200, help_text="For you only; participants never see the title."
    )
    constitution_a = forms.ModelChoiceField(queryset=None, label="Constitution A")
    constitution_b = forms.ModelChoiceField(queryset=None, label="Constitution B")
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, initial=DEFAULT_INSTRUCTIONS
    )
    consent_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Leave empty to use the study's consent text.",
    )
    questions_text = forms.CharField(
        label="Comparison questions (one per line: key | question)",
        widget=forms.Textarea(attrs={"rows": 6}),
        initial=questions_to_text(list(DEFAULT_QUESTIONS)),
    )
    attention_text = forms.CharField(
        label="Attention check (leave empty for none)",
        required=False,
        max_length=500,
        initial=DEFAULT_ATTENTION_CHECK.text,
    )
    attention_expected = forms.ChoiceField(
        label="Participants passing the check choose",
        choices=[(side, SCREEN_LABELS[side]) for side in SCREEN_SIDES],
        initial=DEFAULT_ATTENTION_CHECK.expected_answer,
    )
    allow_tie = forms.BooleanField(label="Offer “Both equally”", required=False, initial=True)
    allow_both_bad = forms.BooleanField(label="Offer “Both are bad”", required=False, initial=True)
    allow_comments = forms.BooleanField(
        label="Optional comment box under each question", required=False, initial=True
    )
    rate_principles = forms.BooleanField(
        label="Also ask for a 1\u20135 rating of every principle (both constitutions, shuffled)",
        required=False,
    )
    ties_in_share = forms.BooleanField(
        label="Count ties and “both bad” in the share\u2019s denominator",
        required=False,
        help_text="Off: share = A / (A + B). On: share = A / all answers.",
    )

    def __init__(self, *args, constitutions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["constitution_a"].queryset = constitutions
        self.fields["constitution_b"].queryset = constitutions

    @classmethod
    def initial_for(cls, survey: Survey) -> dict:
        questions = list(survey.questions.order_by("position"))
        attention = next((q for q in questions if q.kind == QuestionKind.ATTENTION), None)
        specs = [QuestionSpec(q.key, q.text, q.kind) for q in questions]
        choices = survey.choices()
        return {
            "title": survey.title,
            "constitution_a": survey.constitution_a_id,
            "constitution_b": survey.constitution_b_id,
            "instructions": survey.instructions,
            "consent_text": survey.consent_text,
            "questions_text": questions_to_text(specs),
            "attention_text": attention.text if attention else "",
            "attention_expected": attention.expected_answer if attention else "right",
            "allow_tie": "tie" in choices,
            "allow_both_bad": "both_bad" in choices,
            "allow_comments": any(q.allow_comment for q in questions),
            "rate_principles": survey.rate_principles,
            "ties_in_share": survey.ties_in_share,
        }

    def clean(self):
        data = super().clean()
        a, b = data.get("constitution_a"), data.get("constitution_b")
        if a and b and a.pk == b.pk:
            self.add_error("constitution_b", "Choose a different constitution from A.")
        return data

    def question_specs(self) -> list[QuestionSpec]:
        """Parse the questions box; keys are taken from "key | text" or made from the
        text. The attention check goes in the middle of the comparison questions."""
        data = self.cleaned_data
        comments = data.get("allow_comments", False)
        specs: list[QuestionSpec] = []
        used: set[str] = set()
        for line in (data.get("questions_text") or "").splitlines():
            line = line.strip()
            if not line:
                continue
            key, sep, text = line.partition(_KEY_SEPARATOR)
            if not sep:
                key, text = slugify(line)[:40].replace("-", "_") or "question", line
            key, text = key.strip(), text.strip()
            base, n = key, 2
            while key in used:
                key, n = f"{base}_{n}", n + 1
            used.add(key)
            specs.append(QuestionSpec(key, text, allow_comment=comments))
        attention = (data.get("attention_text") or "").strip()
        if attention:
            check = QuestionSpec(
                "attention_check" if "attention_check" not in used else "attention_check_1",
                attention,
                kind=QuestionKind.ATTENTION,
                expected_answer=data.get("attention_expected") or "right",
                allow_comment=False,
            )
            specs.insert((len(specs) + 1) // 2, check)
        return specs

    def allowed_choices(self) -> list[str]:
        data = self.cleaned_data
        return (
            ["a", "b"]
            + (["tie"] if data.get("allow_tie") else [])
            + (["both_bad"] if data.get("allow_both_bad") else [])
        )


class QuestionsForm(forms.Form):
    """The participant's questions page, built from the blinded :class:`SurveyScreen`."""

    elapsed_ms = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, screen: SurveyScreen, **kwargs):
        super().__init__(*args, **kwargs)
        options = [(o.value, o.label) for o in screen.options]
        self.rows = []
        for q in screen.questions:
            name = f"q{q.number}"
            self.fields[name] = forms.ChoiceField(
                label=q.text,
                choices=options,
                widget=forms.RadioSelect,
                error_messages={"required": "Please choose an answer."},
            )
            comment = None
            if q.allow_comment:
                comment = f"{name}_comment"
                self.fields[comment] = forms.CharField(
                    label="Comment (optional)",
                    required=False,
                    max_length=5000,
                    widget=forms.Textarea(attrs={"rows": 2}),
                )
            self.rows.append((q, name, comment))

    def bound_rows(self):
        for q, name, comment in self.rows:
            yield q, self[name], self[comment] if comment else None

    def error_rows(self) -> list[tuple[int, str, str]]:
        """(number, id of the question's box, first error) for the error summary."""
        return [
            (q.number, f"question-{q.number}", self.errors[name][0])
            for q, name, _comment in self.rows
            if name in self.errors
        ]

    def answers(self) -> dict[int, tuple[str, str]]:
        return {
            q.number: (
                self.cleaned_data[name],
                self.cleaned_data.get(comment, "") if comment else "",
            )
            for q, name, comment in self.rows
        }


class RatingsForm(forms.Form):
    """Likert ratings of the shuffled principles, keyed by their number on screen."""

    elapsed_ms = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, items: list[RatingItem], **kwargs):
        super().__init__(*args, **kwargs)
        self.items = items
        for item in items:
            self.fields[f"r{item.number}"] = forms.TypedChoiceField(
                label=item.text,
                choices=list(LIKERT_LABELS.items()),
                coerce=int,
                widget=forms.RadioSelect,
                error_messages={"required": "Please rate this principle."},
            )

    def bound_rows(self):
        for item in self.items:
            yield item, self[f"r{item.number}"]

    def error_rows(self) -> list[tuple[int, str, str]]:
        """(number, id of the principle's box, first error) for the error summary."""
        return [
            (item.number, f"rating-{item.number}", self.errors[f"r{item.number}"][0])
            for item in self.items
            if f"r{item.number}" in self.errors
        ]

    def ratings(self) -> dict[int, int]:
        return {item.number: self.cleaned_data[f"r{item.number}"] for item in self.items}


class PageForm(forms.Form):
    """Consent and instructions pages: just the time on screen."""

    elapsed_ms = forms.IntegerField(required=False, widget=forms.HiddenInput)
