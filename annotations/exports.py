"""Exports: every kind of data a study holds, as files other tools can read.

Row exports are generators of text chunks so pages and the API can stream them
(``StreamingHttpResponse``) without building the file in memory. Each reads in a fixed
number of queries per chunk of rows (``select_related``/``prefetch_related`` with
``iterator(chunk_size=...)``); tests pin the query counts.

People appear only under pseudonyms: a member's ``Membership.pseudonym``, a
participant's ``Participant.pseudonym`` or an imported annotator's external id. No
username, e-mail or Prolific id is ever written.

Pair exports (JSONL and CSV) are also import formats (``annotations.importers.gcai``),
so export -> import reproduces the pairs and their annotations. CSVs are written by
``gcai.csvsafe.csv_lines``, which neutralises spreadsheet formulas; the importers undo
that escape, so the round trip still holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from annotations.models import (
    Annotation,
    Dataset,
    Membership,
    PreferencePair,
    Role,
    SourcePreference,
    Split,
    Study,
    ValueStatement,
)
from gcai.csvsafe import csv_lines

CHUNK_SIZE = 500
ICAI_DEFAULT_ANNOTATOR = "gcai-source"

PAIR_CSV_COLUMNS = [
    "pair_id",
    "id",
    "dataset",
    "prompt",
    "prompt_messages",
    "response_a",
    "response_b",
    "source_preference",
    "source_reason",
    "score_a",
    "score_b",
    "split",
    "metadata",
    "annotation_id",
    "annotator",
    "annotator_kind",
    "preferred",
    "reason",
    "shown_order",
    "shown_swapped",
    "shown_at",
    "submitted_at",
    "duration_ms",
    "annotation_metadata",
]
STATEMENT_COLUMNS = [
    "id",
    "participant",
    "participant_kind",
    "question",
    "text",
    "moderation",
    "moderated_at",
    "created_at",
]


# --- Helpers -------------------------------------------------------------------------------
def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _json_cell(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


def member_pseudonyms(*, study: Study) -> dict[int, str]:
    """user id -> the pseudonym they annotate under in ``study`` (annotator role first)."""
    out: dict[int, str] = {}
    rows = Membership.objects.filter(study=study).values_list("user_id", "role", "pseudonym")
    for user_id, _role, pseudonym in sorted(rows, key=lambda r: r[1] != Role.ANNOTATOR):
        out.setdefault(user_id, pseudonym)
    return out


def _author(annotation: Annotation, pseudonyms: dict[int, str]) -> tuple[str, str]:
    if annotation.annotator_id:
        # A member who has since left the study keeps a stable, identity-free label.
        return pseudonyms.get(annotation.annotator_id, f"U-{annotation.annotator_id}"), "member"
    if annotation.participant_id:
        return annotation.participant.pseudonym, "participant"
    return annotation.external_annotator, "external"


def pairs_for_export(*, study: Study, dataset: Dataset | None = None) -> QuerySet[PreferencePair]:
    """The study's pairs (optionally one dataset's) with annotations prefetched."""
    pairs = PreferencePair.objects.filter(dataset__study=study)
    if dataset is not None:
        pairs = pairs.filter(dataset=dataset)
    return (
        pairs.select_related("dataset")
        .prefetch_related(
            Prefetch(
                "annotations",
                queryset=Annotation.objects.select_related("participant").order_by("id"),
            )
        )
        .order_by("dataset_id", "id")
    )


def annotation_as_dict(annotation: Annotation, pseudonyms: dict[int, str]) -> dict[str, Any]:
    who, kind = _author(annotation, pseudonyms)
    return {
        "annotation_id": annotation.pk,
        "annotator": who,
        "annotator_kind": kind,
        "preferred": annotation.preferred,
        "reason": annotation.reason,
        "shown_order": "b_left" if annotation.shown_swapped else "a_left",
        "shown_swapped": annotation.shown_swapped,
        "shown_at": iso(annotation.shown_at),
        "submitted_at": iso(annotation.submitted_at),
        "duration_ms": annotation.duration_ms,
        "metadata": annotation.metadata or {},
    }


def pair_as_dict(pair: PreferencePair, pseudonyms: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "pair_id": pair.pk,
        "dataset": pair.dataset.name,
        "id": pair.external_id,
        "prompt": pair.prompt,
    }
    if pair.prompt_messages is not None:
        out["prompt_messages"] = pair.prompt_messages
    out.update(
        {
            "response_a": pair.response_a,
            "response_b": pair.response_b,
            "preferred": pair.source_preference,
            "reason": pair.source_reason,
            "score_a": pair.score_a,
            "score_b": pair.score_b,
            "split": pair.split,
            "metadata": pair.metadata or {},
            "annotations": [annotation_as_dict(a, pseudonyms) for a in pair.annotations.all()],
        }
    )
    return out


# --- Pairs ---------------------------------------------------------------------------------
def pairs_export_jsonl(*, study: Study, dataset: Dataset | None = None) -> Iterator[str]:
    """One JSON object per pair, its annotations inline (the ``gcai`` import format)."""
    pseudonyms = member_pseudonyms(study=study)
    for pair in pairs_for_export(study=study, dataset=dataset).iterator(chunk_size=CHUNK_SIZE):
        yield json.dumps(pair_as_dict(pair, pseudonyms), ensure_ascii=False) + "\n"


def pairs_export_csv(*, study: Study, dataset: Dataset | None = None) -> Iterator[str]:
    """One row per annotation (a pair without annotations gets one row of its own)."""
    pseudonyms = member_pseudonyms(study=study)

    def rows() -> Iterator[list[Any]]:
        pairs = pairs_for_export(study=study, dataset=dataset).iterator(chunk_size=CHUNK_SIZE)
        for pair in pairs:
            base = [
                pair.pk,
                pair.external_id,
                pair.dataset.name,
                pair.prompt,
                _json_cell(pair.prompt_messages),
                pair.response_a,
                pair.response_b,
                pair.source_preference,
                pair.source_reason,
                pair.score_a,
                pair.score_b,
                pair.split,
                _json_cell(pair.metadata),
            ]
            annotations = list(pair.annotations.all())
            if not annotations:
                yield base + [""] * (len(PAIR_CSV_COLUMNS) - len(base))
            for annotation in annotations:
                a = annotation_as_dict(annotation, pseudonyms)
                yield [
                    *base,
                    a["annotation_id"],
                    a["annotator"],
                    a["annotator_kind"],
                    a["preferred"],
                    a["reason"],
                    a["shown_order"],
                    "true" if a["shown_swapped"] else "false",
                    a["shown_at"],
                    a["submitted_at"],
                    a["duration_ms"],
                    _json_cell(a["metadata"]),
                ]

    return csv_lines(PAIR_CSV_COLUMNS, rows())


def _icai_pref(preference: str) -> dict[str, Any]:
    if preference in (SourcePreference.A, SourcePreference.B):
        return {"pref": preference}
    if preference in (SourcePreference.TIE, SourcePreference.BOTH_BAD):
        # The annotated-pairs format has only a/b preferences; ties keep their kind here.
        return {"pref": None, "no_pref_reason": preference}
    return {"pref": None, "no_pref_reason": "not_annotated"}


def pairs_export_icai(*, study: Study, dataset: Dataset | None = None) -> Iterator[str]:
    """ICAI "annotated pairs" JSON, version 2.0, streamed.

    The source preference is the default annotator; every annotation is an annotator
    keyed by its pseudonym. Pair fields the format lacks (split, scores, source reason,
    chat turns) ride in each comparison's metadata and are restored on import.
    """
    pseudonyms = member_pseudonyms(study=study)
    metadata = {
        "version": "2.0",
        "description": f"Annotated pairs exported from GCAI study “{study.name}”.",
        "created_at": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dataset_name": dataset.name if dataset else study.name,
        "default_annotator": ICAI_DEFAULT_ANNOTATOR,
    }
    annotators: dict[str, dict[str, Any]] = {
        ICAI_DEFAULT_ANNOTATOR: {
            "name": "source_preference",
            "description": "Preference recorded in the imported dataset",
            "type": "unknown",
        }
    }
    yield '{"metadata": ' + json.dumps(metadata, ensure_ascii=False) + ', "comparisons": ['
    first = True
    for pair in pairs_for_export(study=study, dataset=dataset).iterator(chunk_size=CHUNK_SIZE):
        comparison = _icai_comparison(pair, pseudonyms, annotators)
        yield ("\n" if first else ",\n") + json.dumps(comparison, ensure_ascii=False)
        first = False
    # JSON objects are unordered, so the annotators seen while streaming go last.
    yield '\n], "annotators": ' + json.dumps(annotators, ensure_ascii=False) + "}\n"


def _icai_comparison(
    pair: PreferencePair, pseudonyms: dict[int, str], annotators: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    metadata = dict(pair.metadata or {})
    response_a: dict[str, Any] = {"text": pair.response_a}
    response_b: dict[str, Any] = {"text": pair.response_b}
    for key in list(metadata):
        side = key.rsplit("_", 1)
        if len(side) == 2 and side[1] in ("a", "b") and side[0] == "model":
            (response_a if side[1] == "a" else response_b)["model"] = metadata.pop(key)
    if not pair.external_id:
        metadata["external_id"] = ""  # the comparison id below is made up for the format
    if pair.split != Split.UNASSIGNED:
        metadata["split"] = pair.split
    for key in ("score_a", "score_b", "source_reason", "prompt_messages"):
        value = getattr(pair, key)
        if value not in (None, ""):
            metadata[key] = value
    annotations: dict[str, Any] = {ICAI_DEFAULT_ANNOTATOR: _icai_pref(pair.source_preference)}
    for annotation in pair.annotations.all():
        who, kind = _author(annotation, pseudonyms)
        extra = dict(annotation.metadata or {})
        info = {
            "name": extra.pop("annotator_name", who),
            "description": extra.pop("annotator_description", f"GCAI {kind} {who}"),
            "type": extra.pop("annotator_type", "human"),
        }
        annotators.setdefault(who, info)
        entry = {**_icai_pref(annotation.preferred), **extra}
        entry.update(
            {
                "reason": annotation.reason,
                "shown_swapped": annotation.shown_swapped,
                "shown_at": iso(annotation.shown_at),
                "submitted_at": iso(annotation.submitted_at),
                "duration_ms": annotation.duration_ms,
            }
        )
        annotations[who] = entry
    comparison: dict[str, Any] = {
        "id": pair.external_id or f"pair-{pair.pk}",
        "prompt": pair.prompt,
        "response_a": response_a,
        "response_b": response_b,
        "annotations": annotations,
    }
    if metadata:
        comparison["metadata"] = metadata
    return comparison


# --- Value statements ----------------------------------------------------------------------
def _statements(study: Study) -> Iterator[ValueStatement]:
    return (
        ValueStatement.objects.filter(study=study)
        .select_related("participant")
        .order_by("id")
        .iterator(chunk_size=2000)
    )


def statement_as_dict(statement: ValueStatement) -> dict[str, Any]:
    if statement.participant_id:
        who, kind = statement.participant.pseudonym, "participant"
    else:
        who, kind = (
            statement.external_participant,
            "external" if statement.external_participant else "",
        )
    return {
        "id": statement.pk,
        "participant": who,
        "participant_kind": kind,
        "question": statement.question,
        "text": statement.text,
        "moderation": statement.moderation,
        "moderated_at": iso(statement.moderated_at),
        "created_at": iso(statement.created_at),
    }


def statements_export_jsonl(*, study: Study) -> Iterator[str]:
    """Value statements with moderation state, participants as pseudonyms only."""
    for statement in _statements(study):
        yield json.dumps(statement_as_dict(statement), ensure_ascii=False) + "\n"


def statements_export_csv(*, study: Study) -> Iterator[str]:
    rows = ([statement_as_dict(s)[c] for c in STATEMENT_COLUMNS] for s in _statements(study))
    return csv_lines(STATEMENT_COLUMNS, rows)


# --- What pages, the API and the command offer ---------------------------------------------
@dataclass(frozen=True)
class ExportKind:
    function: Callable[..., Any]
    content_type: str
    extension: str


PAIR_EXPORTS = {
    "jsonl": ExportKind(pairs_export_jsonl, "application/x-ndjson; charset=utf-8", "jsonl"),
    "csv": ExportKind(pairs_export_csv, "text/csv; charset=utf-8", "csv"),
    "icai_json": ExportKind(pairs_export_icai, "application/json; charset=utf-8", "json"),
}
STATEMENT_EXPORTS = {
    "jsonl": ExportKind(statements_export_jsonl, "application/x-ndjson; charset=utf-8", "jsonl"),
    "csv": ExportKind(statements_export_csv, "text/csv; charset=utf-8", "csv"),
}
# Constitutions and survey answers belong to their own apps, which fill these tables when
# they load (``gcai.constitutions.apps``, ``surveys.apps``): annotations sits below both
# and must not import them.
CONSTITUTION_EXPORTS: dict[str, ExportKind] = {}
SURVEY_EXPORTS: dict[str, ExportKind] = {}


def export_filename(*parts: Any, extension: str) -> str:
    """A safe download name such as ``study-3-pairs-alpaca.jsonl``."""
    from django.utils.text import slugify

    stem = "-".join(slugify(str(p)) or "x" for p in parts if p not in (None, ""))
    return f"{stem}.{extension}"
