"""The annotator's pair screen.

Works without JavaScript (a plain form posted back here); with it, static/js/annotate.js
adds keyboard shortcuts, a draft saved in the browser, and submits through the API.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from annotations import queue
from annotations.access import ResearcherRequiredMixin, has_role
from annotations.api_annotate import leased_pair_payload
from annotations.models import Role

CHOICES = [
    {"value": queue.ScreenChoice.FIRST, "label": "A is better", "key": "1"},
    {"value": queue.ScreenChoice.SECOND, "label": "B is better", "key": "2"},
    {"value": queue.ScreenChoice.TIE, "label": "Tie: equally good or bad", "key": "0"},
]


class AnnotateView(ResearcherRequiredMixin, View):
    """GET shows the pair leased to the annotator (leasing the next one if needed);
    POST submits, skips or flags it, then shows the next."""

    study_role = None  # any member reaches dispatch; strangers get 404

    def _not_annotator(self):
        messages.info(
            self.request,
            "Only annotators label pairs. Add yourself as an annotator below to try the "
            "pair screen.",
        )
        return redirect("study_detail", study_id=self.study.pk)

    def get(self, request, study_id: int):
        if not has_role(request.user, self.study, Role.ANNOTATOR):
            return self._not_annotator()
        return self._render(request)

    def post(self, request, study_id: int):
        if not has_role(request.user, self.study, Role.ANNOTATOR):
            return self._not_annotator()
        action = request.POST.get("action", "submit")
        pair_id = request.POST.get("pair_id")
        try:
            if action == "skip":
                queue.assignment_skip(user=request.user, study=self.study, pair_id=pair_id)
                messages.info(request, "Skipped. That pair will go to someone else.")
            elif action == "flag":
                queue.assignment_flag(
                    user=request.user,
                    study=self.study,
                    pair_id=pair_id,
                    note=request.POST.get("note", ""),
                )
                messages.info(request, "Flagged for the researchers. Thank you.")
            else:
                queue.annotation_submit(
                    user=request.user,
                    study=self.study,
                    pair_id=pair_id,
                    choice=request.POST.get("choice", ""),
                    reason=request.POST.get("reason", ""),
                )
                messages.success(request, "Saved: your judgement on the last pair is recorded.")
        except queue.QueueError as exc:
            return self._render(
                request,
                error=exc.message,
                values=request.POST,
                status=409 if exc.conflict else 400,
            )
        return redirect("annotate", study_id=self.study.pk)

    def _render(self, request, *, error: str = "", values=None, status: int = 200):
        study = self.study
        assignment = queue.pair_next_for_annotator(user=request.user, study=study)
        progress = queue.annotation_progress(user=request.user, study=study)
        context = {
            "study": study,
            "progress": progress,
            "error": error,
        }
        if assignment is None:
            return render(request, "annotations/annotate_done.html", context, status=status)
        values = values or {}
        same_pair = str(values.get("pair_id", "")) == str(assignment.pair_id)
        context.update(
            {
                "pair": leased_pair_payload(assignment, study=study),
                "choices": CHOICES,
                "chosen": values.get("choice", "") if same_pair else "",
                "reason": values.get("reason", "") if same_pair else "",
                "api": {
                    "submit": reverse("api_annotate_submit", args=[study.pk]),
                    "skip": reverse("api_annotate_skip", args=[study.pk]),
                    "flag": reverse("api_annotate_flag", args=[study.pk]),
                },
            }
        )
        return render(request, "annotations/annotate.html", context, status=status)
