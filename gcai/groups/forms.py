from __future__ import annotations

from django import forms

from gcai.constitutions.models import Method


class GroupComparisonForm(forms.Form):
    attribute = forms.ChoiceField(label="Split people by")
    methods = forms.MultipleChoiceField(
        choices=[(Method.GCAI, Method.GCAI.label), (Method.ICAI, Method.ICAI.label)],
        initial=[Method.GCAI],
        widget=forms.CheckboxSelectMultiple,
        label="Methods",
    )
    max_training_pairs = forms.IntegerField(
        min_value=1, required=False, help_text="Sample this many training pairs (all if empty)."
    )
    eval_limit = forms.IntegerField(
        min_value=1,
        required=False,
        help_text="Judge at most this many held-out pairs per group (all if empty).",
    )
    seed = forms.IntegerField(initial=0)

    def __init__(self, *args, attributes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attribute"].choices = [(a, a) for a in attributes]
