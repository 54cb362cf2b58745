"""Dataset settings: name, description and annotations per pair (K)."""

from __future__ import annotations

from django import forms

from annotations.models import Dataset

MAX_OVERLAP = 50


class DatasetSettingsForm(forms.ModelForm):
    """A dataset's name, description and annotations per pair (K)."""

    class Meta:
        model = Dataset
        fields = ["name", "description", "annotation_overlap"]
        labels = {"annotation_overlap": "Annotations per pair (K)"}
        help_texts = {
            "name": "Shown to researchers only; annotators never see dataset names.",
            "annotation_overlap": (
                "How many different annotators label each pair. The queue stops handing "
                "out a pair once it has K annotations. Raising K sends finished pairs "
                "back into the queue; lowering it never deletes annotations."
            ),
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def clean_annotation_overlap(self) -> int:
        k = self.cleaned_data["annotation_overlap"]
        if not 1 <= k <= MAX_OVERLAP:
            raise forms.ValidationError(f"Choose between 1 and {MAX_OVERLAP}.")
        return k

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Dataset.objects.filter(study=self.instance.study, name=name).exclude(
            pk=self.instance.pk
        )
        if taken.exists():
            raise forms.ValidationError("Another dataset of this study has that name.")
        return name
