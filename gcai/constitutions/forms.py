"""Forms for starting runs and editing constitutions.

The run forms check types and ranges; everything else (method settings, whether the
study has training pairs) is validated by the engine, whose ``ValueError`` names the
setting first (``"num_clusters: must be ..."``). :meth:`RunSettingsForm.add_engine_error`
puts such a message next to the field the researcher filled in.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from annotations.models import Study
from gcai.constitutions.models import Method
from gcai.jobs.stages import DEFAULT_BATCH_SIZE

REPRESENTATIVE_CHOICES = [
    ("", "Method default"),
    ("random", "Random member (ICAI baseline)"),
    ("centroid", "Closest to the cluster centre (improved ICAI)"),
    ("summary", "LLM summary of the members (GCAI default)"),
]
ICAI_METHODS = [(m.value, m.label) for m in Method if m != Method.GCAI]

# Engine setting -> the form field a researcher sets it with.
FIELD_FOR_SETTING = {
    "method": "method",
    "seed": "seed",
    "batch_size": "batch_size",
    "max_training_pairs": "max_training_pairs",
    "dataset_ids": "datasets",
    "num_clusters": "num_clusters",
    "contextual_clusters": "num_clusters",
    "general_clusters": "num_clusters",
    "representative": "representative",
    "contextual_representative": "representative",
    "general_representative": "representative",
    "max_principles": "max_principles",
    "vote_seeds": "vote_seeds",
    "contextual_share": "contextual_share",
    "icai_method": "icai_method",
}


class RunSettingsForm(forms.Form):
    """Settings shared by a single run and a GCAI + ICAI comparison."""

    seed = forms.IntegerField(
        min_value=0, initial=0, help_text="Same seed, data and cached answers: same result."
    )
    batch_size = forms.IntegerField(
        min_value=1,
        max_value=1000,
        initial=DEFAULT_BATCH_SIZE,
        help_text="Items per parallel task.",
    )
    max_training_pairs = forms.IntegerField(
        min_value=1,
        required=False,
        label="Max training pairs",
        help_text="Empty: every training pair (a seeded sample otherwise).",
    )
    datasets = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every dataset of the study.",
    )
    num_clusters = forms.IntegerField(
        min_value=1,
        required=False,
        label="Number of clusters",
        help_text="ICAI: default scales with the data. GCAI: per stream, default 10.",
    )
    max_principles = forms.IntegerField(
        min_value=1, required=False, label="Principles cap", help_text="Default 10."
    )
    vote_seeds = forms.IntegerField(
        min_value=1,
        required=False,
        label="Voting rounds",
        help_text="Rounds per pair with different orders. Default 3.",
    )
    publish = forms.BooleanField(
        required=False, label="Publish the constitution when the run succeeds"
    )

    def __init__(self, *args: Any, study: Study, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.study = study
        self.fields["datasets"].queryset = study.datasets.order_by("name")
        self._from_fields: set[str] = set()
        self._advanced: dict[str, Any] = {}

    # Overridden by the single-run form, which has an advanced-settings field.
    def advanced_settings(self) -> dict[str, Any]:
        return {}

    def method_config(self, method: str) -> dict[str, Any]:
        """Engine settings for ``method`` from the filled-in fields.

        Fields win over the same setting in the advanced JSON: a visible field is what
        the researcher last looked at.
        """
        config = dict(self.advanced_settings())
        data = self.cleaned_data
        chosen: dict[str, Any] = {}
        if data.get("num_clusters"):
            keys = ["contextual_clusters", "general_clusters"] if method == Method.GCAI else []
            for key in keys or ["num_clusters"]:
                chosen[key] = data["num_clusters"]
        if data.get("representative"):
            keys = (
                ["contextual_representative", "general_representative"]
                if method == Method.GCAI
                else ["representative"]
            )
            for key in keys:
                chosen[key] = data["representative"]
        if data.get("max_principles"):
            chosen["max_principles"] = data["max_principles"]
        if data.get("vote_seeds"):
            chosen["vote_seeds"] = data["vote_seeds"]
        if method == Method.GCAI and data.get("contextual_share") is not None:
            chosen["contextual_share"] = data["contextual_share"]
        self._from_fields |= set(chosen)
        config.update(chosen)
        return config

    def common_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "seed": data["seed"],
            "batch_size": data["batch_size"],
            "max_training_pairs": data.get("max_training_pairs"),
            "dataset_ids": [d.pk for d in data.get("datasets") or []],
            "publish": bool(data.get("publish")),
        }

    def add_engine_error(self, exc: ValueError) -> None:
        """Show an engine ``ValueError`` next to the field whose setting it names."""
        message = str(exc)
        name, sep, rest = message.partition(": ")
        target: str | None = None
        if sep and name in self._from_fields:
            target = FIELD_FOR_SETTING.get(name)
        elif sep and name in self._advanced and "advanced" in self.fields:
            target = "advanced"
        elif sep and name in FIELD_FOR_SETTING:
            target = FIELD_FOR_SETTING[name]
        if target is not None and target in self.fields:
            self.add_error(target, rest)
        else:
            self.add_error(None, message)


class RunForm(RunSettingsForm):
    """Start one run of one method."""

    field_order = [
        "method",
        "title",
        "seed",
        "batch_size",
        "max_training_pairs",
        "datasets",
        "num_clusters",
        "max_principles",
        "representative",
        "vote_seeds",
        "contextual_share",
        "advanced",
        "publish",
    ]

    method = forms.ChoiceField(
        choices=Method.choices,
        initial=Method.GCAI,
        help_text="A preset named after its publication; settings and sources on the "
        "methods page. Settings below are recorded as deviations from it.",
    )
    title = forms.CharField(max_length=200, required=False, help_text="Optional.")
    representative = forms.ChoiceField(
        choices=REPRESENTATIVE_CHOICES,
        required=False,
        label="Cluster representative",
    )
    contextual_share = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        label="Contextual share (GCAI)",
        help_text="Share of the cap for principles from preferences + reasons. Default 0.5.",
    )
    advanced = forms.CharField(
        required=False,
        label="Other method settings (JSON object)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text='For example {"min_support": 0.05, "aggregation": "unanimous"}.',
    )

    def clean_advanced(self) -> str:
        raw = self.cleaned_data.get("advanced", "").strip()
        if not raw:
            self._advanced = {}
            return ""
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give a JSON object of setting names and values.")
        self._advanced = value
        return raw

    def advanced_settings(self) -> dict[str, Any]:
        return dict(self._advanced)

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``runs.run_create``."""
        method = self.cleaned_data["method"]
        return {
            "method": method,
            "title": self.cleaned_data.get("title", ""),
            "method_config": self.method_config(method),
            **self.common_kwargs(),
        }


class ComparisonForm(RunSettingsForm):
    """Build GCAI and an ICAI baseline together on the same training pairs."""

    # Both run forms sit on one page: the prefix keeps their field ids distinct.
    prefix = "cmp"
    field_order = [
        "icai_method",
        "seed",
        "batch_size",
        "max_training_pairs",
        "datasets",
        "num_clusters",
        "max_principles",
        "vote_seeds",
        "publish",
    ]

    icai_method = forms.ChoiceField(
        choices=ICAI_METHODS, initial=Method.ICAI, label="Baseline method"
    )

    def comparison_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``runs.runs_create_comparison``."""
        icai_method = self.cleaned_data["icai_method"]
        return {
            "icai_method": icai_method,
            "gcai_config": self.method_config(Method.GCAI),
            "icai_config": self.method_config(icai_method),
            **self.common_kwargs(),
        }


class ConstitutionItemForm(forms.Form):
    principle = forms.IntegerField(widget=forms.HiddenInput)
    text = forms.CharField(
        max_length=1000, widget=forms.Textarea(attrs={"rows": 2}), label="Wording"
    )
    position = forms.IntegerField(
        min_value=1,
        label="Position",
        widget=forms.NumberInput(attrs={"class": "position-input"}),
    )
    keep = forms.BooleanField(required=False, initial=True, label="Keep")


ConstitutionItemFormSet = forms.formset_factory(ConstitutionItemForm, extra=0)


class ConstitutionEditForm(forms.Form):
    title = forms.CharField(max_length=200)


def constitution_items_from_formset(formset: Any) -> list[dict[str, Any]]:
    """The kept items, ordered by the position numbers (ties keep the current order)."""
    kept = [
        (f.cleaned_data["position"], i, f.cleaned_data["principle"], f.cleaned_data["text"])
        for i, f in enumerate(formset.forms)
        if f.cleaned_data.get("keep")
    ]
    kept.sort()
    return [{"principle": pid, "text": text} for _, _, pid, text in kept]
