"""The demo study: accounts, bundled data, GCAI + ICAI constitutions, evaluation, survey.

Every step is idempotent, so ``make demo`` can be run again: existing data is kept,
finished runs are not rebuilt, and only the passwords are renewed (they are printed,
never fixed in code or docs).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotations.imports import pairs_import, statements_import
from annotations.models import Dataset, Membership, Moderation, Role, Study, ValueStatement
from gcai.constitutions import evaluation_reports, evaluations, runs
from gcai.constitutions.models import Constitution, Evaluation, Method, PipelineRun
from gcai.demo.groups import demo_group_comparison
from gcai.groups.models import GroupComparison
from gcai.jobs.models import JobStatus
from surveys.models import Survey, SurveyStatus
from surveys.services import survey_create, survey_open

DATA_DIR = Path(__file__).resolve().parent / "data"
PAIRS_FILE = DATA_DIR / "alpacaeval_mistral_slice.jsonl"
QUICK_PAIRS_FILE = DATA_DIR / "alpacaeval_quick_slice.jsonl"
STATEMENTS_FILE = DATA_DIR / "value_statements.jsonl"
STUDY_NAME = "Demo: what should AI assistants value?"
DATASET_NAME = "AlpacaEval judgements with reasons (Mistral-7B vs GPT-4 Turbo)"
QUICK_DATASET_NAME = "AlpacaEval quick slice (40 shortest pairs)"
USERS = (
    ("researcher", Role.RESEARCHER),
    ("annotator1", Role.ANNOTATOR),
    ("annotator2", Role.ANNOTATOR),
)
OFF_TOPIC = ("asdf test test",)
NO_VALUES_EXAMPLE = "My favourite food is pizza"
APPROVED_PARTICIPANTS = tuple(f"demo-p{i:02d}" for i in range(1, 7))

Say = Callable[[str], None]


@dataclass
class DemoSizes:
    """How much the demo builds: small for the embedded model, larger for a real one."""

    train_pairs: int
    test_pairs: int
    vote_seeds: int
    clusters: int
    max_principles: int
    principle_analysis: bool
    quick_dataset: bool = False  # build from the shortest pairs only

    @classmethod
    def for_backend(cls, backend: str) -> DemoSizes:
        if backend == "local":
            # SmolLM2-135M on 2 CPU cores: a few seconds per call, so a small slice keeps
            # the whole build under ten minutes.
            return cls(
                train_pairs=8,
                test_pairs=4,
                vote_seeds=1,
                clusters=4,
                max_principles=6,
                principle_analysis=False,
            )
        return cls(
            train_pairs=120,
            test_pairs=60,
            vote_seeds=3,
            clusters=10,
            max_principles=10,
            principle_analysis=True,
        )


@dataclass
class DemoResult:
    study: Study
    passwords: dict[str, str] = field(default_factory=dict)
    runs: list[PipelineRun] = field(default_factory=list)
    constitutions: list[Constitution] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    survey: Survey | None = None
    group_comparison: GroupComparison | None = None
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- data


def demo_accounts(*, study: Study) -> dict[str, str]:
    """Create or refresh the demo logins with new random passwords."""
    User = get_user_model()
    passwords: dict[str, str] = {}
    for username, role in USERS:
        user, _ = User.objects.get_or_create(username=username)
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save()
        Membership.objects.get_or_create(user=user, study=study, role=role)
        passwords[username] = password
    return passwords


@transaction.atomic
def demo_study() -> Study:
    study = Study.objects.filter(name=STUDY_NAME).order_by("pk").first()
    if study is None:
        study = Study.objects.create(
            name=STUDY_NAME,
            description=(
                "292 real AlpacaEval pairwise judgements with written reasons (and a quick "
                "slice of the 40 shortest), and 36 value statements written for the demo."
            ),
            value_questions=[
                "What values should AI systems hold when they respond to people?",
                "Describe a situation where an AI assistant should refuse or hold back, and why.",
            ],
            statements_min=1,
            statements_max=3,
            prolific_completion_code="DEMO2026",
        )
    return study


def _import_pairs(*, study: Study, name: str, path: Path, say: Say) -> Dataset:
    dataset = Dataset.objects.filter(study=study, name=name).first()
    if dataset is None or not dataset.pairs.exists():
        with path.open("rb") as fh:
            report = pairs_import(
                study=study, dataset_name=name, file=fh, seed=0, split_test_fraction=0.25
            )
        say(f"Imported {report.created} preference pairs into “{name}” ({report.format}).")
        dataset = Dataset.objects.get(study=study, name=name)
    return dataset


def demo_data(*, study: Study, say: Say) -> tuple[Dataset, Dataset]:
    """Import the bundled pairs and statements (idempotent) and moderate the statements.

    Returns the full dataset and the quick slice (its 40 shortest pairs)."""
    dataset = _import_pairs(study=study, name=DATASET_NAME, path=PAIRS_FILE, say=say)
    quick = _import_pairs(study=study, name=QUICK_DATASET_NAME, path=QUICK_PAIRS_FILE, say=say)
    if not study.statements.exists():
        with STATEMENTS_FILE.open("rb") as fh:
            report = statements_import(study=study, file=fh)
        say(f"Imported {report.created} value statements.")
    # Moderation, as a researcher would do it: reject the empty test entry, approve the
    # statements of the first participants (plus one without values, to show it yields no
    # principle) and leave the rest in the moderation queue to try out.
    pending = study.statements.filter(moderation=Moderation.PENDING)
    pending.filter(text__in=OFF_TOPIC).update(
        moderation=Moderation.REJECTED, moderated_at=timezone.now()
    )
    approve = pending.filter(external_participant__in=APPROVED_PARTICIPANTS) | pending.filter(
        text__startswith=NO_VALUES_EXAMPLE
    )
    approve.update(moderation=Moderation.APPROVED, moderated_at=timezone.now())
    return dataset, quick


# --------------------------------------------------------------------------- building


def _wait(jobs: list[Any], *, say: Say, label: Callable[[Any], str], timeout_s: float) -> None:
    """Print progress until every job has stopped (or the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    last: dict[int, str] = {}
    while True:
        for job in jobs:
            job.refresh_from_db()
            line = (
                f"  {label(job)}: {job.status} · {job.stage or 'queued'} "
                f"{job.progress_done}/{job.progress_total} · LLM calls {job.llm_calls} "
                f"(cached {job.llm_cached_calls})"
            )
            if last.get(job.pk) != line:
                say(line)
                last[job.pk] = line
        if not any(job.is_active for job in jobs):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Still running after {timeout_s:.0f} s; see the run pages for progress."
            )
        time.sleep(2)


def demo_runs(
    *, study: Study, sizes: DemoSizes, dataset_ids: list[int], say: Say, timeout_s: float
) -> list[PipelineRun]:
    """GCAI and ICAI on the same training pairs, through the Celery worker."""
    existing = list(
        PipelineRun.objects.filter(
            study=study, status=JobStatus.SUCCEEDED, comparison_group__startswith=""
        )
        .exclude(comparison_group="")
        .order_by("-created_at")
    )
    groups: dict[str, list[PipelineRun]] = {}
    for run in existing:
        groups.setdefault(run.comparison_group, []).append(run)
    for group_runs in groups.values():
        if {r.method for r in group_runs} >= {Method.GCAI, Method.ICAI}:
            say("Constitutions already built; skipping the build.")
            return sorted(group_runs, key=lambda r: r.method != Method.GCAI)

    active = list(
        PipelineRun.objects.filter(study=study, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
    )
    if len(active) >= 2:
        pair = active
    else:
        gcai_run, icai_run = runs.runs_create_comparison(
            study=study,
            seed=0,
            dataset_ids=dataset_ids,
            max_training_pairs=sizes.train_pairs,
            batch_size=4,
            publish=True,
            gcai_config={
                "contextual_clusters": sizes.clusters,
                "general_clusters": sizes.clusters,
                "vote_seeds": sizes.vote_seeds,
                "max_principles": sizes.max_principles,
            },
            icai_config={
                "vote_seeds": sizes.vote_seeds,
                "max_principles": sizes.max_principles,
                # With the tiny offline model few principles survive the vote; keep the best
                # few (marked below threshold) so the rest of the loop has something to show.
                "min_principles": 3 if sizes.quick_dataset else 0,
            },
        )
        pair = [gcai_run, icai_run]
        for run in pair:
            runs.run_start(run=run)
    say(
        f"Building GCAI and ICAI constitutions from {sizes.train_pairs} training pairs through the worker..."
    )
    _wait(pair, say=say, label=lambda r: r.get_method_display(), timeout_s=timeout_s)
    return sorted(pair, key=lambda r: r.method != Method.GCAI)


def demo_evaluations(
    *,
    study: Study,
    constitutions: list[Constitution],
    sizes: DemoSizes,
    dataset_ids: list[int],
    say: Say,
    timeout_s: float,
) -> list[Evaluation]:
    done = Evaluation.objects.filter(study=study, constitution__in=constitutions)
    if done.filter(status=JobStatus.SUCCEEDED).count() >= len(constitutions):
        group = done.first().comparison_group
        return list(Evaluation.objects.filter(study=study, comparison_group=group))
    created = evaluations.evaluations_create_comparison(
        study=study,
        constitutions=constitutions,
        baselines=True,
        limit=sizes.test_pairs,
        seed=0,
        dataset_ids=dataset_ids,
        principle_analysis=sizes.principle_analysis,
    )
    for evaluation in created:
        evaluations.evaluation_start(evaluation=evaluation)
    say(f"Evaluating on {sizes.test_pairs} held-out pairs (both orders) with two baselines...")
    _wait(created, say=say, label=evaluation_reports.target_label, timeout_s=timeout_s)
    return created


def demo_survey(*, study: Study, gcai: Constitution, icai: Constitution) -> Survey:
    survey = Survey.objects.filter(study=study).order_by("pk").first()
    if survey is None:
        survey = survey_create(
            study=study,
            title="Demo survey: GCAI vs ICAI",
            constitution_a=gcai,
            constitution_b=icai,
            rate_principles=True,
        )
    if survey.status != SurveyStatus.OPEN:
        survey_open(survey=survey)
    return survey


def demo_build(*, say: Say, build: bool = True, timeout_s: float = 1800) -> DemoResult:
    """Everything ``make demo`` sets up. Runs and evaluations go through the Celery worker."""
    study = demo_study()
    result = DemoResult(study=study)
    result.passwords = demo_accounts(study=study)
    dataset, quick = demo_data(study=study, say=say)
    if not build:
        return result
    sizes = DemoSizes.for_backend(settings.GCAI_LLM_BACKEND)
    dataset_ids = [quick.pk] if sizes.quick_dataset else [dataset.pk]
    say(
        f"LLM: {settings.GCAI_LLM_BACKEND} ({settings.GCAI_LLM_MODEL}); embeddings: {settings.GCAI_EMBEDDINGS}."
    )
    result.runs = demo_runs(
        study=study, sizes=sizes, dataset_ids=dataset_ids, say=say, timeout_s=timeout_s
    )
    for run in result.runs:
        if run.status != JobStatus.SUCCEEDED:
            result.problems.append(
                f"{run.get_method_display()} run {run.pk} {run.status}: {run.error[:300]}"
            )
        elif run.config.get("publish_blocked"):
            # The quality gate kept the constitution a draft: say why, never override here.
            result.problems.append(
                f"{run.get_method_display()} run {run.pk}: {run.config['publish_blocked']}"
            )
    constitutions = [
        c for run in result.runs for c in Constitution.objects.filter(run=run, status="published")
    ]
    result.constitutions = constitutions
    if len(constitutions) < 2:
        result.problems.append(
            "Fewer than two published constitutions (a run produced no principle); "
            "evaluation and survey were skipped. A larger model gives better results."
        )
        return result
    result.evaluations = demo_evaluations(
        study=study,
        constitutions=constitutions,
        sizes=sizes,
        dataset_ids=dataset_ids,
        say=say,
        timeout_s=timeout_s,
    )
    result.survey = demo_survey(study=study, gcai=constitutions[0], icai=constitutions[1])
    # Last, so the constitutions and evaluations above never see the simulated annotators.
    result.group_comparison = demo_group_comparison(
        study=study,
        dataset=quick,
        train_pairs=sizes.train_pairs,
        eval_limit=sizes.test_pairs,
        method_config={
            "contextual_clusters": sizes.clusters,
            "general_clusters": sizes.clusters,
            "vote_seeds": sizes.vote_seeds,
            "max_principles": sizes.max_principles,
        },
        say=say,
    )
    return result


def demo_statements_count(study: Study) -> int:
    return ValueStatement.objects.filter(study=study, moderation=Moderation.APPROVED).count()
