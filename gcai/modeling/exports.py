"""Training data from a study's pairs, conditioned on a published constitution.

Rows are built by :mod:`gcai.core.training_data`; this module picks the pairs and their
labels, the principles relevant to each pair, and streams JSON lines per split, with a
provenance sidecar. Nothing is stored: an export is a pure function of the published
(immutable) constitution, the pairs and the settings, so it is recomputed on request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from annotations.models import Annotation, Dataset, PreferencePair, Split, Study
from gcai.constitutions.models import Constitution, ConstitutionPrinciple, Evaluation
from gcai.constitutions.runs import pair_label
from gcai.core.training_data import ExportPair, ExportSettings, constitution_block, rows_for
from gcai.jobs.models import JobStatus

PARTS = (Split.TRAIN.value, Split.TEST.value, Split.UNASSIGNED.value)
FORMAT_VERSION = 1
_CHUNK = 1000


class ExportError(ValueError):
    """An export that cannot be made; the message names the setting and is safe to show."""


@dataclass(frozen=True)
class ExportPlan:
    study: Study
    constitution: Constitution
    datasets: list[Dataset]
    settings: ExportSettings
    principles: list[str]
    evaluation: Evaluation | None = None

    def pairs(self) -> QuerySet[PreferencePair]:
        return PreferencePair.objects.filter(dataset__in=self.datasets)


def export_plan(
    *,
    constitution: Constitution,
    settings: ExportSettings | dict[str, Any] | None = None,
    dataset_ids: Sequence[int] | None = None,
    evaluation_id: int | None = None,
) -> ExportPlan:
    """Validate an export of ``constitution`` (published only) over the study's datasets.

    ``evaluation_id`` names an evaluation of the same constitution whose per-principle
    analysis marks the principles relevant to each pair it judged.
    """
    if not constitution.is_published:
        raise ExportError(
            "constitution: only published constitutions can be exported (publish it first, "
            "so the training data always refers to an immutable version)"
        )
    try:
        if not isinstance(settings, ExportSettings):
            settings = ExportSettings.from_dict(settings or {})
    except (TypeError, ValueError) as exc:
        raise ExportError(str(exc)) from None
    study = constitution.study
    datasets = list(Dataset.objects.filter(study=study).order_by("pk"))
    if dataset_ids:
        wanted = {int(d) for d in dataset_ids}
        datasets = [d for d in datasets if d.pk in wanted]
        missing = sorted(wanted - {d.pk for d in datasets})
        if missing:
            raise ExportError(f"datasets: no dataset {missing[0]} in this study")
    if not datasets:
        raise ExportError("datasets: this study has no dataset to export")
    evaluation = None
    if evaluation_id is not None:
        evaluation = Evaluation.objects.filter(
            pk=evaluation_id, study=study, constitution=constitution
        ).first()
        if evaluation is None:
            raise ExportError(f"evaluation: no evaluation {evaluation_id} of this constitution")
        if evaluation.status != JobStatus.SUCCEEDED:
            raise ExportError("evaluation: has not finished")
    principles = list(
        ConstitutionPrinciple.objects.filter(constitution=constitution)
        .order_by("position")
        .values_list("text", flat=True)
    )
    if not principles:
        raise ExportError("constitution: has no principles")
    return ExportPlan(study, constitution, datasets, settings, principles, evaluation)


# --------------------------------------------------------------------------- inputs


def _labels(plan: ExportPlan) -> dict[int, str]:
    """Pair id -> label (source preference, else the human annotators' majority)."""
    rows = list(plan.pairs().only("pk", "source_preference"))
    unlabelled = [p.pk for p in rows if p.source_preference == "none"]
    choices: dict[int, list[str]] = {}
    if unlabelled:
        human = Annotation.objects.filter(pair_id__in=unlabelled).exclude(
            metadata__has_key="annotator_type"
        )
        for pair_id, preferred in human.values_list("pair_id", "preferred"):
            choices.setdefault(pair_id, []).append(preferred)
    return {p.pk: str(pair_label(p, choices.get(p.pk, ()))) for p in rows}


def _relevance(plan: ExportPlan, labels: dict[int, str]) -> dict[int, set[int]]:
    """Pair id -> positions of the principles relevant to it.

    Two sources: the pairs each principle was grounded in when its run built it (its
    evidence), and, with an evaluation, the principles its judge said favour the side
    the human chose on that pair.
    """
    out: dict[int, set[int]] = {}
    through = ConstitutionPrinciple.objects.filter(constitution=plan.constitution)
    evidence = through.values_list("position", "principle__supporting_pairs")
    for position, pair_id in evidence:
        if pair_id is not None and pair_id in labels:
            out.setdefault(pair_id, set()).add(position)
    if plan.evaluation is not None:
        for j in (plan.evaluation.results or {}).get("judgements") or []:
            pk = int(j["pair_id"]) if str(j.get("pair_id", "")).isdigit() else None
            if pk is None or pk not in labels:
                continue
            for number, side in (j.get("principle_votes") or {}).items():
                if side == labels[pk]:
                    out.setdefault(pk, set()).add(int(number))
    return out


# --------------------------------------------------------------------------- rows


def _export_pairs(plan: ExportPlan, part: str) -> Iterator[ExportPair]:
    labels = _labels(plan)
    relevant = _relevance(plan, labels) if plan.settings.relevant_only else {}
    pairs = (
        plan.pairs()
        .filter(split=part)
        .order_by("dataset_id", "pk")
        .only("pk", "prompt", "prompt_messages", "response_a", "response_b")
    )
    for pair in pairs.iterator(chunk_size=_CHUNK):
        yield ExportPair(
            prompt=pair.prompt,
            response_a=pair.response_a,
            response_b=pair.response_b,
            label=labels.get(pair.pk, "none"),
            prompt_messages=pair.prompt_messages or None,
            relevant=tuple(sorted(relevant.get(pair.pk, ()))),
        )


def export_rows(plan: ExportPlan, part: str) -> Iterator[dict[str, Any]]:
    """The training rows of one split, in pair order (ties and unlabelled pairs skipped)."""
    if part not in PARTS:
        raise ExportError(f"part: must be one of {', '.join(PARTS)}")
    for pair in _export_pairs(plan, part):
        yield from rows_for(pair, plan.principles, plan.settings)


def export_lines(plan: ExportPlan, part: str) -> Iterator[str]:
    """JSON lines of :func:`export_rows`, for streaming responses and files."""
    for row in export_rows(plan, part):
        yield json.dumps(row, ensure_ascii=False) + "\n"


def export_provenance(plan: ExportPlan) -> dict[str, Any]:
    """The sidecar: where the data came from, the settings, and what each file holds."""
    labels = _labels(plan)
    relevant = _relevance(plan, labels) if plan.settings.relevant_only else {}
    splits = dict(plan.pairs().values_list("pk", "split"))
    counts: dict[str, dict[str, int]] = {}
    per_pair = {"dpo": 1, "sft": 1, "kto": 2}[plan.settings.kind]
    for part in PARTS:
        ids = [pk for pk, split in splits.items() if split == part]
        decisive = [pk for pk in ids if labels.get(pk) in ("a", "b")]
        counts[part] = {
            "pairs": len(ids),
            "rows": len(decisive) * per_pair,
            "excluded_ties": sum(1 for pk in ids if labels.get(pk) == "tie"),
            "excluded_other": sum(1 for pk in ids if labels.get(pk) not in ("a", "b", "tie")),
        }
        if plan.settings.relevant_only:
            counts[part]["whole_constitution_fallback"] = sum(
                1 for pk in decisive if not relevant.get(pk)
            )
    c = plan.constitution
    return {
        "format_version": FORMAT_VERSION,
        "created_at": timezone.now().isoformat(),
        "constitution": {
            "id": c.pk,
            "title": c.title,
            "version": c.version,
            "method": c.method,
            "published_at": c.published_at.isoformat() if c.published_at else None,
            "principles": plan.principles,
        },
        "conditioning_text": constitution_block(
            plan.principles, rule=plan.settings.rule, header=plan.settings.header
        ),
        "study": {"id": plan.study.pk, "name": plan.study.name},
        "datasets": [{"id": d.pk, "name": d.name} for d in plan.datasets],
        "evaluation_id": plan.evaluation.pk if plan.evaluation else None,
        "settings": plan.settings.to_dict(),
        "files": {part: f"{part}.jsonl" for part in PARTS if counts[part]["rows"]},
        "counts": counts,
        "notes": [
            "Ties, both-bad and unlabelled pairs are excluded: a preference row needs a "
            "chosen and a rejected response (SFT rows answer with the chosen one).",
            "Labels: the pair's source preference, else the human annotators' majority.",
            "Each split is its own file; pairs keep the split they have in the study.",
        ],
    }


def export_write(plan: ExportPlan, directory: Path) -> dict[str, Any]:
    """Write one JSON-lines file per non-empty split and ``provenance.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    provenance = export_provenance(plan)
    for part, name in provenance["files"].items():
        with (directory / name).open("w", encoding="utf-8") as handle:
            handle.writelines(export_lines(plan, part))
    (directory / "provenance.json").write_text(
        json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return provenance
