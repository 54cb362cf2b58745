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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet, TextField, Window
from django.db.models.functions import Cast, RowNumber

from annotations.models import (
    Annotation,
    Membership,
    PreferencePair,
    Role,
    Study,
    ValueStatement,
)
from gcai.constitutions import pipeline
from gcai.constitutions.charts import Bar, StackedRow, bar_chart, stacked_bar_chart
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


def _annotator_pseudonyms(study: Study, user_ids: Iterable[int]) -> dict[int, str]:
    """Study pseudonyms of annotator accounts; never usernames or emails."""
    out: dict[int, str] = {}
    rows = (
        Membership.objects.filter(study=study, user_id__in=set(user_ids))
        .order_by("user_id", "role")  # "annotator" sorts before "researcher"
        .values_list("user_id", "role", "pseudonym")
    )
    for user_id, role, pseudonym in rows:
        if role == Role.ANNOTATOR or user_id not in out:
            out.setdefault(user_id, pseudonym)
    return out


def annotation_author(annotation: Annotation, pseudonyms: dict[int, str]) -> str:
    """Who wrote an annotation, as a pseudonym only."""
    if annotation.annotator_id:
        return pseudonyms.get(annotation.annotator_id) or "annotator without pseudonym"
    if annotation.participant_id:
        return annotation.participant.pseudonym
    return annotation.external_annotator or "unknown"


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
    names = _annotator_pseudonyms(study, [a.annotator_id for a in rows if a.annotator_id])
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


# --------------------------------------------------------------------------- stage views


@dataclass(slots=True)
class StageView:
    """What a template needs to show one stored stage."""

    info: StageInfo
    kind: str
    items: list[Any] = field(default_factory=list)
    total: int = 0
    page: Page | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    chart: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def more(self) -> int:
        """How many items the preview leaves out."""
        return max(0, self.total - len(self.items)) if self.page is None else 0


def stage_artifact_view(
    *,
    run: PipelineRun,
    info: StageInfo,
    page: int | None = None,
    status: str = "",
) -> StageView:
    """Render-ready data of one stored stage.

    ``page=None`` gives the capped preview used on the run page; a page number gives
    one page of the stage's own listing. ``status`` filters generation items
    (ok / skipped / error / no_values).
    """
    view = StageView(info=info, kind=info.kind)
    if not info.stored:
        return view
    builder = _BUILDERS.get(info.kind, _other_view)
    builder(run, view, page, status)
    return view


def _generate_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    data = _artifact_keys(run, view.info.name, ["items", "counts"]) or {}
    items = data.get("items") or []
    view.summary = dict(data.get("counts") or {})
    if status:
        items = [i for i in items if i.get("status") == status]
        view.extra["status"] = status
    view.total = len(items)
    shown, view.page = _paginate(
        items,
        page=page,
        size=PAGE_SIZES["generate"] if page is not None else PREVIEW_SIZES["generate"],
    )
    # Show the human input each item came from, looked up for the shown items only.
    study = run.study
    pair_ids = [pid for i in shown for pid in (i.get("evidence") or {}).get("pair_ids", [])]
    judgement_ids = [
        jid for i in shown for jid in (i.get("evidence") or {}).get("judgement_ids", [])
    ]
    statement_ids = [
        sid for i in shown for sid in (i.get("evidence") or {}).get("statement_ids", [])
    ]
    ann_ids = [j.split(":", 1)[1] for j in judgement_ids if str(j).startswith("ann:")]
    src_ids = [j.split(":", 1)[1] for j in judgement_ids if str(j).startswith("src:")]
    pairs = _pairs_by_id(study, [*pair_ids, *src_ids])
    annotations = _annotations_by_id(study, ann_ids)
    statements = _statements_by_id(study, statement_ids)
    rows = []
    for item in shown:
        evidence = item.get("evidence") or {}
        sources = []
        for jid in evidence.get("judgement_ids", []):
            kind, _, pk = str(jid).partition(":")
            if kind == "ann" and pk in annotations:
                a = annotations[pk]
                sources.append(
                    {
                        "kind": "annotation",
                        "label": f"Annotation {pk} by {a['author']} (chose {a['preferred']})",
                        "text": _excerpt(a["reason"]),
                    }
                )
            elif kind == "src" and pk in pairs:
                sources.append(
                    {
                        "kind": "source reason",
                        "label": f"Reason imported with pair {pk}",
                        "text": _excerpt(pairs[pk].source_reason),
                    }
                )
        for sid in evidence.get("statement_ids", []):
            if str(sid) in statements:
                s = statements[str(sid)]
                sources.append(
                    {
                        "kind": "statement",
                        "label": f"Statement {sid} by {s['author']}",
                        "text": _excerpt(s["text"]),
                    }
                )
        if not evidence.get("judgement_ids"):
            # ICAI explains the pair's label; GCAI items already show the reason.
            for pid in evidence.get("pair_ids", []):
                if str(pid) in pairs:
                    p = pairs[str(pid)]
                    sources.append(
                        {
                            "kind": "pair",
                            "label": f"Pair {pid} (label {p.get_source_preference_display()})",
                            "text": _excerpt(p.prompt, 160),
                        }
                    )
        rows.append(
            {
                "source_id": item.get("source_id", ""),
                "status": item.get("status", "ok"),
                "note": item.get("note", ""),
                "principles": item.get("principles") or [],
                "sources": sources,
            }
        )
    view.items = rows
    view.extra["statuses"] = [
        s for s in ("ok", "skipped", "error", "no_values") if view.summary.get(s)
    ]


def _cluster_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    keys = ["clusters", "n_texts", "n_clusters", "n_clusters_requested", "embedder"]
    data = _artifact_keys(run, view.info.name, keys) or {}
    clusters = data.get("clusters") or []
    view.summary = {
        "texts": data.get("n_texts") or 0,
        "clusters": data.get("n_clusters") if data.get("n_clusters") is not None else len(clusters),
        "requested": data.get("n_clusters_requested") or 0,
        "embedder": data.get("embedder") or "",
    }
    view.total = len(clusters)
    shown, view.page = _paginate(
        clusters,
        page=page,
        size=PAGE_SIZES["cluster"] if page is not None else PREVIEW_SIZES["cluster"],
    )
    limit = MEMBERS_FULL if page is not None else MEMBERS_PREVIEW
    rows = []
    for cluster in shown:
        members = cluster.get("members") or []
        # Identical texts from different inputs are one line with a count: frequency
        # is what the clustering saw, and repeating the line hides the other members.
        counts: Counter[str] = Counter(m.get("text", "") for m in members)
        best: dict[str, float] = {}
        for m in members:
            text = m.get("text", "")
            best[text] = max(best.get(text, -1.0), float(m.get("similarity", 0.0)))
        distinct = list(dict.fromkeys(m.get("text", "") for m in members))
        rows.append(
            {
                "id": cluster.get("id"),
                "size": len(members),
                "distinct": len(distinct),
                "members": [
                    {"text": t, "count": counts[t], "similarity": best[t]} for t in distinct[:limit]
                ],
                "more": max(0, len(distinct) - limit),
            }
        )
    view.items = rows


def _representatives_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    data = _artifact_keys(run, view.info.name, ["candidates"]) or {}
    candidates = data.get("candidates") or []
    view.total = len(candidates)
    methods = Counter(c.get("method", "") for c in candidates)
    view.summary = {"candidates": len(candidates), "methods": dict(methods)}
    shown, view.page = _paginate(
        candidates,
        page=page,
        size=PAGE_SIZES["representatives"]
        if page is not None
        else PREVIEW_SIZES["representatives"],
    )
    view.items = [
        {
            "id": c.get("id"),
            "text": c.get("text", ""),
            "cluster_id": c.get("cluster_id"),
            "cluster_size": c.get("cluster_size", 0),
            "method": c.get("method", ""),
            "note": c.get("note", ""),
            "evidence": _evidence_counts(c.get("evidence") or {}),
        }
        for c in shown
    ]


def _evidence_counts(evidence: dict[str, Any]) -> dict[str, int]:
    return {
        "pairs": len(evidence.get("pair_ids") or []),
        "judgements": len(evidence.get("judgement_ids") or []),
        "statements": len(evidence.get("statement_ids") or []),
        "participants": len(evidence.get("participants") or []),
    }


def _first(data: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``data`` (stored shapes gained prefixes over time)."""
    for key in keys:
        if key in data:
            return data[key]
    return None


def ranking_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """A principle's or candidate's stats under stable names for templates and charts."""
    return {
        **stats,
        "for": stats.get("for"),
        "against": stats.get("against"),
        "accuracy": stats.get("accuracy"),
        "relevance": stats.get("relevance"),
        "support": stats.get("support"),
        "annotations": _first(stats, "n_judgements", "judgements"),
        "statements": _first(stats, "n_statements", "statements"),
        "evidence_pairs": _first(stats, "n_pairs", "pairs"),
        "people": _first(stats, "n_participants"),
    }


def _vote_rows(table: dict[str, Any], candidates: dict[str, dict[str, Any]]) -> list[dict]:
    rows = []
    for r in table.get("rows") or []:
        cid = r.get("candidate_id", "")
        rows.append(
            {
                "id": cid,
                "text": (candidates.get(cid) or {}).get("text", cid),
                "for": r.get("for", 0),
                "against": r.get("against", 0),
                "abstain": r.get("abstain", 0),
                "invalid": r.get("invalid", 0),
                "pairs": _first(r, "voted_pairs", "pairs") or 0,
                "relevance": r.get("relevance"),
                "accuracy": r.get("accuracy"),
            }
        )
    return rows


def vote_chart(rows: Sequence[dict[str, Any]], *, title: str, chart_id: str) -> str:
    """Stacked for/against/abstain/invalid bars, one per principle."""
    return stacked_bar_chart(
        [
            StackedRow(
                f"{r['id']}: {r['text']}",
                {k: r[k] for k in ("for", "against", "abstain", "invalid")},
            )
            for r in rows
        ],
        title=title,
        chart_id=chart_id,
    )


def _tally(pairs: list[dict[str, Any]], candidate_ids: list[str]) -> dict[str, Any]:
    from gcai.core.voting import PairVotes, VoteOutput, tally

    output = VoteOutput(pairs=[PairVotes.from_dict(p) for p in pairs])
    ids = candidate_ids or sorted({cid for p in pairs for cid in p.get("answers", {})})
    return tally(output, ids).to_dict()


def _vote_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    # The calls (the bulk of the artifact) are read only on the stage's own page.
    keys = ["pairs", "n_calls", "n_failed_calls"] + (["calls"] if page is not None else [])
    data = _artifact_keys(run, view.info.name, keys) or {}
    pairs = data.get("pairs") or []
    candidates = _candidate_texts(run, view.info.name)
    table = _tally(pairs, list(candidates))
    rows = _vote_rows(table, candidates)
    labels = Counter(p.get("label", "") for p in pairs)
    view.summary = {
        "pairs": len(pairs),
        "calls": data.get("n_calls") or 0,
        "failed_calls": data.get("n_failed_calls") or 0,
        "labels": dict(sorted(labels.items())),
        "candidates": len(rows),
    }
    view.extra["rows"] = rows
    view.chart = vote_chart(
        rows, title=f"Votes per principle: {view.info.title}", chart_id=f"chart-{view.info.name}"
    )
    if page is not None:
        # Per pair: the aggregated answer of every principle, in the pair's a/b terms.
        view.total = len(pairs)
        shown, view.page = _paginate(pairs, page=page, size=PAGE_SIZES["vote"])
        outcomes = table.get("votes") or {}
        view.items = [
            {
                "pair_id": p.get("pair_id"),
                "label": p.get("label"),
                "counts": dict(
                    Counter(
                        outcomes.get(r["id"], {}).get(p.get("pair_id"), "invalid") for r in rows
                    )
                ),
            }
            for p in shown
        ]
        failed = [c for c in data.get("calls") or [] if c.get("error")]
        view.extra["failed_calls"] = failed[:50]
        view.extra["failed_more"] = max(0, len(failed) - 50)


def _decision_rows(
    table_rows: list[dict[str, Any]],
    order: list[str],
    dropped: dict[str, str],
    selected: list[str],
) -> list[dict[str, Any]]:
    by_id = {r["id"]: r for r in table_rows}
    out = []
    seen: set[str] = set()
    for cid in [*order, *[r["id"] for r in table_rows]]:
        if cid in seen or cid not in by_id:
            continue
        seen.add(cid)
        row = dict(by_id[cid])
        if cid in selected:
            row["decision"] = f"kept (rank {selected.index(cid) + 1})"
            row["kept"] = True
        else:
            row["decision"] = dropped.get(cid, "not kept")
            row["kept"] = False
        out.append(row)
    return out


def _filter_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    # Only the table's rows: its per-pair outcomes grow with candidates x pairs.
    keys = ["table__rows", "ranked", "dropped", "shortlist", "selected", "principles"]
    data = _artifact_keys(run, view.info.name, keys) or {}
    candidates = _candidate_texts(run, view.info.name)
    table_rows = _vote_rows({"rows": data.get("table__rows") or []}, candidates)
    selected = list(data.get("selected") or [])
    decisions = _decision_rows(
        table_rows, list(data.get("ranked") or []), dict(data.get("dropped") or {}), selected
    )
    view.total = len(decisions)
    view.items, view.page = _paginate(
        decisions,
        page=page,
        size=PAGE_SIZES["filter"] if page is not None else PREVIEW_SIZES["filter"],
    )
    view.summary = {
        "candidates": len(decisions),
        "passed": len(data.get("ranked") or []),
        "shortlist": len(data.get("shortlist") or []),
        "selected": len(selected),
    }
    view.chart = vote_chart(
        table_rows,
        title="Votes per candidate principle",
        chart_id=f"chart-{view.info.name}",
    )
    view.extra["principles"] = data.get("principles") or []


def _rank_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    keys = ["stream", "ranked", "dropped", "table__rows"]
    data = _artifact_keys(run, view.info.name, keys) or {}
    candidates = _candidate_texts(run, view.info.name)
    ranked = [
        {
            "rank": i,
            "id": r["candidate"].get("id"),
            "text": r["candidate"].get("text", ""),
            "stats": ranking_stats(r.get("stats") or {}),
        }
        for i, r in enumerate(data.get("ranked") or [], 1)
    ]
    dropped = [
        {"id": cid, "text": (candidates.get(cid) or {}).get("text", cid), "reason": reason}
        for cid, reason in (data.get("dropped") or {}).items()
    ]
    view.total = len(ranked)
    view.items, view.page = _paginate(
        ranked,
        page=page,
        size=PAGE_SIZES["rank"] if page is not None else PREVIEW_SIZES["rank"],
    )
    view.summary = {
        "stream": data.get("stream") or stage_stream(view.info.name),
        "ranked": len(ranked),
        "dropped": len(dropped),
    }
    view.extra["dropped"] = dropped
    table_rows = data.get("table__rows")
    if table_rows is not None:
        rows = _vote_rows({"rows": table_rows}, candidates)
        view.extra["rows"] = rows
        view.chart = vote_chart(
            rows,
            title=f"Votes per principle: {view.info.title}",
            chart_id=f"chart-{view.info.name}",
        )
    else:
        # General stream: support (distinct participants) is what ranks it.
        view.chart = bar_chart(
            [Bar(f"{r['id']}: {r['text']}", r["stats"].get("support")) for r in ranked],
            title="Participants behind each general principle",
            chart_id=f"chart-{view.info.name}",
        )


def _merge_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    data = _artifact_keys(run, view.info.name, ["principles", "checks", "dropped"]) or {}
    texts = {
        **_candidates_of(run, "contextual_representatives"),
        **_candidates_of(run, "general_representatives"),
    }
    checks = [
        {
            **c,
            "contextual_text": (texts.get(c.get("contextual_id")) or {}).get("text", ""),
            "general_text": (texts.get(c.get("general_id")) or {}).get("text", ""),
        }
        for c in data.get("checks") or []
    ]
    principles = data.get("principles") or []
    view.total = len(principles)
    view.items, view.page = _paginate(
        principles,
        page=page,
        size=PAGE_SIZES["merge"] if page is not None else PREVIEW_SIZES["merge"],
    )
    origins = Counter(p.get("origin", "") for p in principles)
    view.summary = {
        "principles": len(principles),
        "origins": dict(origins),
        "similar": len(checks),
        "confirmed": sum(1 for c in checks if c.get("same") is True),
        "rejected": sum(1 for c in checks if c.get("same") is False),
        "failed": sum(1 for c in checks if c.get("same") is None),
        "merged": sum(1 for c in checks if c.get("merged")),
    }
    view.extra["checks"] = checks
    view.extra["dropped"] = [
        {"id": cid, "text": (texts.get(cid) or {}).get("text", cid), "reason": reason}
        for cid, reason in (data.get("dropped") or {}).items()
    ]


def _triplets_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    data = _artifact_keys(run, view.info.name, ["clusters", "n_pairs"]) or {}
    clusters = data.get("clusters") or []
    view.summary = {
        "pairs": data.get("n_pairs") or 0,
        "clusters": len(clusters),
        "statuses": dict(Counter(c.get("status", "") for c in clusters)),
    }
    view.total = len(clusters)
    shown, view.page = _paginate(
        clusters,
        page=page,
        size=PAGE_SIZES["triplets"] if page is not None else PREVIEW_SIZES["triplets"],
    )
    view.items = [
        {
            "id": c.get("id"),
            "encoder": c.get("encoder"),
            "score": c.get("score"),
            "pairs": len(c.get("pair_ids") or []),
            "status": c.get("status"),
            "triplet": c.get("triplet") or [],
        }
        for c in shown
    ]


def _other_view(run: PipelineRun, view: StageView, page: int | None, status: str) -> None:
    # An unknown kind (a stage added later): offer the export rather than guess a layout.
    view.summary = {}


_BUILDERS = {
    "generate": _generate_view,
    "cluster": _cluster_view,
    "representatives": _representatives_view,
    "vote": _vote_view,
    "filter": _filter_view,
    "rank": _rank_view,
    "merge": _merge_view,
    "triplets": _triplets_view,
}


# --------------------------------------------------------------------------- exports


def stage_artifact_stream(
    *, run: PipelineRun, stage: str, batch: int = -1, chunk_size: int = 64 * 1024
) -> Iterator[str] | None:
    """The stored artifact as a JSON document, in chunks; None if it is not stored.

    The database hands back the stored JSON as text (no decode/encode round trip in
    Python), wrapped with the run, stage and batch it belongs to.
    """
    row = (
        StageArtifact.objects.filter(run=run, stage=stage, batch=batch)
        .annotate(text=Cast("data", output_field=TextField()))
        .values_list("text", "created_at")
        .first()
    )
    if row is None:
        return None
    text, created_at = row
    return _wrap(run, [(stage, batch, created_at, text)], chunk_size)


def run_artifacts_stream(*, run: PipelineRun, chunk_size: int = 64 * 1024) -> Iterator[str]:
    """Every merged stage artifact of the run as one JSON document, in chunks.

    Artifacts are fetched one at a time, so memory holds one stage, never the run.
    """
    rows = (
        StageArtifact.objects.filter(run=run, batch=-1)
        .order_by("created_at", "pk")
        .annotate(text=Cast("data", output_field=TextField()))
        .values_list("stage", "batch", "created_at", "text")
        .iterator(chunk_size=1)
    )
    return _wrap(run, rows, chunk_size)


def _wrap(
    run: PipelineRun, rows: Iterable[tuple[str, int, Any, str]], chunk_size: int
) -> Iterator[str]:
    import json

    def header(stage: str, batch: int, created_at: Any) -> str:
        meta = {"stage": stage, "batch": batch, "created_at": created_at.isoformat()}
        return json.dumps(meta)[:-1] + ', "data": '

    yield json.dumps({"run": run.pk, "method": run.method, "title": run.title})[:-1]
    yield ', "artifacts": ['
    for i, (stage, batch, created_at, text) in enumerate(rows):
        yield ("," if i else "") + header(stage, batch, created_at)
        for start in range(0, len(text), chunk_size):
            yield text[start : start + chunk_size]
        yield "}"
    yield "]}"


def artifact_list(*, run: PipelineRun) -> list[dict[str, Any]]:
    """Every stored artifact of the run without its data (stage, batch, time)."""
    rows = StageArtifact.objects.filter(run=run).order_by("created_at", "pk")
    return [
        {
            "stage": r["stage"],
            "stage_title": stage_title(r["stage"]),
            "kind": stage_kind(r["stage"]),
            "batch": r["batch"],
            "created_at": r["created_at"],
        }
        for r in rows.values("stage", "batch", "created_at")
    ]


def artifact_data(*, run: PipelineRun, stage: str, batch: int = -1) -> Any:
    """One artifact's data (decoded), or None."""
    return (
        StageArtifact.objects.filter(run=run, stage=stage, batch=batch)
        .values_list("data", flat=True)
        .first()
    )


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
    names = _annotator_pseudonyms(
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


def stage_groups(*, views: Sequence[StageView], method: str) -> list[tuple[str, list[StageView]]]:
    """Stages grouped for the run page: GCAI's two streams, then the merge."""
    if method != Method.GCAI:
        return [("Stages", list(views))]
    by_stream: dict[str, list[StageView]] = {"contextual": [], "general": [], "": []}
    for view in views:
        by_stream.setdefault(view.info.stream, []).append(view)
    groups = [(STREAM_TITLES[s], by_stream[s]) for s in ("contextual", "general") if by_stream[s]]
    if by_stream[""]:
        groups.append(("Merge into one constitution", by_stream[""]))
    return groups


def run_config_display(*, run: PipelineRun) -> dict[str, Any]:
    """The run's settings for display: engine bookkeeping keys (``_joined``) left out."""
    config = {k: v for k, v in (run.config or {}).items() if not str(k).startswith("_")}
    method_config = config.pop("method_config", {}) or {}
    return {"run": config, "method": method_config}
