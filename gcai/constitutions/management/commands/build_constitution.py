"""manage.py build_constitution FILE --method PRESET [--out DIR]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import CommandError, CommandParser

from gcai.constitutions import reproduce
from gcai.constitutions.management.commands._datafile import DataFileCommand
from gcai.core import presets


class Command(DataFileCommand):
    help = (
        "Import a preference file (or reuse its pairs), build one constitution with a "
        "published method's preset, print it and write it with its run record. Runs in "
        "this process unless --workers. Presets and their sources: docs/methods.md."
    )

    study_prefix = "Built from"
    default_test_fraction = 0.0
    test_fraction_help = "Hold this share of the pairs out as test pairs (default 0: train on all)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--method", required=True, choices=presets.NAMES, help="Preset.")
        parser.add_argument("--out", type=Path, help="Folder for constitution.md and run.json.")
        parser.add_argument(
            "--set",
            dest="settings",
            help="Deviations from the preset as JSON, e.g. '{\"max_principles\": 5}'.",
        )

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        overrides = _settings(options["settings"])
        with self.imported(options) as (study, dataset, bar):
            run, constitution = reproduce.constitution_build(
                study=study,
                dataset=dataset,
                method=options["method"],
                seed=options["seed"],
                method_config=overrides,
                workers=options["workers"],
                progress=bar,
            )
        self.stdout.write(f"{constitution.title}\n\n{constitution.as_text()}")
        out = options["out"] or Path(f"{path.stem}-{options['method']}")
        written = reproduce.constitution_write(run, constitution, out)
        self.stderr.write(
            f"Run #{run.pk} (preset {run.method} v{run.config.get('preset_version')}, "
            f"{run.training_pairs.count()} training pairs, {run.llm_calls} LLM calls, "
            f"{run.llm_cached_calls} cached); wrote {', '.join(str(p) for p in written)}"
        )


def _settings(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--set: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise CommandError("--set: give a JSON object of setting names and values")
    return value
