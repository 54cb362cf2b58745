"""``manage.py icai_encoder_ablation``: one table of improved 2 per encoder set."""

from __future__ import annotations

import csv
import json

import pytest
from django.core.management import CommandError, call_command

from tests.constitutions.judge_server import judge_responder
from tests.core.scripted import Judge
from tests.core.stylistic import STYLE_NOISE, STYLE_RULES, style_pairs


def _write(path, pairs):
    rows = [
        {
            "id": p.id,
            "prompt": p.prompt,
            "response_a": p.response_a,
            "response_b": p.response_b,
            "preferred": str(p.preferred),
        }
        for p in pairs
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")


@pytest.mark.django_db
def test_ablation_prints_one_row_per_encoder_set_and_writes_the_table(tmp_path, llm_server, capsys):
    llm_server.responder = judge_responder(Judge(STYLE_RULES, noise=STYLE_NOISE))
    data = tmp_path / "pairs.jsonl"
    _write(data, style_pairs(45, seed=3))
    call_command("icai_encoder_ablation", str(data), "--out", str(tmp_path / "out"))

    out = capsys.readouterr().out
    assert "| encoders | triplets | generation calls | principles | accuracy (14 held-out" in out
    rows = list(csv.DictReader((tmp_path / "out" / "ablation.csv").open()))
    assert [r["encoders"] for r in rows] == [
        "content",
        "style",
        "sentiment",
        "content + style + sentiment",
    ]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    assert float(rows[-1]["accuracy"]) > 0.9  # the recovered rules explain held-out pairs


def test_bad_input_is_refused_clearly(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="not a preference pair"):
        call_command("icai_encoder_ablation", str(bad))
    with pytest.raises(CommandError, match="unknown encoder"):
        call_command("icai_encoder_ablation", str(bad), "--encoders", "tone")
