"""Forms for the training-data export and the steering evaluation pages."""

from __future__ import annotations

from typing import Any

from django import forms

from annotations.models import Dataset, Split, Study
from gcai.constitutions.models import Constitution, Evaluation
from gcai.core.training_data import (
    DEFAULT_HEADER,
    GENERATION_FORM,
    KINDS,
    PLACEMENTS,
    SELECTION_FORM,
    STYLES,
)
from gcai.jobs.models import JobStatus
from gcai.modeling.models import SteeringKind
from gcai.modeling.services import DEFAULT_BATCH_SIZE

KIND_LABELS = {
    "dpo": "Preference pairs: DPO / ORPO (prompt, chosen, rejected)",
    "kto": "Unpaired preferences: KTO (prompt, completion, label)",
    "sft": "Supervised fine-tuning: SFT (the chosen response)",
}
STYLE_LABELS = {
    "conversational": "Conversational (lists of role/content messages)",
    "standard": "Standard (plain strings)",
}
PLACEMENT_LABELS = {
    "user": "In the user turn (recommended for small models)",
    "system": "In the system turn",
    "none": "Nowhere (no conditioning)",
}


class ExportForm(forms.Form):
    """Read from the query string, so a download link carries the same settings."""

    kind = forms.ChoiceField(choices=[(k, KIND_LABELS[k]) for k in KINDS], initial="dpo")
    style = forms.ChoiceField(
        choices=[(s, STYLE_LABELS[s]) for s in STYLES], initial="conversational"
    )
    placement = forms.ChoiceField(
        choices=[(p, PLACEMENT_LABELS[p]) for p in PLACEMENTS], initial="user"
    )
    reword = forms.BooleanField(
        required=False, initial=True, label="Reword each principle from selection form"
    )
    reword_from = forms.CharField(initial=SELECTION_FORM, max_length=300, required=False)
    reword_to = forms.CharField(initial=GENERATION_FORM, max_length=300, required=False)
    header = forms.CharField(initial=DEFAULT_HEADER, max_length=500, required=False)
    relevant_only = forms.BooleanField(
        required=False,
        label="Only the principles relevant to each pair",
        help_text="From each principle's evidence and, if chosen, an evaluation's "
        "per-principle votes; pairs with none keep the whole constitution.",
    )
    evaluation = forms.ModelChoiceField(
        queryset=Evaluation.objects.none(), required=False, empty_label="(none)"
    )
    datasets = forms.ModelMultipleChoiceField(
        queryset=Dataset.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every dataset of the study.",
    )

    def __init__(self, *args: Any, constitution: Constitution, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["evaluation"].queryset = Evaluation.objects.filter(
            constitution=constitution, status=JobStatus.SUCCEEDED
        ).order_by("-created_at")
        self.fields["datasets"].queryset = Dataset.objects.filter(
            study_id=constitution.study_id
        ).order_by("pk")

    def settings_dict(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        # A link that leaves out a wording field means its default, not an empty one.
        for name in ("reword_from", "reword_to", "header"):
            if name not in self.data:
                data[name] = self.fields[name].initial
        return {
            "kind": data["kind"],
            "style": data["style"],
            "placement": data["placement"],
            "reword": data["reword"],
            "reword_from": data["reword_from"],
            "reword_to": data["reword_to"],
            "header": data["header"],
            "relevant_only": data["relevant_only"],
        }


class SteeringForm(forms.Form):
    kind = forms.ChoiceField(choices=SteeringKind.choices, initial=SteeringKind.STEERING)
    constitution = forms.ModelChoiceField(queryset=Constitution.objects.none())
    constitution_b = forms.ModelChoiceField(
        queryset=Constitution.objects.none(),
        required=False,
        label="Second constitution (optional)",
        help_text="E.g. the ICAI constitution built on the same data: GCAI vs ICAI.",
    )
    prompts_file = forms.FileField(
        required=False,
        help_text="JSON lines or a JSON list (a 'prompt' or 'instruction' field), CSV with a "
        "'prompt' column, or text with one prompt per line. Empty: the study's prompts.",
    )
    split = forms.ChoiceField(
        choices=[(Split.TEST, "Test"), (Split.TRAIN, "Train"), (Split.UNASSIGNED, "Unassigned")],
        initial=Split.TEST,
        label="Study prompts from split",
    )
    limit = forms.IntegerField(required=False, min_value=1, initial=50, label="At most N prompts")
    target_backend = forms.ChoiceField(
        choices=[("openai", "OpenAI-compatible endpoint"), ("local", "Embedded local model")],
        initial="openai",
    )
    target_base_url = forms.CharField(required=False, max_length=500, label="Base URL")
    target_model = forms.CharField(required=False, max_length=200, label="Model name")
    target_api_key_env = forms.CharField(
        initial="OPENAI_API_KEY",
        max_length=100,
        label="API key environment variable",
        help_text="The NAME of a variable in the workers' environment; keys are never stored.",
    )
    placement = forms.ChoiceField(
        choices=[("user", PLACEMENT_LABELS["user"]), ("system", PLACEMENT_LABELS["system"])],
        initial="user",
    )
    reword = forms.BooleanField(required=False, initial=True, label="Reword to generation form")
    max_tokens = forms.IntegerField(initial=512, min_value=1, max_value=32768)
    seed = forms.IntegerField(initial=0)
    batch_size = forms.IntegerField(initial=DEFAULT_BATCH_SIZE, min_value=1, max_value=1000)

    def __init__(self, *args: Any, study: Study, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        constitutions = Constitution.objects.filter(study=study).order_by("title", "-version")
        self.fields["constitution"].queryset = constitutions
        self.fields["constitution_b"].queryset = constitutions

    def target(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "backend": data["target_backend"],
            "base_url": data["target_base_url"],
            "model": data["target_model"],
            "api_key_env": data["target_api_key_env"],
        }
