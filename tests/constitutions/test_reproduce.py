"""``manage.py reproduce_table1`` and ``manage.py build_constitution`` with a scripted,
rule-following judge behind the fake OpenAI-compatible server, in process (no worker)."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from gcai.constitutions.models import PipelineRun
from tests.core.scripted import SYNTHETIC, Rule
from tests.fakes.rule_judge import rule_judge_responder

pytestmark = pytest.mark.django_db

BASELINES = ("no_constitution", "orthogonal")
ICAI_METHODS = ("icai", "icai_improved_1", "icai_improved_2")


def _command(name: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _table(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "table1.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["method", "n", "accuracy", "ci_low", "ci_high"]
        return {row["method"]: row for row in reader}


def _assert_published_pattern(table: dict[str, dict[str, str]], methods: tuple[str, ...]):
    assert list(table) == [*BASELINES, *methods]
    n = {int(row["n"]) for row in table.values()}
    assert len(n) == 1  # every row judged on the same test pairs
    assert n.pop() > 0
    for name in BASELINES:
        assert 0.4 <= float(table[name]["accuracy"]) <= 0.6, (name, table[name])
    best_baseline = max(float(table[name]["ci_high"]) for name in BASELINES)
    for name in methods:
        row = table[name]
        assert float(row["ci_low"]) <= float(row["accuracy"]) <= float(row["ci_high"])
        assert float(row["accuracy"]) >= 0.75, (name, row)
        # Far above the baselines: the intervals do not even touch.
        assert float(row["ci_low"]) > best_baseline, (name, row)


def test_table1_on_icai_synthetic_data(llm_server, tmp_path):
    llm_server.responder = rule_judge_responder()
    out_dir = tmp_path / "table"

    out, err = _command(
        "reproduce_table1",
        str(SYNTHETIC / "synthetic_data_mixed_vqvtb_adcbg.csv"),
        "--out",
        str(out_dir),
    )

    table = _table(out_dir)
    _assert_published_pattern(table, ICAI_METHODS)  # no reasons in the file: no gcai row
    markdown = (out_dir / "table1.md").read_text(encoding="utf-8")
    assert markdown == out
    assert markdown.startswith("| method | n | accuracy (%) | 95% CI |")
    assert "| icai_improved_1 |" in markdown
    assert "] " in err  # the progress bar was drawn
    runs = PipelineRun.objects.filter(study__name="Table 1 on synthetic_data_mixed_vqvtb_adcbg.csv")
    assert sorted(runs.values_list("method", flat=True)) == sorted(ICAI_METHODS)
    versions = {r.method: r.config["preset_version"] for r in runs}
    assert versions == {"icai": 1, "icai_improved_1": 1, "icai_improved_2": 2}

    # Running it again reuses the pairs and the paid answers: same table, no new calls.
    calls = llm_server.chat_calls
    _command(
        "reproduce_table1",
        str(SYNTHETIC / "synthetic_data_mixed_vqvtb_adcbg.csv"),
        "--out",
        str(out_dir),
        "--no-progress",
    )
    assert llm_server.chat_calls == calls
    assert _table(out_dir) == table


# --------------------------------------------------------------------------- own data

PLEASE = Rule(
    "please",
    "Select the response that says please.",
    ("Select the response that politely says please.",),
    lambda t: "please" in t.lower(),
)
METRES = Rule(
    "metres",
    "Select the response that gives distances in metres.",
    ("Select the response that uses metres for distances.",),
    lambda t: "metres" in t.lower(),
)
SOURCE = Rule(
    "source",
    "Select the response that names its source.",
    ("Select the response that cites a source.",),
    lambda t: "source:" in t.lower(),
)
OWN_RULES = (PLEASE, METRES, SOURCE)
# (preferred, rejected): the rejected response is the longer one, so length explains nothing.
_TEMPLATES = {
    "please": (
        "Please take the second street on the left.",
        "Take the second street on the left, then keep walking.",
    ),
    "metres": (
        "The station is 400 metres away.",
        "The station is only a very short walk away from here.",
    ),
    "source": (
        "It opened in 1901 (source: city archive).",
        "It opened in 1901, a long time ago, as many people know.",
    ),
}


def _own_data(path: Path, n: int = 60) -> Path:
    """Pairs whose preferences follow three known rules, each with a person's reason."""
    rng = random.Random(3)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            key = ("please", "metres", "source")[i % 3]
            good, bad = _TEMPLATES[key]
            a_good = rng.random() < 0.5
            record = {
                "id": f"own-{i}",
                "prompt": f"Question {i}: how do I get to the museum?",
                "response_a": good if a_good else bad,
                "response_b": bad if a_good else good,
                "preferred": "a" if a_good else "b",
                "reason": f"I chose it because of the {key} part.",
            }
            fh.write(json.dumps(record) + "\n")
    return path


def test_table1_on_own_synthetic_data_with_reasons_includes_gcai(llm_server, tmp_path):
    llm_server.responder = rule_judge_responder(OWN_RULES)
    data = _own_data(tmp_path / "own.jsonl")

    _command("reproduce_table1", str(data), "--out", str(tmp_path / "t"), "--no-progress")

    _assert_published_pattern(_table(tmp_path / "t"), (*ICAI_METHODS, "gcai"))


def test_build_constitution_prints_and_writes_it_with_its_run_record(llm_server, tmp_path):
    llm_server.responder = rule_judge_responder(OWN_RULES)
    data = _own_data(tmp_path / "own.jsonl", 30)

    out, err = _command(
        "build_constitution",
        str(data),
        "--method",
        "icai",
        "--out",
        str(tmp_path / "c"),
        "--set",
        '{"max_principles": 5}',
        "--no-progress",
    )

    for rule in OWN_RULES:
        assert rule.key in out.lower()
    record = json.loads((tmp_path / "c" / "run.json").read_text(encoding="utf-8"))
    assert record["preset"] == "icai"
    assert record["preset_version"] == 1
    assert record["overrides"] == {"max_principles": 5}
    assert record["settings"]["aggregation"] == "unanimous"
    assert record["settings"]["use_scores"] is False
    assert record["training_pairs"] == 30
    principles = [p["text"].lower() for p in record["constitution"]["principles"]]
    # Every principle is one of the planted rules (in some wording); the noise lost.
    assert 3 <= len(principles) <= 5
    assert all(any(rule.key in text for rule in OWN_RULES) for text in principles)
    assert all(p["stats"]["against"] == 0 for p in record["constitution"]["principles"])
    assert (tmp_path / "c" / "constitution.md").read_text(encoding="utf-8").count("\n1. ") == 1
    assert "preset icai v1" in err

    with pytest.raises(CommandError, match="aggregation"):
        _command(
            "build_constitution", str(data), "--method", "icai", "--set", '{"aggregation": "x"}'
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build_constitution", "{missing}", "--method", "icai"], "No such file"),
        (["build_constitution", "{data}", "--method", "icai", "--test-fraction", "1"], "below 1"),
        (["build_constitution", "{data}", "--method", "icai", "--set", "[1]"], "JSON object"),
        (["build_constitution", "{data}", "--method", "icai", "--set", "{{"], "not valid JSON"),
        (["reproduce_table1", "{missing}"], "No such file"),
        (["reproduce_table1", "{data}", "--test-fraction", "0"], "between 0 and 1"),
    ],
)
def test_file_commands_refuse_bad_options_before_importing(tmp_path, args, message):
    data = SYNTHETIC / "synthetic_data_orthogonal_adcbg.csv"
    filled = [a.format(missing=tmp_path / "nope.csv", data=data) for a in args]
    with pytest.raises(CommandError, match=message):
        _command(*filled)
    assert not PipelineRun.objects.exists()
