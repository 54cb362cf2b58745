"""Exports: content, pseudonyms only, bounded queries, and export -> import round trips."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from annotations import exports
from annotations.imports import pairs_import, statements_import
from annotations.models import Dataset, PreferencePair, Role, ValueStatement
from gcai.constitutions import exports as constitution_exports
from tests.annotations.io_owned_objects import make_constitution, make_survey
from tests.factories import (
    AnnotationFactory,
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    ParticipantFactory,
    StatementFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SECRETS = ("alice-secret", "alice@example.org", "PROLIFIC-PID-123", "bob-researcher")


@pytest.fixture
def rich_study(study):
    """A dataset with every kind of pair field and all three kinds of annotator."""
    alice = UserFactory(username="alice-secret", email="alice@example.org")
    member = MembershipFactory(user=alice, study=study, role=Role.ANNOTATOR)
    participant = ParticipantFactory(study=study, prolific_pid="PROLIFIC-PID-123")
    dataset = DatasetFactory(study=study, name="rich")
    at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    p1 = PairFactory(
        dataset=dataset,
        external_id="ext-1",
        prompt="Hi\n\nHow are you?",
        prompt_messages=[
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": "How are you?"},
        ],
        response_a='Fine, "thanks", and you?',
        response_b="=SUM(A1:A3), a formula-looking answer",
        source_preference="a",
        source_reason="A is polite.",
        score_a=7.5,
        score_b=None,
        split="train",
        metadata={"model_a": "m1", "model_b": "m2", "topic": "greeting", "nested": {"k": [1, 2]}},
    )
    p2 = PairFactory(dataset=dataset, external_id="", source_preference="none", split="unassigned")
    p3 = PairFactory(
        dataset=dataset, source_preference="both_bad", split="test", score_a=1, score_b=2
    )
    AnnotationFactory(
        pair=p1,
        annotator=alice,
        preferred="a",
        reason="Polite and answers.",
        shown_swapped=True,
        shown_at=at,
        submitted_at=at.replace(second=40),
        duration_ms=33000,
    )
    AnnotationFactory(
        pair=p1,
        annotator=None,
        participant=participant,
        preferred="tie",
        reason="Both fine.",
        submitted_at=at,
    )
    AnnotationFactory(
        pair=p1,
        annotator=None,
        external_annotator="2f45a6d0",
        preferred="b",
        reason="",
        submitted_at=at,
        metadata={"annotator_type": "principle", "annotator_description": "Select the terse one."},
    )
    AnnotationFactory(
        pair=p3, annotator=alice, preferred="both_bad", reason="Neither helps.", submitted_at=at
    )
    return {"dataset": dataset, "member": member, "participant": participant, "pairs": [p1, p2, p3]}


def _snapshot(dataset: Dataset) -> dict:
    """Everything about a dataset's pairs and annotations that an export must carry."""
    member_names = exports.member_pseudonyms(study=dataset.study)
    out = {}
    for pair in PreferencePair.objects.filter(dataset=dataset).prefetch_related(
        "annotations__participant"
    ):
        annotations = set()
        for a in pair.annotations.all():
            who = (
                member_names[a.annotator_id]
                if a.annotator_id
                else a.participant.pseudonym
                if a.participant_id
                else a.external_annotator
            )
            annotations.add(
                (
                    who,
                    a.preferred,
                    a.reason,
                    a.shown_swapped,
                    a.shown_at,
                    a.submitted_at,
                    a.duration_ms,
                    json.dumps(a.metadata, sort_keys=True),
                )
            )
        out[pair.content_hash] = {
            "external_id": pair.external_id,
            "prompt": pair.prompt,
            "prompt_messages": pair.prompt_messages,
            "response_a": pair.response_a,
            "response_b": pair.response_b,
            "source_preference": pair.source_preference,
            "source_reason": pair.source_reason,
            "score_a": pair.score_a,
            "score_b": pair.score_b,
            "split": pair.split,
            "metadata": pair.metadata,
            "annotations": annotations,
        }
    return out


@pytest.mark.parametrize(
    ("fmt", "import_format"),
    [("jsonl", "gcai"), ("csv", "gcai"), ("icai_json", "icai_ap")],
)
def test_export_then_import_gives_the_same_pairs_and_annotations(
    rich_study, tmp_path, fmt, import_format
):
    dataset = rich_study["dataset"]
    kind = exports.PAIR_EXPORTS[fmt]
    path = tmp_path / f"export.{kind.extension}"
    path.write_text("".join(kind.function(study=dataset.study, dataset=dataset)), encoding="utf-8")

    other_study = StudyFactory(name="Replication")
    report = pairs_import(study=other_study, dataset_name="copy", file=path)
    assert report.format == import_format
    assert (report.created, report.annotations_created) == (3, 4)
    copy = Dataset.objects.get(study=other_study, name="copy")
    assert _snapshot(copy) == _snapshot(dataset)

    # Importing the same export again changes nothing.
    again = pairs_import(study=other_study, dataset_name="copy", file=path)
    assert (again.created, again.duplicates, again.annotations_created) == (0, 3, 0)
    assert again.annotations_duplicate == 4


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "icai_json"])
def test_pair_exports_name_people_only_by_pseudonym(rich_study, fmt):
    study = rich_study["dataset"].study
    text = "".join(exports.PAIR_EXPORTS[fmt].function(study=study))
    for secret in SECRETS:
        assert secret not in text
    assert rich_study["member"].pseudonym in text
    assert rich_study["participant"].pseudonym in text


def test_jsonl_export_holds_pair_id_responses_annotator_preference_order_and_timings(rich_study):
    study = rich_study["dataset"].study
    lines = [json.loads(line) for line in exports.pairs_export_jsonl(study=study)]
    first = next(line for line in lines if line["id"] == "ext-1")
    assert first["pair_id"] == rich_study["pairs"][0].pk
    assert first["preferred"] == "a"
    by_who = {a["annotator"]: a for a in first["annotations"]}
    member = by_who[rich_study["member"].pseudonym]
    assert member["annotator_kind"] == "member"
    assert (member["preferred"], member["shown_order"], member["duration_ms"]) == (
        "a",
        "b_left",
        33000,
    )
    assert member["shown_at"] == "2026-03-04T05:06:07.891011+00:00"
    assert by_who[rich_study["participant"].pseudonym]["annotator_kind"] == "participant"
    assert by_who["2f45a6d0"]["annotator_kind"] == "external"


def test_csv_export_has_one_row_per_annotation(rich_study):
    study = rich_study["dataset"].study
    rows = list(csv.DictReader(io.StringIO("".join(exports.pairs_export_csv(study=study)))))
    # 3 annotations on the first pair, none on the second (one row), 1 on the third.
    assert len(rows) == 5
    assert rows[0]["pair_id"] == str(rich_study["pairs"][0].pk)
    assert {r["annotator"] for r in rows[:3]} == {
        rich_study["member"].pseudonym,
        rich_study["participant"].pseudonym,
        "2f45a6d0",
    }
    assert rows[3]["annotator"] == ""
    assert list(rows[0]) == exports.PAIR_CSV_COLUMNS


def test_icai_export_is_annotated_pairs_v2(rich_study):
    study = rich_study["dataset"].study
    doc = json.loads("".join(exports.pairs_export_icai(study=study)))
    assert doc["metadata"]["version"] == "2.0"
    default = doc["metadata"]["default_annotator"]
    assert default in doc["annotators"]
    first = doc["comparisons"][0]
    assert first["response_a"] == {"text": 'Fine, "thanks", and you?', "model": "m1"}
    assert first["annotations"][default] == {"pref": "a"}
    assert doc["annotators"]["2f45a6d0"]["type"] == "principle"
    assert doc["annotators"][rich_study["member"].pseudonym]["type"] == "human"
    both_bad = doc["comparisons"][2]["annotations"][default]
    assert both_bad == {"pref": None, "no_pref_reason": "both_bad"}


def test_pair_export_queries_do_not_grow_with_pairs(
    study, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(exports, "CHUNK_SIZE", 10)
    dataset = DatasetFactory(study=study)
    members = [MembershipFactory(study=study, role=Role.ANNOTATOR).user for _ in range(3)]
    participant = ParticipantFactory(study=study)
    for _ in range(30):
        pair = PairFactory(dataset=dataset)
        for user in members:
            AnnotationFactory(pair=pair, annotator=user)
        AnnotationFactory(pair=pair, annotator=None, participant=participant)
    # 1 for pseudonyms + (pairs + annotations) per chunk of 10 pairs.
    for function in (
        exports.pairs_export_jsonl,
        exports.pairs_export_csv,
        exports.pairs_export_icai,
    ):
        with django_assert_max_num_queries(1 + 2 * 3):
            text = "".join(function(study=study, dataset=dataset))
        assert participant.pseudonym in text


def test_statement_exports_carry_moderation_and_pseudonyms_only(
    study, django_assert_max_num_queries
):
    participant = ParticipantFactory(study=study, prolific_pid="PROLIFIC-PID-123")
    StatementFactory(study=study, participant=participant, text="Be honest.", moderation="approved")
    StatementFactory(
        study=study,
        participant=None,
        external_participant="ext-7",
        text="Be kind.",
        moderation="pending",
    )
    for _ in range(20):
        StatementFactory(study=study)
    with django_assert_max_num_queries(1):
        text = "".join(exports.statements_export_csv(study=study))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 22
    assert (rows[0]["participant"], rows[0]["moderation"], rows[0]["text"]) == (
        participant.pseudonym,
        "approved",
        "Be honest.",
    )
    assert rows[1]["participant"] == "ext-7"
    assert "PROLIFIC-PID-123" not in text
    lines = [json.loads(line) for line in exports.statements_export_jsonl(study=study)]
    assert lines[1] == {**lines[1], "participant": "ext-7", "participant_kind": "external"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_statements_export_then_import_round_trip(study, tmp_path, fmt):
    participant = ParticipantFactory(study=study)
    StatementFactory(
        study=study,
        participant=participant,
        question="Q?",
        text="Be honest.",
        moderation="approved",
    )
    StatementFactory(
        study=study,
        participant=None,
        external_participant="ext-7",
        text="Be kind.",
        moderation="rejected",
    )
    kind = exports.STATEMENT_EXPORTS[fmt]
    path = tmp_path / f"s.{kind.extension}"
    path.write_text("".join(kind.function(study=study)))
    # Back into the same study: everything is already there.
    assert statements_import(study=study, file=path).duplicates == 2
    other = StudyFactory()
    report = statements_import(study=other, file=path)
    assert report.created == 2
    copied = sorted(
        ValueStatement.objects.filter(study=other).values_list(
            "external_participant", "question", "text", "moderation"
        )
    )
    assert copied == sorted(
        [
            ("ext-7", "", "Be kind.", "rejected"),
            (participant.pseudonym, "Q?", "Be honest.", "approved"),
        ]
    )


@pytest.fixture
def constitution(study):
    from gcai.constitutions.models import ConstitutionPrinciple, Principle

    dataset = DatasetFactory(study=study)
    pair = PairFactory(dataset=dataset)
    annotation = AnnotationFactory(pair=pair)
    statement = StatementFactory(study=study)
    constitution = make_constitution(study, title="Grounded", method="gcai")
    for position in range(1, 6):
        principle = Principle.objects.create(
            study=study,
            text=f"Original wording {position}",
            origin="contextual" if position % 2 else "general",
            stats={"for": 10 - position, "against": position},
            rank=position,
        )
        principle.supporting_pairs.add(pair)
        principle.supporting_annotations.add(annotation)
        principle.supporting_statements.add(statement)
        ConstitutionPrinciple.objects.create(
            constitution=constitution,
            principle=principle,
            position=position,
            text=f"Principle {position}.",
        )
    constitution.evidence = {
        "pair": pair.pk,
        "annotation": annotation.pk,
        "statement": statement.pk,
    }
    return constitution


def test_constitution_json_has_principles_origins_stats_and_evidence(
    constitution, django_assert_max_num_queries
):
    with django_assert_max_num_queries(5):
        data = json.loads(constitution_exports.constitution_export_json(constitution=constitution))
    assert (data["title"], data["version"], data["method"]) == ("Grounded", 1, "gcai")
    assert [p["position"] for p in data["principles"]] == [1, 2, 3, 4, 5]
    first = data["principles"][0]
    assert first["text"] == "Principle 1."
    assert first["original_text"] == "Original wording 1"
    assert first["origin"] == "contextual"
    assert first["stats"] == {"for": 9, "against": 1}
    evidence = constitution.evidence
    assert first["evidence"] == {
        "pairs": [evidence["pair"]],
        "annotations": [evidence["annotation"]],
        "statements": [evidence["statement"]],
    }


def test_constitution_markdown_and_system_prompt(constitution):
    markdown = constitution_exports.constitution_export_markdown(constitution=constitution)
    assert markdown.startswith("# Grounded (version 1)\n")
    assert "1. Principle 1.\n   - origin: contextual · for 9, against 1" in markdown
    text = constitution_exports.constitution_export_text(constitution=constitution)
    assert text.splitlines()[0] == "When you respond, follow these principles:"
    assert "\n5. Principle 5.\n" in text
    assert "origin" not in text


def test_survey_answers_csv_one_row_per_answer_without_prolific_ids(
    study, django_assert_max_num_queries
):
    from surveys.models import Answer, SurveyQuestion, SurveyResponse

    survey = make_survey(study)
    questions = [
        SurveyQuestion.objects.create(survey=survey, position=i, key=key, text=f"{key}?")
        for i, key in enumerate(["moral_grounding", "personal", "coherence"], start=1)
    ]
    for n in range(4):
        participant = ParticipantFactory(study=study, prolific_pid=f"PROLIFIC-PID-12{n}")
        response = SurveyResponse.objects.create(
            survey=survey, participant=participant, a_on_left=bool(n % 2)
        )
        for question in questions:
            Answer.objects.create(
                response=response, question=question, choice="a" if n else "tie", comment="=1+1"
            )
    with django_assert_max_num_queries(2):
        # The Data page's survey-answers file is the surveys app's export.
        text = "".join(exports.SURVEY_EXPORTS["csv"].function(survey=survey))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 12
    assert "PROLIFIC-PID" not in text
    decided = next(r for r in rows if r["choice"] == "a")
    assert decided["chosen_constitution"] == "Constitution A v1"
    assert decided["question_key"] in {"moral_grounding", "personal", "coherence"}
    assert decided["participant"].startswith("P-")
    assert decided["comment"] == "'=1+1"  # never a live formula in a spreadsheet


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_formula_text_is_escaped_in_csv_and_still_round_trips(study, fmt):
    texts = {
        "prompt": '=HYPERLINK("http://x")',
        "response_a": "-minus",
        "response_b": "'=quoted already",
        "source_reason": "@at",
    }
    PairFactory(dataset__study=study, dataset__name="src", **texts)
    text = "".join(exports.PAIR_EXPORTS[fmt].function(study=study))
    if fmt == "csv":
        row = next(csv.DictReader(io.StringIO(text)))
        assert row["prompt"] == '\'=HYPERLINK("http://x")'
        assert row["response_b"] == "''=quoted already"
    report = pairs_import(study=study, dataset_name="back", file=text.encode())
    assert report.created == 1
    back = PreferencePair.objects.get(dataset__name="back")
    assert {k: getattr(back, k) for k in texts} == texts
