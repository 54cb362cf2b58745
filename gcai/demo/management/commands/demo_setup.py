"""``manage.py demo_setup``: create the demo study and build everything through the worker."""

from __future__ import annotations

import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from gcai.constitutions.evaluation_reports import comparison_order, evaluation_table_text
from gcai.constitutions.llm import embedded_model_of
from gcai.demo.build import demo_build


class Command(BaseCommand):
    help = "Create (or refresh) the demo study, build GCAI + ICAI constitutions, evaluate, open a survey."

    def add_arguments(self, parser):
        parser.add_argument("--no-build", action="store_true", help="Only accounts and data.")
        parser.add_argument(
            "--timeout", type=float, default=1800, help="Seconds to wait for the worker."
        )
        parser.add_argument(
            "--base-url", default=os.environ.get("GCAI_DEMO_URL", "http://127.0.0.1:8000")
        )

    def handle(self, *args, **options):
        started = time.monotonic()

        def say(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            result = demo_build(
                say=say, build=not options["no_build"], timeout_s=options["timeout"]
            )
        except TimeoutError as exc:
            raise CommandError(str(exc)) from None
        base = options["base_url"].rstrip("/")
        study = result.study

        for constitution in result.constitutions:
            say(f"\n{constitution.title} ({constitution.items.count()} principles):")
            for item in constitution.items.select_related("principle").order_by("position"):
                say(f"  {item.position}. [{item.principle.origin}] {item.text}")
        embedded = embedded_model_of(*result.runs)
        if embedded:
            say(
                self.style.WARNING(
                    f"\nBuilt with the embedded offline model ({embedded}): it shows the loop "
                    "works, not research results. See “Connecting a real model” in the README."
                )
            )
        if result.evaluations:
            say("\nPreference reconstruction on held-out pairs:")
            say(evaluation_table_text(sorted(result.evaluations, key=comparison_order)))
        for problem in result.problems:
            say(self.style.WARNING(f"Note: {problem}"))

        say(
            self.style.SUCCESS(
                f"\nDemo ready in {time.monotonic() - started:.0f} s. Logins (new passwords each run):"
            )
        )
        for username, password in result.passwords.items():
            say(f"  {username:<11} {password}")
        say("\nOpen:")
        say(
            f"  Researcher dashboard  {base}{reverse('study_detail', args=[study.pk])}  (log in as researcher)"
        )
        say(f"  Constitutions & runs  {base}{reverse('study_constitutions', args=[study.pk])}")
        say(
            f"  Annotator queue       {base}{reverse('annotate', args=[study.pk])}  (log in as annotator1)"
        )
        say(
            f"  Participant link      {base}{reverse('participant_entry', args=[study.entry_token])}?PROLIFIC_PID=demo-participant-1"
        )
        if result.survey is not None:
            say(
                f"  Survey link           {base}{reverse('survey_participant_enter', args=[result.survey.entry_token])}"
                "?PROLIFIC_PID=demo-participant-1"
            )
            say(
                f"  Survey results        {base}{reverse('survey_results', args=[study.pk, result.survey.pk])}"
            )
        if result.group_comparison is not None:
            say(
                f"  Whose values? (groups) {base}{reverse('group_comparison_detail', args=[study.pk, result.group_comparison.pk])}"
                "  (builds in the background)"
            )
        say(f"  API docs              {base}{reverse('api_docs')}")
