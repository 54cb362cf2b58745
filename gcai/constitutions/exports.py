"""Constitution exports: JSON with every principle's origin, statistics and evidence ids,
a readable Markdown document, and plain text to paste into a system prompt.

Offered by the study's Data page, the API and ``manage.py export_data`` through
``annotations.exports.CONSTITUTION_EXPORTS``, which this app fills when it loads.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Prefetch

from annotations.exports import ExportKind, iso
from annotations.models import Annotation, PreferencePair, ValueStatement


def _constitution_items(constitution) -> list[Any]:
    ids_only = {
        "principle__supporting_pairs": PreferencePair.objects.only("id"),
        "principle__supporting_annotations": Annotation.objects.only("id"),
        "principle__supporting_statements": ValueStatement.objects.only("id"),
    }
    return list(
        constitution.items.select_related("principle")
        .prefetch_related(*(Prefetch(k, queryset=q.order_by("id")) for k, q in ids_only.items()))
        .order_by("position")
    )


def constitution_as_dict(*, constitution) -> dict[str, Any]:
    """A constitution with each principle's origin, statistics and evidence ids."""
    run = constitution.run
    principles = []
    for item in _constitution_items(constitution):
        principle = item.principle
        principles.append(
            {
                "position": item.position,
                "text": item.text,
                "principle_id": principle.pk,
                "original_text": principle.text,
                "origin": principle.origin,
                "rank": principle.rank,
                "stats": principle.stats or {},
                "evidence": {
                    "pairs": [p.pk for p in principle.supporting_pairs.all()],
                    "annotations": [a.pk for a in principle.supporting_annotations.all()],
                    "statements": [s.pk for s in principle.supporting_statements.all()],
                },
            }
        )
    return {
        "format": "gcai-constitution",
        "format_version": 1,
        "id": constitution.pk,
        "title": constitution.title,
        "version": constitution.version,
        "status": constitution.status,
        "method": constitution.method or (run.method if run else ""),
        "study": {"id": constitution.study_id, "name": constitution.study.name},
        "run": None
        if run is None
        else {
            "id": run.pk,
            "method": run.method,
            "seed": run.seed,
            "config": run.config,
            "llm_model": run.llm_model,
            "finished_at": iso(run.finished_at),
        },
        "created_at": iso(constitution.created_at),
        "published_at": iso(constitution.published_at),
        "principles": principles,
    }


def constitution_export_json(*, constitution) -> str:
    return json.dumps(constitution_as_dict(constitution=constitution), ensure_ascii=False, indent=2)


def constitution_export_markdown(*, constitution) -> str:
    """A readable document: numbered principles, each with its origin and support."""
    data = constitution_as_dict(constitution=constitution)
    lines = [f"# {data['title']} (version {data['version']})", ""]
    facts = [f for f in (data["method"], data["status"]) if f]
    facts.append(f"{len(data['principles'])} principles")
    lines += [" · ".join(facts), ""]
    for p in data["principles"]:
        lines.append(f"{p['position']}. {p['text']}")
        details = [f"origin: {p['origin']}"]
        stats = p["stats"]
        if "for" in stats or "against" in stats:
            details.append(f"for {stats.get('for', 0)}, against {stats.get('against', 0)}")
        evidence = p["evidence"]
        counts = [f"{len(v)} {k}" for k, v in evidence.items() if v]
        if counts:
            details.append("evidence: " + ", ".join(counts))
        lines.append(f"   - {' · '.join(details)}")
    return "\n".join(lines) + "\n"


def constitution_export_text(*, constitution) -> str:
    """Plain text to paste into a model's system prompt."""
    items = _constitution_items(constitution)
    body = "\n".join(f"{i}. {item.text.strip()}" for i, item in enumerate(items, start=1))
    return f"When you respond, follow these principles:\n\n{body}\n"


EXPORTS = {
    "json": ExportKind(constitution_export_json, "application/json; charset=utf-8", "json"),
    "md": ExportKind(constitution_export_markdown, "text/markdown; charset=utf-8", "md"),
    "txt": ExportKind(constitution_export_text, "text/plain; charset=utf-8", "txt"),
}
