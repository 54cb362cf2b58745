from django import forms

from annotations.models import Role, Study


class StudyForm(forms.ModelForm):
    value_questions_text = forms.CharField(
        label="Value questions (one per line)",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )

    class Meta:
        model = Study
        fields = [
            "name",
            "description",
            "consent_text",
            "statements_min",
            "statements_max",
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk:
            self.fields["value_questions_text"].initial = "\n".join(self.instance.value_questions)

    def clean(self):
        data = super().clean()
        lo, hi = data.get("statements_min"), data.get("statements_max")
        if lo is not None and hi is not None and lo > hi:
            self.add_error("statements_max", "Must be at least the minimum.")
        if hi is not None and hi > 20:
            self.add_error("statements_max", "At most 20 statements per participant.")
        return data

    def value_questions(self) -> list[str]:
        raw = self.cleaned_data.get("value_questions_text") or ""
        return [line.strip() for line in raw.splitlines() if line.strip()]


class InvitationForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)
    note = forms.CharField(
        max_length=100, required=False, help_text="For your records, e.g. who it is for."
    )
