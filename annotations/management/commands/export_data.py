"""manage.py export_data STUDY WHAT [--format F] [--dataset NAME] [--id N] [--output FILE]"""

from __future__ import annotations

import sys
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from annotations import exports
from annotations.management.commands._io import study_get
from annotations.models import Dataset

WHAT = {
    "pairs": (exports.PAIR_EXPORTS, "jsonl"),
    "statements": (exports.STATEMENT_EXPORTS, "csv"),
    "constitution": (exports.CONSTITUTION_EXPORTS, "json"),
    "survey-answers": (exports.SURVEY_EXPORTS, "csv"),
}


class Command(BaseCommand):
    help = (
        "Export a study's data: pairs with annotations (jsonl, csv, icai_json), value "
        "statements (csv, jsonl), a constitution (json, md, txt; --id), survey answers "
        "(csv; --id). Writes to stdout unless --output is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="Study id or exact name.")
        parser.add_argument("what", choices=sorted(WHAT))
        parser.add_argument("--format", dest="fmt", help="File format (default per kind).")
        parser.add_argument("--dataset", help="Pairs: only this dataset (name).")
        parser.add_argument("--id", type=int, help="Constitution or survey id.")
        parser.add_argument("--output", "-o", help="Write to this file instead of stdout.")

    def handle(self, *args, **options):
        study = study_get(options["study"])
        table, default = WHAT[options["what"]]
        fmt = options["fmt"] or default
        kind = table.get(fmt)
        if kind is None:
            raise CommandError(
                f"Unknown format {fmt!r} for {options['what']}; use {', '.join(table)}."
            )
        chunks = kind.function(**self._arguments(study, options))
        if isinstance(chunks, str):
            chunks = [chunks]
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                for chunk in chunks:
                    out.write(chunk)
            self.stderr.write(f"Wrote {options['output']}")
        else:
            for chunk in chunks:
                sys.stdout.write(chunk)
            sys.stdout.flush()

    def _arguments(self, study, options) -> dict[str, Any]:
        what = options["what"]
        if what == "pairs":
            dataset = None
            if options["dataset"]:
                try:
                    dataset = Dataset.objects.get(study=study, name=options["dataset"])
                except Dataset.DoesNotExist:
                    raise CommandError(f"No dataset {options['dataset']!r} in {study}.") from None
            return {"study": study, "dataset": dataset}
        if what == "statements":
            return {"study": study}
        if options["id"] is None:
            raise CommandError(f"Give the {what.split('-')[0]} with --id.")
        model = (
            apps.get_model("constitutions", "Constitution")
            if what == "constitution"
            else apps.get_model("surveys", "Survey")
        )
        try:
            obj = model.objects.get(pk=options["id"], study=study)
        except model.DoesNotExist:
            raise CommandError(f"No {what.split('-')[0]} {options['id']} in {study}.") from None
        return {"constitution": obj} if what == "constitution" else {"survey": obj}
