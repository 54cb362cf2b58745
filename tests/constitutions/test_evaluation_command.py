"""``manage.py evaluate``: the report table in the terminal."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from gcai.constitutions.models import Evaluation
from tests.constitutions.evaluation_support import (
    PLEASE,
    make_constitution,
    polite_pairs,
    serve_judge,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge_server(settings):
    yield from serve_judge(settings)


def evaluate(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("evaluate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_inline_evaluation_prints_the_report_table_with_baselines(study, judge_server):
    polite_pairs(study, 8)
    constitution = make_constitution(study, [PLEASE], title="Polite")

    out, err = evaluate(str(constitution.pk), "--baselines", "--inline")

    lines = out.splitlines()
    assert lines[0].split()[:3] == ["Evaluated", "Split", "n"]
    # Forced choice (as published): the headline, order disagreement and kappa only.
    for title in ("Accuracy", "Order disagreement", "κ"):
        assert title in lines[0]
    assert "Coverage" not in lines[0]
    assert any(line.startswith("Accuracy: The published measure") for line in lines)
    polite = next(line for line in lines if "Polite v1" in line)
    assert "100.0% [" in polite
    assert "1.00 [" in polite  # kappa with its interval
    assert any("Baseline: no constitution" in line for line in lines)
    assert any("Baseline: orthogonal constitution" in line for line in lines)
    assert "3 evaluation(s) on 8 held-out test pairs" in err
    assert Evaluation.objects.filter(status="succeeded").count() == 3


def test_abstaining_adds_strict_agreement_coverage_and_abstention_columns(study, judge_server):
    polite_pairs(study, 4)
    constitution = make_constitution(study, [PLEASE], title="Polite")

    out, _ = evaluate(str(constitution.pk), "--inline", "--allow-abstain", "--ties", "tie")

    header = out.splitlines()[0]
    for title in ("Accuracy", "Strict agreement", "Coverage", "Strict (abstain = ½)"):
        assert title in header
    assert any(line.startswith("Coverage: Share of pairs") for line in out.splitlines())
    evaluation = Evaluation.objects.get()
    assert evaluation.config["eval"]["allow_abstain"] is True
    assert evaluation.config["ties"] == "tie"


def test_training_split_limit_and_json_output(study, judge_server):
    polite_pairs(study, 10, split="train")
    constitution = make_constitution(study, [PLEASE])

    out, err = evaluate(
        str(constitution.pk), "--split", "train", "--limit", "4", "--inline", "--json"
    )

    [row] = json.loads(out)
    assert row["split"] == "train"
    assert row["n_scored"] == 4
    assert float(row["accuracy"]) == 1.0
    assert "TRAINING pairs (not held out)" in err


def test_ground_truth_file_adds_similarity_notes(study, judge_server, tmp_path):
    polite_pairs(study, 2)
    constitution = make_constitution(study, [PLEASE])
    truth = tmp_path / "truth.txt"
    truth.write_text(f"# generating principles\n{PLEASE}\n", encoding="utf-8")

    out, _ = evaluate(str(constitution.pk), "--ground-truth", str(truth), "--inline")

    assert "Similarity to the ground truth" in out
    assert "ground truth vs itself 1.000" in out


def test_without_wait_or_inline_it_only_queues(study, django_capture_on_commit_callbacks):
    polite_pairs(study, 2)
    constitution = make_constitution(study, [PLEASE])
    with django_capture_on_commit_callbacks() as callbacks:
        out, _ = evaluate(str(constitution.pk), "--baselines")
    assert out.startswith("Queued evaluations #")
    assert len(callbacks) == 3


def test_unknown_constitution_and_missing_pairs_are_errors(study):
    with pytest.raises(CommandError, match="No constitution"):
        evaluate("999999", "--inline")
    constitution = make_constitution(study, [PLEASE])
    with pytest.raises(CommandError, match="No labelled test pairs"):
        evaluate(str(constitution.pk), "--inline")


def test_a_failed_evaluation_makes_the_command_fail_after_the_table(study, judge_server, settings):
    from tests.fakes import Fault

    settings.GCAI_LLM_MAX_RETRIES = 0
    judge_server.responder = lambda body: Fault.server_error(503)
    polite_pairs(study, 2)
    constitution = make_constitution(study, [PLEASE])
    with pytest.raises(CommandError, match="failed"):
        evaluate(str(constitution.pk), "--inline")
