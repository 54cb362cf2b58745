"""Writes for steering evaluations and critique runs: create, start, cancel, resume."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from annotations.models import PreferencePair, Split, Study
from gcai.constitutions.models import Constitution
from gcai.constitutions.pipeline import sample_ids
from gcai.core.training_data import DEFAULT_HEADER, GENERATION_FORM, SELECTION_FORM
from gcai.modeling.models import SteeringKind, SteeringRun
from gcai.modeling.steering_jobs import ENGINE

MAX_PROMPTS = 5000
MAX_PROMPT_CHARS = 20_000
DEFAULT_BATCH_SIZE = 10
# Only variables meant to hold API keys may be named: the key is sent to the target.
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,90}API_KEY$")


class SteeringError(ValueError):
    """A run that cannot be created; the message names the setting and is safe to show."""


# --------------------------------------------------------------------------- prompts


def prompts_from_file(*, data: bytes, name: str) -> list[str]:
    """Prompts from an uploaded file: JSON lines or a JSON list (objects with a
    ``prompt`` or ``instruction`` field, or strings), CSV with a ``prompt`` column, or
    plain text with one prompt per line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SteeringError("prompts_file: not UTF-8 text") from None
    lower = name.lower()

    def pick(value: Any, where: str) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            for key in ("prompt", "instruction"):
                if isinstance(value.get(key), str):
                    return value[key]
        raise SteeringError(f"prompts_file: {where} has no 'prompt' or 'instruction' text")

    try:
        if lower.endswith((".jsonl", ".ndjson")):
            lines = [ln for ln in text.splitlines() if ln.strip()]
            prompts = [pick(json.loads(ln), f"line {n}") for n, ln in enumerate(lines, 1)]
        elif lower.endswith(".json"):
            value = json.loads(text)
            if not isinstance(value, list):
                raise SteeringError("prompts_file: a JSON file must hold a list")
            prompts = [pick(v, f"item {n}") for n, v in enumerate(value, 1)]
        elif lower.endswith(".csv"):
            reader = csv.DictReader(io.StringIO(text))
            if not reader.fieldnames or "prompt" not in reader.fieldnames:
                raise SteeringError("prompts_file: the CSV needs a 'prompt' column")
            prompts = [row["prompt"] or "" for row in reader]
        else:
            prompts = text.splitlines()
    except json.JSONDecodeError as exc:
        raise SteeringError(f"prompts_file: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    return clean_prompts(prompts)


def clean_prompts(prompts: Sequence[str]) -> list[str]:
    out = [p.strip() for p in prompts if p and p.strip()]
    if not out:
        raise SteeringError("prompts: none given")
    if len(out) > MAX_PROMPTS:
        raise SteeringError(f"prompts: at most {MAX_PROMPTS} per run")
    if any(len(p) > MAX_PROMPT_CHARS for p in out):
        raise SteeringError(f"prompts: each at most {MAX_PROMPT_CHARS} characters")
    return out


def prompts_from_datasets(
    *,
    study: Study,
    dataset_ids: Sequence[int] | None = None,
    split: str = Split.TEST,
    limit: int | None = None,
    seed: int = 0,
) -> list[str]:
    """Distinct prompts of the study's pairs in ``split``, sampled down to ``limit``."""
    if split not in Split.values:
        raise SteeringError(f"split: must be one of {', '.join(Split.values)}")
    pairs = PreferencePair.objects.filter(dataset__study=study, split=split)
    if dataset_ids:
        pairs = pairs.filter(dataset_id__in=dataset_ids)
    first: dict[str, int] = {}
    for pk, prompt in pairs.order_by("pk").values_list("pk", "prompt").iterator():
        first.setdefault(prompt.strip(), pk)
    if not first:
        raise SteeringError(f"prompts: no {split} pairs in the chosen datasets")
    by_id = {pk: prompt for prompt, pk in first.items()}
    return clean_prompts([by_id[pk] for pk in sample_ids(list(by_id), limit, seed)])


# --------------------------------------------------------------------------- create


def _principles(constitution: Constitution | None, study: Study, field: str) -> list[str]:
    if constitution is None:
        return []
    if constitution.study_id != study.pk:
        raise SteeringError(f"{field}: not a constitution of this study")
    texts = [item.text for item in constitution.items.order_by("position")]
    if not texts:
        raise SteeringError(f"{field}: “{constitution}” has no principles")
    return texts


def _target(target: dict[str, Any]) -> dict[str, Any]:
    backend = target.get("backend") or "openai"
    if backend not in ("openai", "local"):
        raise SteeringError("target_backend: must be 'openai' or 'local'")
    if backend == "local":
        return {"backend": "local", "model": "embedded"}
    model = str(target.get("model") or "").strip()
    if not model:
        raise SteeringError("target_model: give the model name the endpoint serves")
    base_url = str(target.get("base_url") or "").strip()
    if base_url and not re.match(r"^https?://", base_url):
        raise SteeringError("target_base_url: must start with http:// or https://")
    env = str(target.get("api_key_env") or "OPENAI_API_KEY").strip()
    if not _ENV_NAME.match(env):
        raise SteeringError(
            "target_api_key_env: the NAME of an environment variable ending in API_KEY, "
            "e.g. OPENAI_API_KEY or TARGET_API_KEY"
        )
    return {"backend": "openai", "base_url": base_url, "model": model, "api_key_env": env}


@transaction.atomic
def steering_create(
    *,
    study: Study,
    constitution: Constitution,
    prompts: Sequence[str],
    target: dict[str, Any],
    kind: str = SteeringKind.STEERING,
    constitution_b: Constitution | None = None,
    prompt_source: dict[str, Any] | None = None,
    placement: str = "user",
    reword: bool = True,
    reword_from: str = SELECTION_FORM,
    reword_to: str = GENERATION_FORM,
    header: str = DEFAULT_HEADER,
    temperature: float = 0.0,
    max_tokens: int = 512,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    title: str = "",
    user: Any = None,
) -> SteeringRun:
    """Create a queued steering evaluation (or critique run) of ``constitution``.

    The constitutions' wording is copied into the config, so later edits to a draft
    cannot change a running job. Raises :class:`SteeringError` naming the bad setting.
    """
    if kind not in SteeringKind.values:
        raise SteeringError(f"kind: must be one of {', '.join(SteeringKind.values)}")
    if placement not in ("user", "system"):
        raise SteeringError("placement: must be 'user' or 'system'")
    if not 1 <= batch_size <= 1000:
        raise SteeringError("batch_size: must be between 1 and 1000")
    if not 1 <= max_tokens <= 32_768:
        raise SteeringError("max_tokens: must be between 1 and 32768")
    if not 0.0 <= temperature <= 2.0:
        raise SteeringError("temperature: must be between 0 and 2")
    if reword and not reword_from.strip():
        raise SteeringError("reword_from: give the phrase to replace, or switch rewording off")
    if constitution_b is not None and constitution_b.pk == constitution.pk:
        raise SteeringError("constitution_b: choose a different constitution")
    if kind == SteeringKind.CRITIQUE and constitution_b is not None:
        raise SteeringError("constitution_b: only a steering evaluation compares two")
    config = {
        "prompts": clean_prompts(prompts),
        "prompt_source": dict(prompt_source or {"kind": "list"}),
        "target": _target(target),
        "principles_a": _principles(constitution, study, "constitution"),
        "principles_b": _principles(constitution_b, study, "constitution_b"),
        "conditioning": {
            "placement": placement,
            "reword": bool(reword),
            "reword_from": reword_from,
            "reword_to": reword_to,
            "header": header,
        },
        "generation": {"temperature": temperature, "max_tokens": max_tokens, "seed": seed},
        "batch_size": batch_size,
    }
    label = SteeringKind(kind).label
    return SteeringRun.objects.create(
        study=study,
        kind=kind,
        constitution=constitution,
        constitution_b=constitution_b,
        title=title or f"{label}: {constitution.title} v{constitution.version}",
        seed=seed,
        config=config,
        llm_model=config["target"]["model"],
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def steering_start(*, run: SteeringRun) -> None:
    """Queue the run once the current transaction commits."""
    ENGINE.start(run)


def steering_cancel(*, run: SteeringRun) -> None:
    ENGINE.cancel(run)


def steering_resume(*, run: SteeringRun) -> None:
    """Restart a failed or cancelled run from its last stored stage (ValueError if done)."""
    ENGINE.resume(run)


def steering_run_inline(*, run: SteeringRun) -> str:
    """Run (or resume) a job to the end in this process, without a worker.

    For the ``steer_eval`` command and scripts; the web never calls it. Celery runs the
    batch tasks eagerly, so the engine's fan-out and database join are the same code.
    """
    from gcai.celery import app

    if run.status not in ("queued", "running"):
        ENGINE.resume(run)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        # Inside an open transaction (scripts, tests) the join's on_commit hand-off waits,
        # so step again while a stage was dispatched: stored batches are merged, not redone.
        outcome = ENGINE.step(run.pk)
        for _ in range(10):
            if not outcome.startswith("dispatched:"):
                break
            outcome = ENGINE.step(run.pk)
        return outcome
    finally:
        app.conf.task_always_eager = eager
