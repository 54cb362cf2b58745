"""Forms of the study Data page: upload, preview/confirm, split assignment."""

from __future__ import annotations

import re
from pathlib import Path

from django import forms

from annotations.importers import pair_format_choices

KIND_CHOICES = [("pairs", "Preference pairs"), ("statements", "Value statements")]
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")


class DataImportForm(forms.Form):
    """Upload (with ``file``) or confirm a staged upload (with ``token``)."""

    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="pairs", label="What the file holds")
    file = forms.FileField(required=False, label="File (JSONL, CSV or ICAI JSON)")
    token = forms.CharField(required=False, widget=forms.HiddenInput)
    filename = forms.CharField(required=False, widget=forms.HiddenInput)
    dataset = forms.CharField(
        required=False,
        max_length=200,
        label="Dataset",
        help_text="New or existing dataset name; defaults to the file name.",
    )
    format = forms.ChoiceField(required=False, label="Format")
    mapping = forms.CharField(
        required=False,
        label="Column mapping (other CSV/JSONL)",
        widget=forms.TextInput(
            attrs={"placeholder": "prompt=question,response_a=answer1,response_b=answer2"}
        ),
    )
    seed = forms.IntegerField(
        initial=0, required=False, label="Seed", help_text="Decides sides of chosen/rejected data."
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Skip invalid rows",
        help_text="Import the valid rows and list every skipped row with its line and reason. "
        "Unticked, one bad row stops the import and nothing is saved.",
    )
    split_test_fraction = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=0.99,
        label="Test fraction",
        help_text="Optional: assign a stratified train/test split to unassigned pairs.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["format"].choices = [("", "Detect automatically"), *pair_format_choices()]

    def clean_token(self) -> str:
        token = self.cleaned_data.get("token", "")
        if token and not TOKEN_RE.match(token):
            raise forms.ValidationError("Unknown upload; upload the file again.")
        return token

    def clean(self):
        data = super().clean()
        if not data.get("file") and not data.get("token"):
            self.add_error("file", "Choose a file to import.")
        upload = data.get("file")
        if upload is not None:
            data["filename"] = Path(upload.name).name
        if not (data.get("dataset") or "").strip() and data.get("kind") == "pairs":
            data["dataset"] = Path(data.get("filename") or "").stem[:200]
        data["seed"] = data.get("seed") or 0
        return data


class SplitForm(forms.Form):
    test_fraction = forms.FloatField(
        min_value=0.01,
        max_value=0.99,
        initial=0.2,
        label="Test fraction",
        help_text="Share of pairs held out for evaluation (0.2 = one in five).",
    )
    seed = forms.IntegerField(
        initial=0, required=False, help_text="The same seed gives the same split."
    )
    reassign = forms.BooleanField(
        required=False,
        label="Also re-split pairs that already have a split",
        help_text=(
            "Runs and evaluations already made keep the pairs they used; new ones see the "
            "new split. Leave off to split only the pairs without one."
        ),
    )
