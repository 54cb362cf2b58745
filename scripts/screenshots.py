"""Screenshots of the main screens of a running demo, for the README.

    .venv/bin/python scripts/screenshots.py --base http://127.0.0.1:8000 \
        --password-researcher ... --password-annotator ...

Uses Debian's chromium through Playwright (no browser download) and writes PNGs to
docs/screenshots/. Reads ids from the demo database, so run it from the project root
against the database the server uses.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gcai.settings")

import django  # noqa: E402

django.setup()

from django.urls import reverse  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from annotations.models import Study  # noqa: E402
from gcai.constitutions.models import Constitution, Evaluation, PipelineRun  # noqa: E402
from gcai.demo.build import STUDY_NAME  # noqa: E402
from surveys.models import Survey  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--password-researcher", required=True)
    parser.add_argument("--password-annotator", required=True)
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    study = Study.objects.get(name=STUDY_NAME)
    gcai_run = PipelineRun.objects.filter(study=study, method="gcai").order_by("-pk").first()
    constitution = Constitution.objects.filter(study=study, method="gcai").order_by("-pk").first()
    evaluation = Evaluation.objects.filter(study=study).exclude(comparison_group="").first()
    survey = Survey.objects.filter(study=study).first()

    researcher_pages = [("dashboard", reverse("study_detail", args=[study.pk]))]
    researcher_pages.append(("data", reverse("study_data", args=[study.pk])))
    researcher_pages.append(("constitutions", reverse("study_constitutions", args=[study.pk])))
    if gcai_run:
        researcher_pages.append(("run", reverse("run_detail", args=[study.pk, gcai_run.pk])))
    if constitution:
        researcher_pages.append(
            ("constitution", reverse("constitution_detail", args=[study.pk, constitution.pk]))
        )
    if evaluation:
        researcher_pages.append(
            (
                "evaluation",
                reverse("evaluation_compare", args=[study.pk, evaluation.comparison_group]),
            )
        )
    if survey:
        researcher_pages.append(
            ("survey_results", reverse("survey_results", args=[study.pk, survey.pk]))
        )
    researcher_pages.append(("moderation", reverse("moderation_queue", args=[study.pk])))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

        def login(username: str, password: str):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(args.base + reverse("login"))
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            return context, page

        context, page = login("researcher", args.password_researcher)
        for name, path in researcher_pages:
            page.goto(args.base + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / f"{name}.png"), full_page=False)
            print(f"{name}: {path}")
        context.close()

        context, page = login("annotator1", args.password_annotator)
        page.goto(args.base + reverse("annotate", args=[study.pk]))
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out / "annotate.png"))
        print("annotate")
        context.close()

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(
            args.base
            + reverse("participant_entry", args=[study.entry_token])
            + "?PROLIFIC_PID=screenshot-1"
        )
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out / "participant_consent.png"))
        print("participant consent")
        if survey:
            page.goto(
                args.base
                + reverse("survey_participant_enter", args=[survey.entry_token])
                + "?PROLIFIC_PID=screenshot-2"
            )
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / "survey_participant.png"))
            print("survey participant")
        context.close()
        browser.close()


if __name__ == "__main__":
    main()
