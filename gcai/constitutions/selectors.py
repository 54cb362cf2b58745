"""Reads for pipeline runs, their stored stages and constitutions (pages and API).

Stage artifacts can be megabytes (every vote call of every pair), so nothing here loads
a whole artifact for a page: each stage kind reads only the JSON keys it shows (key
transforms run in the database), and lists are paginated or capped. Exports stream the
stored JSON text without decoding it.

Who may see a run or a constitution is decided by :mod:`annotations.access`; the
functions here take an already authorised study, run or constitution.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from annotations.models import (
    Annotation,
    PreferencePair,
    Study,
    ValueStatement,
)
from annotations.selectors import annotation_author, annotator_pseudonyms
from gcai.constitutions import pipeline
from gcai.constitutions.evidence import EVIDENCE_KINDS, evidence_total, zero_counts
from gcai.constitutions.evidence import principle_evidence_counts as evidence_counts_of
from gcai.constitutions.evidence import through as evidence_through
from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    Method,
    PipelineRun,
    Principle,
    StageArtifact,
)

# --------------------------------------------------------------------------- stage names

STAGE_KINDS: tuple[str, ...] = (
    "triplets",
    "generate",
    "cluster",
    "representatives",
    "vote",
    "filter",
    "rank",
    "merge",
)
STREAM_TITLES = {"contextual": "Contextual stream", "general": "General stream"}

# Items per page on a stage's own page, per kind (clusters carry their members).
PAGE_SIZES = {
    "triplets": 50,
    "generate": 50,
    "cluster": 10,
    "representatives": 100,
    "vote": 50,
    "filter": 200,
    "rank": 200,
    "merge": 200,
}
# Items shown per stage on the run page before a "show all" link.
PREVIEW_SIZES = {
    "triplets": 10,
    "generate": 10,
    "cluster": 5,
    "representatives": 25,
    "vote": 0,
    "filter": 100,
    "rank": 100,
    "merge": 100,
}
MEMBERS_PREVIEW = 5
MEMBERS_FULL = 100
EXCERPT = 240


def stage_kind(name: str) -> str:
    """The kind of output a stage stores (``contextual_vote`` -> ``vote``)."""
    for kind in STAGE_KINDS:
        if name == kind or name.endswith(f"_{kind}"):
            return kind
    return "other"


def stage_stream(name: str) -> str:
    """``contextual`` / ``general`` for GCAI's per-stream stages, else ``""``."""
    prefix = name.split("_", 1)[0]
    return prefix if prefix in STREAM_TITLES and "_" in name else ""


@lru_cache(maxsize=1)
def _stage_titles() -> dict[str, str]:
    # Titles do not depend on settings, only on the method; every method's default
    # config lists all its stages except optional ones, which improved 2 includes.
    titles: dict[str, str] = {}
    for method in Method.values:
        for stage in pipeline.stages_for(method, pipeline.method_config(method, {})):
            titles.setdefault(stage.name, stage.title)
    return titles


def stage_title(name: str) -> str:
    """A stage's human title; also for the run's ``stage`` field ("" and "done")."""
    if not name:
        return "Waiting to start"
    if name == "done":
        return "Finished"
    return _stage_titles().get(name, name.replace("_", " ").capitalize())


def _excerpt(text: str, limit: int = EXCERPT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- study section


def run_list(*, study: Study) -> QuerySet[PipelineRun]:
    """The study's runs, newest first, with training-pair counts and constitutions
    (three queries in all, whatever the number of runs)."""
    return (
        PipelineRun.objects.filter(study=study)
        .annotate(n_training_pairs=Count("training_pairs", distinct=True))
        .prefetch_related(
            Prefetch(
                "constitutions",
                queryset=Constitution.objects.only(
                    "id", "run_id", "version", "status", "title"
                ).order_by("version"),
            )
        )
        .order_by("-created_at", "-pk")
    )


def constitution_list(*, study: Study) -> QuerySet[Constitution]:
    """The study's constitutions with principle counts and their run (one query)."""
    return (
        Constitution.objects.filter(study=study)
        .select_related("run")
        .annotate(n_principles=Count("items", distinct=True))
        .order_by("-created_at", "-pk")
    )


def run_comparison_groups(*, runs: Iterable[PipelineRun]) -> list[list[PipelineRun]]:
    """Runs built together (same ``comparison_group``), GCAI first; no queries."""
    groups: dict[str, list[PipelineRun]] = {}
    for run in runs:
        if run.comparison_group:
            groups.setdefault(run.comparison_group, []).append(run)
    return [
        sorted(g, key=lambda r: (r.method != Method.GCAI, r.pk))
        for g in groups.values()
        if len(g) >= 2
    ]


# --------------------------------------------------------------------------- run stages


@dataclass(slots=True)
class StageInfo:
    """A stage of a run and what of it is stored (no artifact data)."""

    name: str
    title: str
    kind: str
    stream: str
    batched: bool
    stored: bool = False
    batches_stored: int = 0
    stored_at: Any = None

    @property
    def anchor(self) -> str:
        return f"stage-{self.name}"


def run_stages_list(*, run: PipelineRun) -> list[StageInfo]:
    """The run's stages in pipeline order, each with its stored state (one query)."""
    try:
        stages = pipeline.stages_for(run.method, pipeline.method_config(run.method, run.config))
        infos = [
            StageInfo(s.name, s.title, stage_kind(s.name), stage_stream(s.name), s.batched)
            for s in stages
        ]
    except ValueError:
        # A stored config the current code no longer accepts: still show what is stored.
        infos = []
    by_name = {i.name: i for i in infos}
    stored = (
        StageArtifact.objects.filter(run=run)
        .values("stage")
        .annotate(
            merged=Count("id", filter=Q(batch=-1)),
            batches=Count("id", filter=Q(batch__gte=0)),
            last=Max("created_at"),
        )
        .order_by()
    )
    for row in stored:
        info = by_name.get(row["stage"])
        if info is None:
            name = row["stage"]
            info = StageInfo(name, stage_title(name), stage_kind(name), stage_stream(name), False)
            by_name[name] = info
            infos.append(info)
        info.stored = bool(row["merged"])
        info.batches_stored = row["batches"]
        info.stored_at = row["last"]
    return infos


def run_stage_get(*, run: PipelineRun, stage: str) -> StageInfo | None:
    """One stage of the run by name, or None if the run has no such stage."""
    for info in run_stages_list(run=run):
        if info.name == stage:
            return info
    return None


def run_stored_stage_count(*, run: PipelineRun) -> int:
    return StageArtifact.objects.filter(run=run, batch=-1).count()


def run_batches_list(*, run: PipelineRun, stage: str) -> list[int]:
    """Batch numbers stored for a batched stage (for per-batch exports)."""
    return list(
        StageArtifact.objects.filter(run=run, stage=stage, batch__gte=0)
        .order_by("batch")
        .values_list("batch", flat=True)
    )


def _artifact_keys(run: PipelineRun, stage: str, keys: Sequence[str]) -> dict[str, Any] | None:
    """Only ``keys`` of a stage's merged artifact, extracted by the database."""
    row = (
        StageArtifact.objects.filter(run=run, stage=stage, batch=-1)
        .values(*[f"data__{k}" for k in keys])
        .first()
    )
    if row is None:
        return None
    return {k: row[f"data__{k}"] for k in keys}


def _candidates_of(run: PipelineRun, representatives_stage: str) -> dict[str, dict[str, Any]]:
    """Candidate id -> candidate (text, cluster...) of a representatives stage."""
    data = _artifact_keys(run, representatives_stage, ["candidates"]) or {}
    return {c["id"]: c for c in data.get("candidates") or []}


def _candidate_texts(run: PipelineRun, stage: str) -> dict[str, dict[str, Any]]:
    """Candidates of the representatives stage that feeds ``stage`` (same stream)."""
    stream = stage_stream(stage)
    return _candidates_of(run, f"{stream}_representatives" if stream else "representatives")


def _paginate(
    items: Sequence[Any], *, page: int | None, size: int
) -> tuple[list[Any], Page | None]:
    """A page of ``items`` (``page`` given) or the first ``size`` items (preview)."""
    if page is None:
        return list(items[:size]), None
    page_obj = Paginator(items, size).get_page(page)
    return list(page_obj.object_list), page_obj


# --------------------------------------------------------------------------- input lookups


def _pairs_by_id(study: Study, ids: Iterable[Any]) -> dict[str, PreferencePair]:
    pks = {int(i) for i in ids if str(i).isdigit()}
    if not pks:
        return {}
    qs = PreferencePair.objects.filter(pk__in=pks, dataset__study=study).only(
        "id", "external_id", "prompt", "source_preference", "source_reason"
    )
    return {str(p.pk): p for p in qs}


def _annotations_by_id(study: Study, ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
    pks = {int(i) for i in ids if str(i).isdigit()}
    if not pks:
        return {}
    rows = list(
        Annotation.objects.filter(pk__in=pks, pair__dataset__study=study)
        .select_related("participant")
        .only(
            "id",
            "pair_id",
            "preferred",
            "reason",
            "annotator_id",
            "external_annotator",
            "participant__pseudonym",
        )
    )
    names = annotator_pseudonyms(study, [a.annotator_id for a in rows if a.annotator_id])
    return {
        str(a.pk): {
            "id": a.pk,
            "pair_id": a.pair_id,
            "preferred": a.get_preferred_display(),
            "reason": a.reason,
            "author": annotation_author(a, names),
        }
        for a in rows
    }


def _statements_by_id(study: Study, ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
    pks = {int(i) for i in ids if str(i).isdigit()}
    if not pks:
        return {}
    rows = ValueStatement.objects.filter(pk__in=pks, study=study).select_related("participant")
    return {
        str(s.pk): {
            "id": s.pk,
            "text": s.text,
            "author": s.author_pseudonym,
            "question": s.question,
        }
        for s in rows
    }


# --------------------------------------------------------------------------- run outputs


def run_principles(*, run: PipelineRun) -> list[Principle]:
    """The run's final principles, best first, with evidence counts (four queries)."""
    principles = list(Principle.objects.filter(run=run).order_by("rank", "pk"))
    counts = principle_evidence_counts(principle_ids=[p.pk for p in principles])
    for p in principles:
        p.evidence_counts = counts.get(p.pk, _zero_counts())  # type: ignore[attr-defined]
    return principles


def _zero_counts() -> dict[str, int]:
    return zero_counts()


# One evidence count for every page (constitution, run, stages, comparison, exports).
principle_evidence_counts = evidence_counts_of


_THROUGH_FK = {
    "annotations": "annotation_id",
    "statements": "valuestatement_id",
    "pairs": "preferencepair_id",
}


def _through(key: str) -> Any:
    return evidence_through(key)


def principle_evidence_ids(*, principle_ids: Sequence[int]) -> dict[int, dict[str, list[int]]]:
    """Per principle: ids of the supporting annotations, statements and pairs (3 queries)."""
    out: dict[int, dict[str, list[int]]] = {
        pid: {"annotations": [], "statements": [], "pairs": []} for pid in principle_ids
    }
    if not principle_ids:
        return out
    for key in EVIDENCE_KINDS:
        fk = _THROUGH_FK[key]
        rows = (
            _through(key)
            .objects.filter(principle_id__in=principle_ids)
            .order_by("principle_id", fk)
            .values_list("principle_id", fk)
        )
        for pid, oid in rows:
            out[pid][key].append(oid)
    return out


def _latest_constitution(run: PipelineRun) -> Constitution | None:
    """The newest version of the constitution a run produced."""
    versions = sorted(run.constitutions.all(), key=lambda c: (c.version, c.pk))
    return versions[-1] if versions else None


@dataclass(slots=True)
class RunSummary:
    run: PipelineRun
    principles: list[Principle]
    constitution: Constitution | None
    origins: dict[str, int]
    mean_accuracy: float | None
    mean_relevance: float | None
    evidence: dict[str, int]
    training_pairs: int


def _mean(values: Iterable[Any]) -> float | None:
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(nums) / len(nums) if nums else None


def run_comparison_get(*, run_a: PipelineRun, run_b: PipelineRun) -> dict[str, Any]:
    """Two runs side by side: principles, stats, usage, training pairs (constant queries)."""
    pair_sets = {}
    for run in (run_a, run_b):
        pair_sets[run.pk] = set(run.training_pairs.values_list("pk", flat=True))
    runs = {
        r.pk: r
        for r in PipelineRun.objects.filter(pk__in=[run_a.pk, run_b.pk]).prefetch_related(
            Prefetch("constitutions", queryset=Constitution.objects.order_by("version"))
        )
    }
    principles = list(
        Principle.objects.filter(run_id__in=[run_a.pk, run_b.pk]).order_by("run_id", "rank", "pk")
    )
    counts = principle_evidence_counts(principle_ids=[p.pk for p in principles])
    summaries = []
    for run in (run_a, run_b):
        mine = [p for p in principles if p.run_id == run.pk]
        for p in mine:
            p.evidence_counts = counts[p.pk]  # type: ignore[attr-defined]
        summaries.append(
            RunSummary(
                run=runs[run.pk],
                principles=mine,
                constitution=_latest_constitution(runs[run.pk]),
                origins=dict(Counter(p.get_origin_display() for p in mine)),
                mean_accuracy=_mean(p.stats.get("accuracy") for p in mine),
                mean_relevance=_mean(p.stats.get("relevance") for p in mine),
                evidence={
                    k: sum(counts[p.pk][k] for p in mine)
                    for k in ("annotations", "statements", "pairs")
                },
                training_pairs=len(pair_sets[run.pk]),
            )
        )
    a, b = pair_sets[run_a.pk], pair_sets[run_b.pk]
    return {
        "runs": summaries,
        "same_training_pairs": a == b,
        "shared_training_pairs": len(a & b),
        "same_group": bool(run_a.comparison_group)
        and run_a.comparison_group == run_b.comparison_group,
        "rows": max((len(s.principles) for s in summaries), default=0),
    }


# --------------------------------------------------------------------------- constitutions


def constitution_items(*, constitution: Constitution) -> list[ConstitutionPrinciple]:
    """The constitution's principles in order, with their Principle (one query)."""
    return list(constitution.items.select_related("principle").order_by("position"))


@dataclass(slots=True)
class PrincipleEvidence:
    """Capped evidence of one principle and how many items there are in all."""

    annotations: list[dict[str, Any]] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=_zero_counts)

    def more(self, key: str) -> int:
        return max(0, self.counts[key] - len(getattr(self, key)))

    @property
    def more_annotations(self) -> int:
        return self.more("annotations")

    @property
    def more_statements(self) -> int:
        return self.more("statements")

    @property
    def more_pairs(self) -> int:
        return self.more("pairs")

    @property
    def total(self) -> int:
        return evidence_total(self.counts)


def _capped(through: Any, principle_ids: Sequence[int], order: str, cap: int) -> QuerySet:
    """The first ``cap`` through rows per principle, numbered in the database."""
    return (
        through.objects.filter(principle_id__in=principle_ids)
        .annotate(n=Window(RowNumber(), partition_by=[F("principle_id")], order_by=F(order).asc()))
        .filter(n__lte=cap)
    )


def principle_evidence_get(
    *, study: Study, principle_ids: Sequence[int], cap: int = 5
) -> dict[int, PrincipleEvidence]:
    """Per principle, up to ``cap`` annotations (reason + pseudonym), statements
    (text + pseudonym) and pairs (prompt excerpt), plus the full counts.

    A constant number of queries whatever the number of principles or evidence rows:
    the cap is applied per principle by a window function in the database.
    """
    out = {pid: PrincipleEvidence() for pid in principle_ids}
    if not principle_ids:
        return out
    for pid, counts in principle_evidence_counts(principle_ids=principle_ids).items():
        out[pid].counts = counts

    ann_rows = list(
        _capped(_through("annotations"), principle_ids, "annotation_id", cap)
        .select_related("annotation", "annotation__participant")
        .order_by("principle_id", "annotation_id")
    )
    names = annotator_pseudonyms(
        study, [r.annotation.annotator_id for r in ann_rows if r.annotation.annotator_id]
    )
    for r in ann_rows:
        a = r.annotation
        out[r.principle_id].annotations.append(
            {
                "id": a.pk,
                "pair_id": a.pair_id,
                "preferred": a.get_preferred_display(),
                "reason": a.reason,
                "author": annotation_author(a, names),
            }
        )
    stmt_rows = (
        _capped(_through("statements"), principle_ids, "valuestatement_id", cap)
        .select_related("valuestatement", "valuestatement__participant")
        .order_by("principle_id", "valuestatement_id")
    )
    for r in stmt_rows:
        s = r.valuestatement
        out[r.principle_id].statements.append(
            {"id": s.pk, "text": s.text, "author": s.author_pseudonym, "question": s.question}
        )
    pair_rows = (
        _capped(_through("pairs"), principle_ids, "preferencepair_id", cap)
        .select_related("preferencepair")
        .order_by("principle_id", "preferencepair_id")
    )
    for r in pair_rows:
        p = r.preferencepair
        out[r.principle_id].pairs.append(
            {
                "id": p.pk,
                "external_id": p.external_id,
                "prompt": _excerpt(p.prompt, 200),
                "label": p.get_source_preference_display(),
            }
        )
    return out


def constitution_versions_list(*, constitution: Constitution) -> list[Constitution]:
    """Every version in this constitution's history (both directions), oldest first.

    One query: the study's constitutions are loaded with only the columns needed and the
    ``previous`` links are walked in Python.
    """
    rows = list(
        Constitution.objects.filter(study_id=constitution.study_id)
        .select_related("run")
        .only(
            "id",
            "title",
            "version",
            "status",
            "previous_id",
            "created_at",
            "published_at",
            "run__id",
            "run__title",
            "run__method",
        )
    )
    by_id = {c.pk: c for c in rows}
    children: dict[int, list[int]] = {}
    for c in rows:
        if c.previous_id:
            children.setdefault(c.previous_id, []).append(c.pk)
    root = by_id.get(constitution.pk, constitution)
    seen = {root.pk}
    while root.previous_id and root.previous_id in by_id and root.previous_id not in seen:
        root = by_id[root.previous_id]
        seen.add(root.pk)
    lineage, stack = [], [root.pk]
    visited: set[int] = set()
    while stack:
        pk = stack.pop()
        if pk in visited or pk not in by_id:
            continue
        visited.add(pk)
        lineage.append(by_id[pk])
        stack.extend(children.get(pk, []))
    return sorted(lineage, key=lambda c: (c.version, c.created_at, c.pk))


def run_config_display(*, run: PipelineRun) -> dict[str, Any]:
    """The run's settings for display: engine bookkeeping keys (``_joined``) left out."""
    config = {k: v for k, v in (run.config or {}).items() if not str(k).startswith("_")}
    method_config = config.pop("method_config", {}) or {}
    return {"run": config, "method": method_config}
