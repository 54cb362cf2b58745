"""A dataset's settings page: name, annotations per pair (K) and its train/test split."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotations.access import study_for
from annotations.dataset_forms import DatasetSettingsForm
from annotations.io_forms import SplitForm
from annotations.models import Annotation, Dataset, Split


def _split_counts(dataset: Dataset) -> dict[str, int]:
    counts = dict.fromkeys(Split.values, 0)
    for row in dataset.pairs.values("split").annotate(n=Count("id")).order_by():
        counts[row["split"]] = row["n"]
    return counts


@login_required
@require_http_methods(["GET", "POST"])
def dataset_settings(request, study_id: int, dataset_id: int):
    study = study_for(request.user, study_id)
    dataset = get_object_or_404(Dataset, pk=dataset_id, study=study)
    form = DatasetSettingsForm(request.POST or None, instance=dataset)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Dataset “{dataset.name}” saved.")
        return redirect("study_dataset_settings", study_id=study.pk, dataset_id=dataset.pk)
    counts = _split_counts(dataset)
    context = {
        "study": study,
        "dataset": dataset,
        "form": form,
        "split_form": SplitForm(),
        "counts": counts,
        "n_pairs": sum(counts.values()),
        "n_annotations": Annotation.objects.filter(pair__dataset=dataset).count(),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "annotations/dataset_settings.html", context, status=status)
