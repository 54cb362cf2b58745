"""Attributes of people (country, age band, any column): import, aggregate, export, group.

Attributes are personal data. Everything that leaves this module is aggregated per
value, and a value held by fewer than ``Study.min_group_size`` people is suppressed
everywhere: on pages, in exports and in the API (the counts of small groups are not
shown either, only how many values were hidden). Exports name people only by their
pseudonyms. Per-group constitutions (``gcai.groups``) take their groups from
:func:`attribute_groups`, which applies the same minimum.

A person is a participant, an annotator account, or an id that came with imported
annotations or statements; :class:`Person` is the one key for all three.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotations.models import (
    Annotation,
    AttributeSource,
    Membership,
    Participant,
    PersonAttribute,
    Role,
    Study,
    ValueStatement,
)

# Prolific's demographic export: one row per submission; these columns describe the
# person (others describe the submission: ids, status, times, codes).
PROLIFIC_ID_COLUMN = "Participant id"
PROLIFIC_COLUMNS = (
    "Age",
    "Sex",
    "Ethnicity simplified",
    "Country of birth",
    "Country of residence",
    "Nationality",
    "Language",
    "Student status",
    "Employment status",
)
# Prolific writes these instead of a value when a participant's data is gone.
PROLIFIC_MISSING = {"", "DATA_EXPIRED", "CONSENT_REVOKED", "CONSENT_REVOKED_BY_PARTICIPANT"}
AGE_BANDS = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64))
MAX_FILE_BYTES = 20 * 1024 * 1024


class AttributeImportError(ValueError):
    """Bad attribute input; the message is safe to show."""


class Person(NamedTuple):
    """One person of a study: kind "p" (participant), "u" (annotator account) or "x"
    (an id from imported annotations or statements)."""

    kind: str
    ref: str


def _person_of(row: PersonAttribute) -> Person:
    if row.participant_id:
        return Person("p", str(row.participant_id))
    if row.annotator_id:
        return Person("u", str(row.annotator_id))
    return Person("x", row.external_id)


def attribute_key(name: str) -> str:
    """A column title as an attribute name: ``"Country of residence"`` -> ``country_of_residence``."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def age_band(value: str) -> str | None:
    """An age as a band ("25-34"): exact ages identify people far more than bands do."""
    try:
        age = int(float(value))
    except ValueError:
        return None
    if age < 18:
        return "under 18"
    for lo, hi in AGE_BANDS:
        if lo <= age <= hi:
            return f"{lo}-{hi}"
    return "65+"


# --------------------------------------------------------------------------- writes


@dataclass
class ProlificImportReport:
    rows: int = 0
    matched: int = 0
    attributes_set: int = 0
    keys: list[str] = field(default_factory=list)
    # Line numbers (1 = header) of rows whose participant id is not in the study. The
    # ids themselves are not repeated: the researcher has the file.
    unmatched_lines: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "matched": self.matched,
            "unmatched": len(self.unmatched_lines),
            "unmatched_lines": self.unmatched_lines,
            "attributes_set": self.attributes_set,
            "keys": self.keys,
        }


def _text(file: Any) -> str:
    if isinstance(file, str):
        return file
    data = file.read() if hasattr(file, "read") else bytes(file)
    if isinstance(data, str):
        return data
    if len(data) > MAX_FILE_BYTES:
        raise AttributeImportError("The file is larger than 20 MB.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AttributeImportError("The file is not UTF-8 text (a CSV export).") from None


@transaction.atomic
def attributes_import_prolific(*, study: Study, file: Any) -> ProlificImportReport:
    """Import Prolific's demographic export CSV as participant attributes.

    Rows are matched on "Participant id" against the study's participants' Prolific ids;
    unmatched rows are counted and reported by line. "Age" is stored as an age band.
    Re-importing replaces the attributes it sets. Raises AttributeImportError (nothing
    saved) when the file is not a Prolific export.
    """
    reader = csv.DictReader(io.StringIO(_text(file)))
    columns = [c.strip() for c in reader.fieldnames or []]
    if PROLIFIC_ID_COLUMN not in columns:
        raise AttributeImportError(
            f'This is not a Prolific demographic export: no "{PROLIFIC_ID_COLUMN}" column.'
        )
    present = [c for c in PROLIFIC_COLUMNS if c in columns]
    if not present:
        raise AttributeImportError(
            "No demographic column found; expected some of: " + ", ".join(PROLIFIC_COLUMNS)
        )
    participants = dict(
        Participant.objects.filter(study=study)
        .exclude(prolific_pid="")
        .values_list("prolific_pid", "pk")
    )
    report = ProlificImportReport(keys=[_prolific_key(c) for c in present])
    values: dict[int, dict[str, str]] = {}
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        report.rows += 1
        pk = participants.get(row.get(PROLIFIC_ID_COLUMN, ""))
        if pk is None:
            report.unmatched_lines.append(line)
            continue
        report.matched += 1
        person = values.setdefault(pk, {})
        for column in present:
            value = row.get(column, "")
            if value in PROLIFIC_MISSING:
                continue
            if column == "Age":
                value = age_band(value) or ""
            if value:
                person[_prolific_key(column)] = value[:200]
    PersonAttribute.objects.filter(
        study=study, participant_id__in=list(values), key__in=report.keys
    ).delete()
    now = timezone.now()
    rows = [
        PersonAttribute(
            study=study,
            participant_id=pk,
            key=key,
            value=value,
            source=AttributeSource.PROLIFIC,
            updated_at=now,
        )
        for pk, attrs in values.items()
        for key, value in attrs.items()
    ]
    PersonAttribute.objects.bulk_create(rows)
    report.attributes_set = len(rows)
    return report


def _prolific_key(column: str) -> str:
    return "age_band" if column == "Age" else attribute_key(column)


@transaction.atomic
def attributes_set_external(
    *, study: Study, people: dict[str, dict[str, str]], source: str = AttributeSource.IMPORT
) -> int:
    """Set attributes of people known by an imported id (annotator or statement author)."""
    rows = []
    now = timezone.now()
    for external_id, attrs in people.items():
        for key, value in attrs.items():
            rows.append(
                PersonAttribute(
                    study=study,
                    external_id=external_id[:200],
                    key=key[:100],
                    value=str(value)[:200],
                    source=source,
                    updated_at=now,
                )
            )
    if not rows:
        return 0
    q = Q()
    for external_id, attrs in people.items():
        q |= Q(external_id=external_id, key__in=list(attrs))
    PersonAttribute.objects.filter(study=study).filter(q).delete()
    PersonAttribute.objects.bulk_create(rows)
    return len(rows)


def attribute_set(
    *,
    study: Study,
    key: str,
    value: str,
    participant=None,
    annotator=None,
    external_id: str = "",
    source: str = AttributeSource.MANUAL,
) -> PersonAttribute:
    """Set one attribute of one person (replacing that person's earlier value)."""
    key, value = key.strip(), str(value).strip()
    if not key or not value:
        raise AttributeImportError("An attribute needs a name and a value.")
    person = {"participant": participant, "annotator": annotator, "external_id": external_id}
    row, _ = PersonAttribute.objects.update_or_create(
        study=study,
        key=key,
        **person,
        defaults={"value": value[:200], "source": source, "updated_at": timezone.now()},
    )
    return row


# --------------------------------------------------------------------------- reads


def attribute_people(*, study: Study, key: str) -> dict[str, set[Person]]:
    """Every value of ``key`` and the people holding it, small groups included.

    Internal: callers must not show the result; use :func:`attribute_groups`.
    """
    out: dict[str, set[Person]] = defaultdict(set)
    for row in PersonAttribute.objects.filter(study=study, key=key).only(
        "participant_id", "annotator_id", "external_id", "value"
    ):
        out[row.value].add(_person_of(row))
    return dict(out)


@dataclass(frozen=True)
class Groups:
    """The groups of one attribute that may be shown (at least the minimum size)."""

    key: str
    minimum: int
    shown: dict[str, set[Person]]
    hidden_values: int  # how many values were suppressed (their sizes are not given)

    def counts(self) -> list[dict[str, Any]]:
        return [{"value": v, "count": len(p)} for v, p in sorted(self.shown.items())]


def attribute_groups(*, study: Study, key: str) -> Groups:
    """The values of ``key`` held by at least ``study.min_group_size`` people."""
    people = attribute_people(study=study, key=key)
    minimum = study.min_group_size
    shown = {v: p for v, p in people.items() if len(p) >= minimum}
    return Groups(key=key, minimum=minimum, shown=shown, hidden_values=len(people) - len(shown))


def attribute_summary(*, study: Study) -> list[dict[str, Any]]:
    """Per attribute: counts per value, values below the minimum suppressed (one query)."""
    people: dict[str, dict[str, set[Person]]] = defaultdict(lambda: defaultdict(set))
    for row in PersonAttribute.objects.filter(study=study).only(
        "participant_id", "annotator_id", "external_id", "key", "value"
    ):
        people[row.key][row.value].add(_person_of(row))
    out = []
    for key in sorted(people):
        values = people[key]
        shown = [
            {"value": v, "count": len(p)}
            for v, p in sorted(values.items())
            if len(p) >= study.min_group_size
        ]
        out.append(
            {
                "key": key,
                "values": shown,
                "hidden_values": len(values) - len(shown),
            }
        )
    return out


def _pseudonyms(study: Study, persons: Iterable[Person]) -> dict[Person, str]:
    persons = list(persons)
    participant_ids = [int(p.ref) for p in persons if p.kind == "p"]
    user_ids = [int(p.ref) for p in persons if p.kind == "u"]
    names: dict[Person, str] = {p: p.ref for p in persons if p.kind == "x"}
    for pk, pseudonym in Participant.objects.filter(pk__in=participant_ids).values_list(
        "pk", "pseudonym"
    ):
        names[Person("p", str(pk))] = pseudonym
    for user_id, pseudonym in Membership.objects.filter(
        study=study, user_id__in=user_ids, role=Role.ANNOTATOR
    ).values_list("user_id", "pseudonym"):
        names[Person("u", str(user_id))] = pseudonym
    return names


EXPORT_HEADER = ("person", "attribute", "value")


def attribute_export_rows(*, study: Study) -> list[list[str]]:
    """(pseudonym, attribute, value) for every value held by at least the minimum.

    A person's value in a suppressed group is left out entirely (a placeholder would
    mark them as holding a rare value). Someone without a pseudonym in this study (an
    account that left) is left out too.
    """
    rows = list(
        PersonAttribute.objects.filter(study=study).only(
            "participant_id", "annotator_id", "external_id", "key", "value"
        )
    )
    sizes: dict[tuple[str, str], set[Person]] = defaultdict(set)
    for row in rows:
        sizes[(row.key, row.value)].add(_person_of(row))
    names = _pseudonyms(study, {_person_of(r) for r in rows})
    out = []
    for row in rows:
        person = _person_of(row)
        if len(sizes[(row.key, row.value)]) < study.min_group_size or person not in names:
            continue
        out.append([names[person], row.key, row.value])
    return sorted(out)


# --------------------------------------------------------------------------- group filters


def group_filters(people: Iterable[Person]) -> tuple[Q, Q]:
    """Q filters for the annotations and the value statements of ``people``."""
    people = list(people)
    participants = [int(p.ref) for p in people if p.kind == "p"]
    users = [int(p.ref) for p in people if p.kind == "u"]
    external = [p.ref for p in people if p.kind == "x"]
    annotations = (
        Q(participant_id__in=participants)
        | Q(annotator_id__in=users)
        | Q(external_annotator__in=external)
    )
    statements = Q(participant_id__in=participants) | Q(external_participant__in=external)
    return annotations, statements


def group_annotations(*, study: Study, people: Iterable[Person]):
    annotations, _ = group_filters(people)
    return Annotation.objects.filter(pair__dataset__study=study).filter(annotations)


def group_statements(*, study: Study, people: Iterable[Person]):
    _, statements = group_filters(people)
    return ValueStatement.objects.filter(study=study).filter(statements)
