"""manage.py build_constitution FILE --method PRESET [--out DIR]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.imports import DataImportError
from gcai.constitutions import reproduce
from gcai.constitutions.management.commands._progress import StepBar, quiet_http_logs
from gcai.core import presets


class Command(BaseCommand):
    help = (
        "Import a preference file (or reuse its pairs), build one constitution with a "
        "published method's preset, print it and write it with its run record. Runs in "
        "this process unless --workers. Presets and their sources: docs/methods.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="Preference data in any supported format.")
        parser.add_argument("--method", required=True, choices=presets.NAMES, help="Preset.")
        parser.add_argument("--out", type=Path, help="Folder for constitution.md and run.json.")
        parser.add_argument("--study", help="Study name (default: 'Built from <file name>').")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--test-fraction",
            type=float,
            default=0.0,
            help="Hold this share of the pairs out as test pairs (default 0: train on all). "
            "Pairs that already have a split keep it.",
        )
        parser.add_argument(
            "--set",
            dest="settings",
            help="Deviations from the preset as JSON, e.g. '{\"max_principles\": 5}'.",
        )
        parser.add_argument("--format", help="Skip format detection.")
        parser.add_argument(
            "--workers", action="store_true", help="Queue on the Celery workers and wait."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        overrides = _settings(options["settings"])
        fraction = options["test_fraction"]
        if not 0 <= fraction < 1:
            raise CommandError("--test-fraction: must be at least 0 and below 1")
        bar = None if options["no_progress"] else StepBar(self.stderr)
        quiet_http_logs(options["verbosity"])
        study = reproduce.study_for_command(options["study"] or f"Built from {path.name}")
        try:
            dataset = reproduce.dataset_import(
                study=study,
                path=path,
                test_fraction=fraction or None,
                seed=options["seed"],
                format=options["format"],
            )
            run, constitution = reproduce.constitution_build(
                study=study,
                dataset=dataset,
                method=options["method"],
                seed=options["seed"],
                method_config=overrides,
                workers=options["workers"],
                progress=bar,
            )
        except (DataImportError, reproduce.ReproduceError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bar:
                bar.finish()
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
