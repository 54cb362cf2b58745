"""Steering evaluations and critique-and-revision runs, declared on the job engine.

A :class:`~gcai.modeling.models.SteeringRun` is a sibling of ``PipelineRun`` with its own
artifact table; both are :class:`~gcai.jobs.engine.JobKind` declarations, so
fan-out, the database join, progress, cancel, resume and usage accounting are the same
code. Stages:

- steering: ``generate`` (batched over prompt x variant: no constitution, constitution
  A, optionally B) -> ``judge`` (batched over prompt x comparison, both orders) ->
  ``report`` (win rates, length control);
- critique: ``critique`` (batched over prompts: response, critique, revision).

The target model is any OpenAI-compatible endpoint (base URL + model name; the API key
comes from an environment variable whose NAME is stored, never the key) or the embedded
local model. The judge is the platform's configured model. Every answer goes through the
database response cache, so a resumed or repeated run pays for nothing twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gcai.constitutions import llm as platform_llm
from gcai.constitutions.llm_cache import DatabaseResponseCache
from gcai.core import steering
from gcai.core.llm.factory import LLMSettings, build_chat_model
from gcai.core.llm.usage import UsageMeter
from gcai.core.training_data import RewordRule, constitution_block
from gcai.jobs import engine, guards
from gcai.jobs.models import JobStatus
from gcai.jobs.stages import Stage, StageError, concatenate
from gcai.modeling.models import SteeringArtifact, SteeringKind, SteeringRun


class NamespacedCache:
    """The response cache with keys salted by the target's endpoint: two servers that
    serve different weights under one model name must not share answers."""

    def __init__(self, inner: Any, namespace: str) -> None:
        self.inner = inner
        self.namespace = namespace

    def _key(self, key: str) -> str:
        return hashlib.sha256(f"{self.namespace}\x1f{key}".encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        return self.inner.get(self._key(key))

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        salted = {self._key(k): k for k in keys}
        return {salted[k]: v for k, v in self.inner.get_many(list(salted)).items()}

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.inner.set(self._key(key), value)


def target_settings(target: dict[str, Any]) -> LLMSettings:
    """The target model's settings; the API key is read from the environment now."""
    if target.get("backend") == "local":
        return LLMSettings(backend="local")
    env_name = target.get("api_key_env") or "OPENAI_API_KEY"
    base_url = target.get("base_url") or None
    key = os.environ.get(env_name, "")
    if env_name == "OPENAI_API_KEY":
        # The platform's own key only goes to the platform's own endpoint: a researcher
        # must not be able to send it to a server of their choosing.
        platform_url = getattr(settings, "GCAI_LLM_BASE_URL", None) or None
        key = (
            (key or getattr(settings, "OPENAI_API_KEY", "") or "")
            if base_url == platform_url
            else ""
        )
    if not key and base_url is None:
        raise ValueError(f"target: set {env_name} in the worker's environment")
    return LLMSettings(
        backend="openai",
        base_url=base_url,
        api_key=key or "unused",  # local OpenAI-compatible servers accept any key
        model=target.get("model") or "gpt-4o-mini",
        timeout=float(getattr(settings, "GCAI_LLM_TIMEOUT", 60.0)),
        max_retries=int(getattr(settings, "GCAI_LLM_MAX_RETRIES", 5)),
        concurrency=int(getattr(settings, "GCAI_LLM_CONCURRENCY", 16)),
        prices=dict(getattr(settings, "GCAI_LLM_PRICES", {}) or {}),
    )


class SteeringInputs:
    """What the stages read: prompts, conditioning texts, the two models, earlier outputs."""

    def __init__(self, run: SteeringRun, meter: UsageMeter) -> None:
        self.run = run
        self.config = run.config
        self.meter = meter
        self._cancel = guards.CancelCheck(SteeringRun, run.pk)
        self._outputs: dict[str, dict[str, Any]] = {}

    @property
    def prompts(self) -> list[str]:
        return list(self.config["prompts"])

    @property
    def has_b(self) -> bool:
        return bool(self.config.get("principles_b"))

    @cached_property
    def rule(self) -> RewordRule | None:
        c = self.config["conditioning"]
        return RewordRule(c["reword_from"], c["reword_to"]) if c.get("reword") else None

    def block(self, principles: Sequence[str]) -> str:
        return constitution_block(
            principles, rule=self.rule, header=self.config["conditioning"]["header"]
        )

    @cached_property
    def blocks(self) -> dict[str, str]:
        out = {steering.NONE: "", "a": self.block(self.config["principles_a"])}
        if self.has_b:
            out["b"] = self.block(self.config["principles_b"])
        return out

    @cached_property
    def generation(self) -> steering.GenerationSettings:
        g = self.config["generation"]
        return steering.GenerationSettings(
            placement=self.config["conditioning"]["placement"],
            temperature=float(g["temperature"]),
            max_tokens=int(g["max_tokens"]),
            seed=int(g["seed"]),
        )

    @cached_property
    def target(self) -> guards.GuardedModel:
        target = self.config["target"]
        cache = DatabaseResponseCache()
        namespaced = NamespacedCache(cache, f"target:{target.get('base_url') or 'default'}")
        model = build_chat_model(
            target_settings(target),
            cache=namespaced if target.get("backend") != "local" else cache,
            meter=self.meter,
            should_cancel=self._cancel,
        )
        return guards.GuardedModel(model)

    @cached_property
    def judge(self) -> guards.GuardedModel:
        return guards.GuardedModel(
            platform_llm.chat_model_for(meter=self.meter, should_cancel=self._cancel)
        )

    def output(self, stage: str) -> dict[str, Any]:
        if stage not in self._outputs:
            self._outputs[stage] = ENGINE.output(self.run, stage)
        return self._outputs[stage]

    def responses(self) -> dict[tuple[int, str], str]:
        return {(r["i"], r["variant"]): r["text"] for r in self.output("generate")["responses"]}


# --------------------------------------------------------------------------- stages


def _generate_items(ctx: SteeringInputs) -> list[tuple[int, str]]:
    variants = [steering.NONE, "a", *(["b"] if ctx.has_b else [])]
    return [(i, v) for i in range(len(ctx.prompts)) for v in variants]


def _generate(ctx: SteeringInputs, items: Sequence[Any]) -> dict[str, Any]:
    items = [(int(i), str(v)) for i, v in items]
    return steering.generate(items, ctx.prompts, ctx.blocks, ctx.target, ctx.generation)


def _judge_items(ctx: SteeringInputs) -> list[tuple[int, str, str]]:
    pairs = steering.comparisons(ctx.has_b)
    return [(i, x, y) for i in range(len(ctx.prompts)) for x, y in pairs]


def _judge(ctx: SteeringInputs, items: Sequence[Any]) -> dict[str, Any]:
    items = [(int(i), str(x), str(y)) for i, x, y in items]
    return steering.judge(items, ctx.prompts, ctx.responses(), ctx.judge)


def _report(ctx: SteeringInputs) -> dict[str, Any]:
    judgements = ctx.output("judge")["judgements"]
    return steering.report(ctx.prompts, ctx.responses(), judgements, ctx.has_b)


def _critique_items(ctx: SteeringInputs) -> list[int]:
    return list(range(len(ctx.prompts)))


def _critique(ctx: SteeringInputs, items: Sequence[Any]) -> dict[str, Any]:
    principles = [ctx.rule.apply(p) if ctx.rule else p for p in ctx.config["principles_a"]]
    if not principles:
        raise StageError("The constitution has no principles to critique against.")
    return steering.critique_revise(
        [int(i) for i in items], ctx.prompts, principles, ctx.target, ctx.generation
    )


STEERING_STAGES = [
    Stage(
        "generate",
        "Target model answers with and without the constitution",
        items=_generate_items,
        compute_batch=_generate,
        merge=concatenate("responses"),
    ),
    Stage(
        "judge",
        "Pairwise judge, both orders",
        items=_judge_items,
        compute_batch=_judge,
        merge=concatenate("judgements"),
    ),
    Stage("report", "Win rates and length control", compute=_report),
]
CRITIQUE_STAGES = [
    Stage(
        "critique",
        "Response, critique against a sampled principle, revision",
        items=_critique_items,
        compute_batch=_critique,
        merge=concatenate("rows"),
    ),
]


def stages_for(run: SteeringRun, ctx: Any = None) -> list[Stage]:
    return CRITIQUE_STAGES if run.kind == SteeringKind.CRITIQUE else STEERING_STAGES


@transaction.atomic
def steering_finish(run: SteeringRun, ctx: SteeringInputs) -> None:
    """Copy the report (or the critique summary) onto the run and mark it succeeded."""
    locked = SteeringRun.objects.select_for_update().get(pk=run.pk)
    if locked.status == JobStatus.SUCCEEDED:
        return
    if run.kind == SteeringKind.CRITIQUE:
        rows = ctx.output("critique")["rows"]
        results = {
            "n_prompts": len(rows),
            "n_revised": sum(1 for r in rows if r["error"] is None),
            "n_failed": sum(1 for r in rows if r["error"] is not None),
        }
    else:
        results = ctx.output("report")
    SteeringRun.objects.filter(pk=run.pk).update(
        results=results,
        status=JobStatus.SUCCEEDED,
        stage="done",
        finished_at=timezone.now(),
        error="",
    )


ENGINE = engine.JobKind(
    job_model=SteeringRun,
    artifact_model=SteeringArtifact,
    job_field="run",
    stages=stages_for,
    inputs=SteeringInputs,
    finish=steering_finish,
    step_task="gcai.modeling.tasks.steering_step_task",
    batch_task="gcai.modeling.tasks.steering_batch_task",
)
