"""``manage.py export_training_data``: TRL-ready training files conditioned on a constitution."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gcai.constitutions.models import Constitution
from gcai.core.training_data import (
    DEFAULT_HEADER,
    GENERATION_FORM,
    KINDS,
    PLACEMENTS,
    SELECTION_FORM,
    STYLES,
    ExportSettings,
)
from gcai.modeling.exports import ExportError, export_plan, export_write
from gcai.modeling.models import SteeringRun
from gcai.modeling.selectors import critique_rows


class Command(BaseCommand):
    help = (
        "Write preference (DPO/ORPO, KTO) or SFT data from a study's pairs, conditioned on "
        "a PUBLISHED constitution: one JSON-lines file per split and provenance.json. "
        "With --critique-run, write a critique-and-revision run's SFT rows instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--constitution", type=int, help="Published constitution id.")
        parser.add_argument("--out", type=Path, required=True, help="Output directory.")
        parser.add_argument("--kind", choices=KINDS, default="dpo", help="dpo also serves ORPO.")
        parser.add_argument("--style", choices=STYLES, default="conversational")
        parser.add_argument("--placement", choices=PLACEMENTS, default="user")
        parser.add_argument("--no-reword", action="store_true", help="Keep selection form.")
        parser.add_argument("--reword-from", default=SELECTION_FORM)
        parser.add_argument("--reword-to", default=GENERATION_FORM)
        parser.add_argument("--header", default=DEFAULT_HEADER)
        parser.add_argument(
            "--relevant-only",
            action="store_true",
            help="Only the principles relevant to each pair (evidence, --evaluation votes).",
        )
        parser.add_argument("--evaluation", type=int, help="Evaluation of this constitution.")
        parser.add_argument("--dataset", type=int, action="append", help="Dataset id (repeat).")
        parser.add_argument("--critique-run", type=int, help="Export a critique run's SFT rows.")

    def handle(self, *args, **o) -> None:
        out: Path = o["out"]
        if o["critique_run"]:
            self._critique(o["critique_run"], out, o["style"])
            return
        constitution = Constitution.objects.filter(pk=o["constitution"] or 0).first()
        if constitution is None:
            raise CommandError("--constitution: no such constitution.")
        try:
            settings = ExportSettings(
                kind=o["kind"],
                style=o["style"],
                placement=o["placement"],
                reword=not o["no_reword"],
                reword_from=o["reword_from"],
                reword_to=o["reword_to"],
                header=o["header"],
                relevant_only=o["relevant_only"],
            )
            plan = export_plan(
                constitution=constitution,
                settings=settings,
                dataset_ids=o["dataset"],
                evaluation_id=o["evaluation"],
            )
        except (ExportError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        provenance = export_write(plan, out)
        for part, name in provenance["files"].items():
            self.stdout.write(f"{out / name}: {provenance['counts'][part]['rows']} rows")
        self.stdout.write(f"{out / 'provenance.json'}")

    def _critique(self, pk: int, out: Path, style: str) -> None:
        run = SteeringRun.objects.filter(pk=pk).first()
        if run is None or run.kind != "critique" or run.status != "succeeded":
            raise CommandError(f"--critique-run: no finished critique run {pk}.")
        out.mkdir(parents=True, exist_ok=True)
        n = 0
        with (out / "critique_revision.jsonl").open("w", encoding="utf-8") as fh:
            for row in critique_rows(run, style=style):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        self.stdout.write(f"{out / 'critique_revision.jsonl'}: {n} rows")
