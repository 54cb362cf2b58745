"""Bad input: a clear message naming the row/line and field, and nothing saved."""

from __future__ import annotations

import json

import pytest

from annotations.imports import DataImportError, pairs_import, statements_import
from annotations.models import Annotation, Dataset, PreferencePair, ValueStatement
from tests.factories import PairFactory

pytestmark = pytest.mark.django_db

OK = {
    "prompt": "Why is the sky blue?",
    "response_a": "Rayleigh scattering.",
    "response_b": "Paint.",
}


def jsonl(*rows) -> bytes:
    return b"".join(
        (row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows
    )


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


def ap(*comparisons) -> bytes:
    doc = {
        "metadata": {"version": "2.0", "default_annotator": "d"},
        "annotators": {"d": {"type": "unknown"}, "h": {"type": "human"}},
        "comparisons": list(comparisons),
    }
    return json.dumps(doc, indent=2).encode()


GOOD_COMPARISON = {
    "id": "c1",
    "prompt": "Hi",
    "response_a": {"text": "Hello"},
    "response_b": {"text": "Go away"},
    "annotations": {"d": {"pref": "a"}},
}
ICAI_HEADER = ",text_a,text_b,preferred_text\n"
HS_OK = {"prompt": "p", "response_1": "r1", "response_2": "r2", "preference_strength": 1}
UF_OK = {
    "prompt": "p",
    "chosen": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "good"}],
    "rejected": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "bad"}],
}

# (id, file content, import options, where, field, words in the message)
BAD_FILES = [
    (
        "missing-field",
        jsonl(OK, {"prompt": "x", "response_a": "y"}),
        {},
        "line 2",
        "response_b",
        "missing field",
    ),
    (
        "unknown-preference",
        jsonl(OK, {**OK, "prompt": "q", "preferred": "c"}),
        {},
        "line 2",
        "preferred",
        "unknown preference 'c'",
    ),
    (
        "hh-rlhf-without-assistant-turn",
        jsonl(
            {
                "chosen": "\n\nHuman: hi\n\nAssistant: hello",
                "rejected": "\n\nHuman: hi\n\nAssistant: go",
            },
            {"id": "r2", "chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi"},
        ),
        {},
        "line 2",
        "chosen",
        "the record (id 'r2') has no Assistant turn",
    ),
    (
        "response-not-text",
        jsonl(OK, OK | {"prompt": "2"}, {**OK, "prompt": "3", "response_a": ["a list"]}),
        {},
        "line 3",
        "response_a",
        "expected text, got list",
    ),
    (
        "bad-json",
        jsonl(OK, b'{"prompt": "x", "response_a": }'),
        {},
        "line 2",
        None,
        "not valid JSON",
    ),
    ("not-an-object", jsonl(OK, b'["a", "b"]'), {}, "line 2", None, "one JSON object"),
    (
        "wrong-encoding-csv",
        csv_bytes(ICAI_HEADER + '0,"A","B",text_a\n1,"A2","Caf\u00e9 au lait",text_b\n', "latin-1"),
        {},
        "row 2 (line 3)",
        "text_b",
        "not valid UTF-8",
    ),
    (
        "wrong-encoding-jsonl",
        jsonl(OK, json.dumps({**OK, "prompt": "Cr\u00e8me"}, ensure_ascii=False).encode("cp1252")),
        {},
        "line 2",
        "prompt",
        "not valid UTF-8",
    ),
    (
        "icai-unknown-preferred",
        csv_bytes(ICAI_HEADER + "0,a,b,text_a\n1,c,d,text_c\n"),
        {},
        "row 2 (line 3)",
        "preferred_text",
        "unknown preference 'text_c'",
    ),
    (
        "csv-wrong-column-count",
        csv_bytes(ICAI_HEADER + "0,a,b,text_a\n1,c,d,e,text_b\n"),
        {},
        "row 2 (line 3)",
        None,
        "has 5 values but the header has 4",
    ),
    ("bad-score", jsonl({**OK, "score_a": "high"}), {}, "line 1", "score_a", "expected a number"),
    ("unknown-split", jsonl({**OK, "split": "holdout"}), {}, "line 1", "split", "unknown split"),
    (
        "annotation-without-preference",
        jsonl({**OK, "annotations": [{"annotator": "x"}]}),
        {},
        "line 1",
        "annotations[0].preferred",
        "missing field",
    ),
    (
        "hh-without-turns",
        jsonl(
            {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"},
            {"chosen": "Human: hi", "rejected": "plain text"},
        ),
        {"format": "hh_rlhf"},
        "line 2",
        "rejected",
        "no '\\n\\nHuman:'",
    ),
    (
        "uf-bad-messages",
        jsonl(UF_OK, {**UF_OK, "rejected": [1, 2]}),
        {},
        "line 2",
        "rejected",
        "message 1",
    ),
    (
        "uf-bad-score",
        jsonl({**UF_OK, "score_chosen": "high"}),
        {},
        "line 1",
        "score_chosen",
        "expected a number",
    ),
    (
        "helpsteer-strength-out-of-range",
        jsonl(HS_OK, {**HS_OK, "preference_strength": 5}),
        {},
        "line 2",
        "preference_strength",
        "from -3 to 3",
    ),
    (
        "helpsteer-missing-response",
        jsonl(HS_OK, {k: v for k, v in HS_OK.items() if k != "response_2"} | {"response_2": None}),
        {},
        "line 2",
        "response_2",
        "missing field",
    ),
    (
        "mapping-column-absent",
        csv_bytes("q,a1,a2\nx,y,z\n"),
        {"mapping": "prompt=q,response_a=a1,response_b=answer2"},
        "line 1",
        "answer2",
        "not in the header",
    ),
    (
        "mapping-missing-value",
        jsonl({"q": "x", "a1": "y", "a2": "z"}, {"q": "x2", "a1": "y"}),
        {"mapping": "prompt=q,response_a=a1,response_b=a2"},
        "line 2",
        "a2",
        "missing field",
    ),
    (
        "ap-missing-response-text",
        ap(GOOD_COMPARISON, {**GOOD_COMPARISON, "id": "c2", "response_b": {"model": "x"}}),
        {},
        "comparison 2",
        "response_b.text",
        "missing field",
    ),
    (
        "ap-unknown-preference",
        ap({**GOOD_COMPARISON, "annotations": {"h": {"pref": "c"}}}),
        {},
        "comparison 1",
        "annotations.h.pref",
        "unknown preference",
    ),
    (
        "ap-bad-json",
        b'{\n  "comparisons": [\n    {"id": 1,,}\n  ]\n}\n',
        {},
        "line 3",
        None,
        "not valid JSON",
    ),
    (
        "bad-timestamp",
        jsonl(
            {**OK, "annotations": [{"annotator": "x", "preferred": "a", "shown_at": "yesterday"}]}
        ),
        {},
        "line 1",
        "annotations[0].shown_at",
        "ISO 8601",
    ),
]


def _counts():
    return (
        Dataset.objects.count(),
        PreferencePair.objects.count(),
        Annotation.objects.count(),
    )


def test_the_table_has_at_least_twelve_files_naming_a_field():
    assert len(BAD_FILES) >= 12
    assert sum(1 for case in BAD_FILES if case[4]) >= 12


@pytest.mark.parametrize(
    ("content", "options", "where", "field", "words"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_fails_with_row_and_field_and_changes_nothing(
    study, tmp_path, content, options, where, field, words
):
    # An existing dataset with a pair: the failed import must neither add to it nor
    # create the new dataset.
    existing = PairFactory(dataset__study=study, dataset__name="target")
    before = _counts()
    path = tmp_path / "bad-input"
    path.write_bytes(content)
    for dataset_name in ("target", "new dataset"):
        with pytest.raises(DataImportError) as caught:
            pairs_import(study=study, dataset_name=dataset_name, file=path, **options)
        message = str(caught.value)
        assert message.startswith(where), message
        if field:
            assert f"field '{field}'" in message, message
            assert caught.value.field == field
        assert words in message, message
    assert _counts() == before
    assert Dataset.objects.get(pk=existing.dataset_id).import_report == {}


def test_error_after_the_first_saved_chunk_rolls_everything_back(study, tmp_path):
    rows = [{**OK, "prompt": f"Question {i}?"} for i in range(2500)]
    rows.append({**OK, "prompt": "last", "preferred": "maybe"})
    path = tmp_path / "long.jsonl"
    path.write_bytes(jsonl(*rows))
    with pytest.raises(DataImportError, match=r"^line 2501, field 'preferred'"):
        pairs_import(study=study, dataset_name="long", file=path)
    assert _counts() == (0, 0, 0)


def test_file_above_the_configured_cap_is_refused(study, tmp_path, settings):
    settings.GCAI_IMPORT_MAX_BYTES = 100
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl(OK, OK | {"prompt": "another one"}))
    with pytest.raises(
        DataImportError, match=r"import limit is 0\.0 MB \(setting GCAI_IMPORT_MAX_BYTES\)"
    ):
        pairs_import(study=study, dataset_name="big", file=path)
    assert _counts() == (0, 0, 0)


def test_stream_without_a_known_size_is_cut_at_the_cap(study, settings):
    settings.GCAI_IMPORT_MAX_BYTES = 150

    class Pipe:
        """A non-seekable stream (like stdin) whose size is unknown up front."""

        def __init__(self, data: bytes) -> None:
            self.data = data

        def seekable(self) -> bool:
            return False

        def read(self, n: int = -1) -> bytes:
            out, self.data = (self.data, b"") if n < 0 else (self.data[:n], self.data[n:])
            return out

    with pytest.raises(DataImportError, match="GCAI_IMPORT_MAX_BYTES"):
        pairs_import(study=study, dataset_name="pipe", file=Pipe(jsonl(*[OK] * 5)))
    assert _counts() == (0, 0, 0)


def test_unrecognised_columns_ask_for_a_format_or_mapping(study):
    with pytest.raises(DataImportError, match="could not recognise the format") as caught:
        pairs_import(study=study, dataset_name="x", file=b"foo,bar\n1,2\n")
    assert "foo, bar" in str(caught.value)
    assert "mapping" in str(caught.value)


def test_empty_file(study):
    with pytest.raises(DataImportError, match="empty"):
        pairs_import(study=study, dataset_name="x", file=b"")


def test_bad_mapping_names_the_unknown_field(study):
    with pytest.raises(DataImportError, match="unknown mapping field"):
        pairs_import(study=study, dataset_name="x", file=b"q\n1\n", mapping="question=q")


def test_mapping_with_a_non_generic_format_is_refused(study):
    with pytest.raises(DataImportError, match="only applies to the generic format"):
        pairs_import(
            study=study,
            dataset_name="x",
            file=jsonl(OK),
            format="gcai",
            mapping="prompt=a,response_a=b,response_b=c",
        )


def test_statement_errors_name_row_and_field_and_change_nothing(study):
    content = b"text,moderation\nFine.,approved\nAlso fine.,maybe\n"
    with pytest.raises(DataImportError) as caught:
        statements_import(study=study, file=content)
    assert str(caught.value).startswith("row 2 (line 3), field 'moderation'")
    empty = b'text\nFine.\n"  "\n'
    with pytest.raises(DataImportError, match=r"^row 2 \(line 3\), field 'text': empty statement"):
        statements_import(study=study, file=empty)
    assert ValueStatement.objects.count() == 0
