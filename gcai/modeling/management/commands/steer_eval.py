"""``manage.py steer_eval``: does a constitution steer a model? (or critique-and-revision data)"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gcai.constitutions.models import Constitution
from gcai.jobs.models import JobStatus
from gcai.modeling import selectors, services
from gcai.modeling.models import SteeringKind, SteeringRun
from gcai.modeling.services import SteeringError


class Command(BaseCommand):
    help = (
        "A target model answers prompts with and without a constitution (and optionally a "
        "second one); an LLM judge compares the answers in both orders. Prints win rates "
        "with intervals and length-controlled win rates. With --kind critique, writes "
        "critique-and-revision SFT data instead. Runs on the workers (--wait) or here (--inline)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--constitution", type=int, help="Constitution id (A).")
        parser.add_argument("--constitution-b", type=int, help="A second constitution (B).")
        parser.add_argument("--kind", choices=SteeringKind.values, default=SteeringKind.STEERING)
        parser.add_argument("--prompts-file", type=Path, help=".jsonl/.json/.csv/.txt prompts.")
        parser.add_argument("--dataset", type=int, action="append", help="Dataset id (repeat).")
        parser.add_argument("--split", default="test", help="Split of the dataset prompts.")
        parser.add_argument("--limit", type=int, help="At most N prompts (seeded sample).")
        parser.add_argument("--target-local", action="store_true", help="The embedded model.")
        parser.add_argument("--target-base-url", default="", help="OpenAI-compatible base URL.")
        parser.add_argument("--target-model", default="", help="Model name at that endpoint.")
        parser.add_argument(
            "--target-api-key-env",
            default="OPENAI_API_KEY",
            help="NAME of the environment variable holding the key (the key is never stored).",
        )
        parser.add_argument("--placement", choices=["user", "system"], default="user")
        parser.add_argument("--no-reword", action="store_true")
        parser.add_argument("--max-tokens", type=int, default=512)
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--batch-size", type=int, default=services.DEFAULT_BATCH_SIZE)
        parser.add_argument("--resume", type=int, help="Resume run ID instead of creating one.")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--wait", action="store_true", help="Queue and wait for the result.")
        mode.add_argument("--inline", action="store_true", help="Run in this process.")
        parser.add_argument("--timeout", type=float, default=6 * 3600)
        parser.add_argument("--out", type=Path, help="Write the report (or SFT rows) here.")

    def handle(self, *args, **o) -> None:
        run = self._resume(o["resume"]) if o["resume"] else self._create(o)
        started = time.monotonic()
        if o["inline"]:
            services.steering_run_inline(run=run)
        else:
            if o["resume"]:
                services.steering_resume(run=run)
            else:
                services.steering_start(run=run)
            if not o["wait"]:
                self.stdout.write(f"Queued run #{run.pk}; follow it in the web app.")
                return
            self._wait(run.pk, o["timeout"])
        run.refresh_from_db()
        self.stderr.write(
            f"run #{run.pk}: {run.status} in {time.monotonic() - started:.1f}s, "
            f"{run.llm_calls} LLM calls, {run.llm_cached_calls} from cache"
        )
        self.stdout.write(selectors.steering_report_text(run))
        if o["out"] and run.status == JobStatus.SUCCEEDED:
            self._write(run, o["out"])
        if run.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Run #{run.pk} {run.status}: {run.error[:500]}")

    def _resume(self, pk: int) -> SteeringRun:
        run = SteeringRun.objects.filter(pk=pk).first()
        if run is None:
            raise CommandError(f"No steering run {pk}.")
        return run

    def _create(self, o) -> SteeringRun:
        def constitution(pk: int | None) -> Constitution | None:
            if pk is None:
                return None
            found = Constitution.objects.select_related("study").filter(pk=pk).first()
            if found is None:
                raise CommandError(f"No constitution {pk}.")
            return found

        a = constitution(o["constitution"])
        if a is None:
            raise CommandError("--constitution is required (or --resume).")
        try:
            if o["prompts_file"]:
                prompts = services.prompts_from_file(
                    data=o["prompts_file"].read_bytes(), name=o["prompts_file"].name
                )
                source = {"kind": "file", "name": o["prompts_file"].name}
            else:
                prompts = services.prompts_from_datasets(
                    study=a.study,
                    dataset_ids=o["dataset"],
                    split=o["split"],
                    limit=o["limit"],
                    seed=o["seed"],
                )
                source = {"kind": "dataset", "dataset_ids": o["dataset"] or [], "split": o["split"]}
            if o["prompts_file"] and o["limit"]:
                prompts = prompts[: o["limit"]]
            target = (
                {"backend": "local"}
                if o["target_local"]
                else {
                    "backend": "openai",
                    "base_url": o["target_base_url"],
                    "model": o["target_model"],
                    "api_key_env": o["target_api_key_env"],
                }
            )
            return services.steering_create(
                study=a.study,
                constitution=a,
                constitution_b=constitution(o["constitution_b"]),
                kind=o["kind"],
                prompts=prompts,
                prompt_source=source,
                target=target,
                placement=o["placement"],
                reword=not o["no_reword"],
                max_tokens=o["max_tokens"],
                temperature=o["temperature"],
                seed=o["seed"],
                batch_size=o["batch_size"],
            )
        except (SteeringError, OSError) as exc:
            raise CommandError(str(exc)) from exc

    def _write(self, run: SteeringRun, path: Path) -> None:
        if run.kind == SteeringKind.CRITIQUE:
            with path.open("w", encoding="utf-8") as fh:
                n = 0
                for row in selectors.critique_rows(run):
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    n += 1
            self.stderr.write(f"Wrote {n} SFT rows to {path}")
            return
        report = {"run": run.pk, "config": run.config, "results": run.results}
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.stderr.write(f"Wrote the report to {path}")

    def _wait(self, pk: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            status, done, total, stage = SteeringRun.objects.filter(pk=pk).values_list(
                "status", "progress_done", "progress_total", "stage"
            )[0]
            if (stage, done) != last:
                self.stderr.write(f"{stage or 'queued'}: {done}/{total} batches")
                last = (stage, done)
            if status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                return
            if time.monotonic() > deadline:
                raise CommandError(f"Run #{pk} still {status} after {timeout:.0f}s.")
            time.sleep(1.0)
