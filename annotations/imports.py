"""Import services: preference pairs and value statements from files.

Pages, the API and the management commands all call these. The rules that matter for
research data live here and nowhere else:

- the whole import is ONE transaction: bad input anywhere changes nothing;
- the file is streamed (line by line) and saved with ``bulk_create`` in chunks, so a
  100 MB file imports in bounded memory;
- a pair whose content hash is already in the dataset (or earlier in the same file) is
  skipped and reported, so importing the same file twice is harmless;
- an empty response is data: imported, counted in the report as a warning; a pair whose
  two responses are the same is warned about (or refused, ``GCAI_IMPORT_IDENTICAL_RESPONSES``);
- with ``skip_invalid`` a bad row is left out and reported with its line and reason
  while the valid rows import (still one transaction); the default is all-or-nothing;
- files above ``settings.GCAI_IMPORT_MAX_BYTES`` are refused before any work.

ICAI's annotated-pairs JSON is a single document and is read whole (still bounded by
the cap); every other format streams.

Parsing itself lives in ``annotations.importers`` (no database there).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from annotations import splits
from annotations.import_report import (
    PREVIEW_MAX_ROWS,
    ImportPreview,
    ImportReport,
    preview_clip,
)
from annotations.importers import (
    DataImportError,
    PairRow,
    ParseOptions,
    StatementRow,
    TextSource,
    is_empty_response,
    mapping_parse,
    pair_format_resolve,
    sniff,
    statements_parse,
)
from annotations.importers.readers import ProgressFn, too_large_message
from annotations.importers.statements import statement_mapping_validate
from annotations.models import (
    Annotation,
    Dataset,
    Participant,
    PreferencePair,
    Study,
    ValueStatement,
)

CHUNK_SIZE = 1000

__all__ = [
    "DataImportError",
    "ImportPreview",
    "ImportReport",
    "pairs_import",
    "pairs_preview",
    "statements_import",
    "statements_preview",
]


# --- Files ---------------------------------------------------------------------------------
@contextmanager
def _opened(file: Any) -> Iterator[tuple[BinaryIO, int | None, str]]:
    """(binary stream at its start, size in bytes if known, file name) for a path, bytes or
    an open binary file (a Django upload included)."""
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        with path.open("rb") as handle:
            yield handle, path.stat().st_size, path.name
        return
    if isinstance(file, bytes | bytearray):
        yield io.BytesIO(bytes(file)), len(file), ""
        return
    name = os.path.basename(getattr(file, "name", "") or "")
    seekable = getattr(file, "seekable", lambda: hasattr(file, "seek"))()
    if not seekable:
        # Detection peeks and rewinds, so a pipe is spooled to a temporary file first.
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(file, spool, length=1024 * 1024)
            size = spool.tell()
            spool.seek(0)
            yield spool, size, name
        return
    file.seek(0)
    size = getattr(file, "size", None)
    if size is None:
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
    yield file, size, name


@contextmanager
def _bounded_query_log() -> Iterator[None]:
    """Keep only the last few queries in Django's debug log while importing.

    With DEBUG on (the embedded default) Django keeps the SQL of the last 9000 queries,
    and each bulk insert's SQL holds a whole chunk of the file: a 100 MB import would
    keep ~100 MB of SQL text alive. When something is counting queries
    (``force_debug_cursor``, as tests do) the log is left alone.
    """
    if connection.force_debug_cursor:
        yield
        return
    saved = connection.queries_log
    connection.queries_log = deque(maxlen=4)
    try:
        yield
    finally:
        saved.extend(connection.queries_log)
        connection.queries_log = saved


def _limit() -> int:
    return int(settings.GCAI_IMPORT_MAX_BYTES)


def _check_size(size: int | None) -> None:
    if size is not None and size > _limit():
        raise DataImportError(too_large_message(size, _limit()), field="file")


def _mapping(mapping: Any) -> dict[str, str] | None:
    return mapping_parse(mapping) if mapping else None


# --- Pairs ---------------------------------------------------------------------------------
def pairs_preview(
    *,
    file: Any,
    format: str | None = None,
    mapping: str | dict[str, str] | None = None,
    seed: int = 0,
    limit: int = 5,
    skip_invalid: bool = False,
) -> ImportPreview:
    """Detect the format and parse the first ``limit`` pairs without saving anything.

    Detection problems raise ``DataImportError``; a bad row among the first ones is
    returned in ``error`` next to the rows read so far, so the page can show both (with
    ``skip_invalid`` it is listed in ``skipped_rows`` and reading goes on). Rows are
    clipped to preview size (``import_report.preview_clip``).
    """
    limit = max(1, min(limit, PREVIEW_MAX_ROWS))
    mapping = _mapping(mapping)
    with _opened(file) as (binary, size, _name):
        _check_size(size)
        fmt, sniffed = pair_format_resolve(binary, format=format, mapping=mapping)
        preview = ImportPreview(
            kind="pairs",
            format=fmt.name,
            format_label=fmt.label,
            container=sniffed.container,
            columns=sniffed.columns,
            rows=[],
        )
        source = TextSource(binary, max_bytes=_limit())
        options = ParseOptions(
            seed=seed, mapping=mapping, on_error=preview.note_skipped if skip_invalid else None
        )
        try:
            for row in _checked(fmt.parse(source, sniffed, options), options):
                preview.rows.append(preview_clip(row))
                if len(preview.rows) >= limit:
                    break
        except DataImportError as exc:
            preview.error, preview.error_detail = str(exc), exc.as_dict()
    return preview


def pairs_import(
    *,
    study: Study,
    dataset_name: str,
    file: Any,
    format: str | None = None,
    mapping: str | dict[str, str] | None = None,
    seed: int = 0,
    split_test_fraction: float | None = None,
    progress: ProgressFn | None = None,
    filename: str = "",
    skip_invalid: bool = False,
) -> ImportReport:
    """Import preference pairs (and any annotations in the file) into a dataset.

    ``file`` is a path, bytes or an open binary file. ``format`` names a registered
    format (``annotations.importers.PAIR_FORMATS``); without it the format is detected,
    or ``generic`` is used when a ``mapping`` (``"prompt=col,response_a=col,..."``) is
    given. ``seed`` decides the sides of chosen/rejected data; with
    ``split_test_fraction`` the dataset's unassigned pairs get a seeded stratified
    train/test split afterwards. The dataset is created if it does not exist.
    ``filename`` names the file in the report when ``file`` is a staged copy.
    With ``skip_invalid`` rows that fail validation are left out and listed in the
    report (``skipped_rows``: line, field, reason) instead of failing the import.

    Raises ``DataImportError`` naming the row and field; the database is then unchanged.
    """
    started = time.monotonic()
    name = (dataset_name or "").strip()
    if not name:
        raise DataImportError("a dataset needs a name", field="dataset")
    if len(name) > 200:
        raise DataImportError("a dataset name has at most 200 characters", field="dataset")
    if split_test_fraction is not None and not 0 < split_test_fraction < 1:
        raise DataImportError(
            "the test fraction must be between 0 and 1 (e.g. 0.2)", field="split_test_fraction"
        )
    mapping = _mapping(mapping)
    with _opened(file) as (binary, size, opened_name):
        _check_size(size)
        fmt, sniffed = pair_format_resolve(binary, format=format, mapping=mapping)
        source = TextSource(binary, max_bytes=_limit(), total_bytes=size, progress=progress)
        report = ImportReport(
            kind="pairs",
            format=fmt.name,
            format_label=fmt.label,
            filename=filename or opened_name,
            skip_invalid=skip_invalid,
        )
        options = ParseOptions(
            seed=seed, mapping=mapping, on_error=report.note_skipped if skip_invalid else None
        )
        rows = fmt.parse(source, sniffed, options)
        with _bounded_query_log(), transaction.atomic():
            dataset, created = Dataset.objects.get_or_create(
                study=study, name=name, defaults={"source_format": fmt.name}
            )
            # Serialise imports into one dataset: both would pass the duplicate check
            # and then collide on the unique content hash.
            dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
            report.dataset_id, report.dataset_name = dataset.pk, dataset.name
            report.dataset_created = created
            _pairs_save(dataset=dataset, rows=_checked(rows, options), report=report)
            if split_test_fraction is not None:
                report.split = splits.pairs_assign_split(
                    dataset=dataset, test_fraction=split_test_fraction, seed=seed
                )
            report.bytes_read = source.bytes_read
            report.seconds = round(time.monotonic() - started, 3)
            dataset.imported_at = timezone.now()
            report.imported_at = dataset.imported_at.isoformat()
            dataset.import_report = report.as_dict()
            dataset.source_format = dataset.source_format or fmt.name
            dataset.save(update_fields=["imported_at", "import_report", "source_format"])
    return report


def _checked(rows: Iterator[PairRow], options: ParseOptions) -> Iterator[PairRow]:
    """Rules about a whole pair that hold for every format."""
    refuse_identical = settings.GCAI_IMPORT_IDENTICAL_RESPONSES == "refuse"
    for row in rows:
        if refuse_identical and _identical(row):
            error = DataImportError(
                "the two responses are identical (setting GCAI_IMPORT_IDENTICAL_RESPONSES "
                "is 'refuse')",
                line=row.line,
                field="response_b",
            )
            if options.on_error is None:
                raise error
            options.on_error(error)
            continue
        yield row


def _identical(row: PairRow) -> bool:
    return row.response_a.strip() == row.response_b.strip()


def _pairs_save(*, dataset: Dataset, rows: Iterator[PairRow], report: ImportReport) -> None:
    # Existing content of the dataset, as plain strings/ints: ~10 MB for 50k pairs.
    known: dict[str, int] = dict(
        PreferencePair.objects.filter(dataset=dataset)
        .values_list("content_hash", "id")
        .iterator(chunk_size=5000)
    )
    known_annotations: set[tuple[int, str]] = set(
        Annotation.objects.filter(pair__dataset=dataset)
        .exclude(external_annotator="")
        .values_list("pair_id", "external_annotator")
        .iterator(chunk_size=5000)
    )
    in_file: set[str] = set()  # content hashes of this file's rows, to tell repeats apart
    batch: list[PairRow] = []
    people: dict[str, dict[str, str]] = {}  # annotator id -> attributes from the file
    for row in rows:
        report.rows_read += 1
        for annotation in row.annotations:
            if annotation.attributes:
                people.setdefault(annotation.annotator, {}).update(annotation.attributes)
        batch.append(row)
        if len(batch) >= CHUNK_SIZE:
            _pairs_save_batch(dataset, batch, known, known_annotations, in_file, report)
            batch = []
    if batch:
        _pairs_save_batch(dataset, batch, known, known_annotations, in_file, report)
    report.rows_read += report.skipped
    if people:
        from annotations.attributes import attributes_set_external

        attributes_set_external(study=dataset.study, people=people, source="import")


def _pairs_save_batch(
    dataset: Dataset,
    batch: list[PairRow],
    known: dict[str, int],
    known_annotations: set[tuple[int, str]],
    in_file: set[str],
    report: ImportReport,
) -> None:
    new_pairs: dict[str, PreferencePair] = {}
    annotation_rows: list[tuple[str, Any]] = []
    for row in batch:
        content_hash = PreferencePair.hash_content(row.prompt, row.response_a, row.response_b)
        annotation_rows.extend((content_hash, a) for a in row.annotations)
        repeat = content_hash in in_file
        in_file.add(content_hash)
        if content_hash in known or content_hash in new_pairs:
            report.note_duplicate(row.line, in_file=repeat)
            continue
        if is_empty_response(row.response_a) or is_empty_response(row.response_b):
            report.note_empty_response(row.line)
        if _identical(row):
            report.note_identical_responses(row.line)
        new_pairs[content_hash] = PreferencePair(
            dataset=dataset,
            external_id=row.external_id,
            prompt=row.prompt,
            prompt_messages=row.prompt_messages,
            response_a=row.response_a,
            response_b=row.response_b,
            source_preference=row.source_preference,
            source_reason=row.source_reason,
            score_a=row.score_a,
            score_b=row.score_b,
            split=row.split,
            content_hash=content_hash,
            metadata=row.metadata,
        )
    created = PreferencePair.objects.bulk_create(list(new_pairs.values()))
    report.created += len(created)
    if any(pair.pk is None for pair in created):  # backends that cannot return ids
        known.update(
            PreferencePair.objects.filter(
                dataset=dataset, content_hash__in=list(new_pairs)
            ).values_list("content_hash", "id")
        )
    else:
        known.update((pair.content_hash, pair.pk) for pair in created)
    now = timezone.now()
    annotations = []
    for content_hash, row in annotation_rows:
        key = (known[content_hash], row.annotator)
        if key in known_annotations:
            report.annotations_duplicate += 1
            continue
        known_annotations.add(key)
        annotations.append(
            Annotation(
                pair_id=key[0],
                external_annotator=row.annotator,
                preferred=row.preferred,
                reason=row.reason,
                shown_swapped=row.shown_swapped,
                shown_at=row.shown_at,
                submitted_at=row.submitted_at or now,
                duration_ms=row.duration_ms,
                metadata=row.metadata,
            )
        )
    Annotation.objects.bulk_create(annotations)
    report.annotations_created += len(annotations)


# --- Value statements ----------------------------------------------------------------------
def statements_preview(
    *,
    file: Any,
    mapping: str | dict[str, str] | None = None,
    limit: int = 5,
    skip_invalid: bool = False,
) -> ImportPreview:
    """The first value statements a file would import, without saving anything."""
    limit = max(1, min(limit, PREVIEW_MAX_ROWS))
    mapping = _statement_mapping(mapping)
    with _opened(file) as (binary, size, _name):
        _check_size(size)
        sniffed = sniff(binary)
        preview = ImportPreview(
            kind="statements",
            format="statements",
            format_label=f"Value statements ({sniffed.container.upper()})",
            container=sniffed.container,
            columns=sniffed.columns,
            rows=[],
        )
        try:
            for row in statements_parse(
                TextSource(binary, max_bytes=_limit()),
                sniffed,
                mapping=mapping,
                on_error=preview.note_skipped if skip_invalid else None,
            ):
                preview.rows.append(preview_clip(row))
                if len(preview.rows) >= limit:
                    break
        except DataImportError as exc:
            preview.error, preview.error_detail = str(exc), exc.as_dict()
    return preview


def _statement_mapping(mapping: Any) -> dict[str, str] | None:
    if not mapping:
        return None
    if isinstance(mapping, str):
        parsed: dict[str, str] = {}
        for part in mapping.replace("\n", ",").split(","):
            if part.strip():
                target, sep, column = part.partition("=")
                if not sep or not column.strip():
                    raise DataImportError(
                        f"mapping entry {part.strip()!r} should look like field=column",
                        field="mapping",
                    )
                parsed[target.strip()] = column.strip()
        mapping = parsed
    statement_mapping_validate(mapping)
    return dict(mapping)


def _statement_key(author: str, question: str, text: str) -> str:
    return hashlib.sha256("\x00".join((author, question, text)).encode()).hexdigest()


def statements_import(
    *,
    study: Study,
    file: Any,
    mapping: str | dict[str, str] | None = None,
    progress: ProgressFn | None = None,
    filename: str = "",
    skip_invalid: bool = False,
) -> ImportReport:
    """Import value statements collected elsewhere into ``study``.

    A participant id that matches a participant's pseudonym in the study links the
    statement to that participant; any other id is kept as ``external_participant``.
    A statement already in the study (same author, question and text) is skipped, so
    re-importing a file is harmless. One transaction: errors change nothing, or with
    ``skip_invalid`` bad rows are left out and listed in the report.
    """
    started = time.monotonic()
    mapping = _statement_mapping(mapping)
    with _opened(file) as (binary, size, opened_name):
        _check_size(size)
        sniffed = sniff(binary)
        source = TextSource(binary, max_bytes=_limit(), total_bytes=size, progress=progress)
        report = ImportReport(
            kind="statements",
            format="statements",
            format_label=f"value statements ({sniffed.container.upper()})",
            filename=filename or opened_name,
            skip_invalid=skip_invalid,
        )
        on_error = report.note_skipped if skip_invalid else None
        with _bounded_query_log(), transaction.atomic():
            participants = dict(
                Participant.objects.filter(study=study).values_list("pseudonym", "id")
            )
            known = {
                _statement_key(pseudonym or external, question, text)
                for pseudonym, external, question, text in ValueStatement.objects.filter(
                    study=study
                )
                .values_list("participant__pseudonym", "external_participant", "question", "text")
                .iterator(chunk_size=5000)
            }
            in_file: set[str] = set()
            batch: list[ValueStatement] = []
            for row in statements_parse(source, sniffed, mapping=mapping, on_error=on_error):
                report.rows_read += 1
                key = _statement_key(row.participant, row.question, row.text)
                repeat = key in in_file
                in_file.add(key)
                if key in known:
                    report.note_duplicate(row.line, in_file=repeat)
                    continue
                known.add(key)
                batch.append(_statement(study, row, participants))
                if len(batch) >= CHUNK_SIZE:
                    report.created += len(ValueStatement.objects.bulk_create(batch))
                    batch = []
            if batch:
                report.created += len(ValueStatement.objects.bulk_create(batch))
            report.rows_read += report.skipped
        report.bytes_read = source.bytes_read
        report.seconds = round(time.monotonic() - started, 3)
        report.imported_at = timezone.now().isoformat()
    return report


def _statement(study: Study, row: StatementRow, participants: dict[str, int]) -> ValueStatement:
    participant_id = participants.get(row.participant) if row.participant else None
    moderated = row.moderation != "pending"
    return ValueStatement(
        study=study,
        participant_id=participant_id,
        external_participant="" if participant_id else row.participant,
        question=row.question,
        text=row.text,
        moderation=row.moderation,
        moderated_at=timezone.now() if moderated else None,
    )
