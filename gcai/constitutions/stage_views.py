"""Presenters for the run page: one view model per stored stage (what each stage kind
shows, paginated, with its chart), and how the stages are grouped on the page.

Reads go through :mod:`gcai.constitutions.selectors`, which owns the queries and the
input lookups; this module only shapes what they return for templates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page

from gcai.charts import Bar, StackedRow, bar_chart, stacked_bar_chart
from gcai.constitutions.models import (
    Method,
    PipelineRun,
)
from gcai.constitutions.selectors import (
    MEMBERS_FULL,
    MEMBERS_PREVIEW,
    PAGE_SIZES,
    PREVIEW_SIZES,
    STREAM_TITLES,
    StageInfo,
    _annotations_by_id,
    _artifact_keys,
    _candidate_texts,
    _candidates_of,
    _excerpt,
    _paginate,
    _pairs_by_id,
    _statements_by_id,
    stage_stream,
)

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
