"""The export_training_data and steer_eval commands."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from gcai.modeling.models import SteeringRun
from tests.modeling.support import RULE, labelled_pairs, make_constitution, steering_responder

pytestmark = pytest.mark.django_db


def test_export_command_writes_split_files_and_provenance(study, tmp_path, capsys):
    pairs = labelled_pairs(study)
    constitution = make_constitution(study, [RULE], evidence=[[pairs[0]]])
    call_command(
        "export_training_data", "--constitution", str(constitution.pk), "--out", str(tmp_path),
        "--style", "standard", "--kind", "kto",
    )  # fmt: skip
    train = [json.loads(ln) for ln in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert len(train) == 6  # 3 decisive pairs x 2 KTO rows
    assert train[0]["prompt"].startswith("Follow these principles")
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["settings"]["kind"] == "kto"
    assert "train.jsonl: 6 rows" in capsys.readouterr().out


def test_export_command_refuses_a_draft(study, tmp_path):
    draft = make_constitution(study, [RULE], publish=False)
    with pytest.raises(CommandError, match="published"):
        call_command(
            "export_training_data", "--constitution", str(draft.pk), "--out", str(tmp_path)
        )
    assert not list(tmp_path.iterdir())


def test_steer_eval_inline_prints_the_report(study, fake_llm, tmp_path, capsys):
    fake_llm.responder = steering_responder()
    constitution = make_constitution(study, [RULE])
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": f"Q{i}?"}) for i in range(6)))
    call_command(
        "steer_eval", "--constitution", str(constitution.pk), "--prompts-file", str(prompts),
        "--target-base-url", fake_llm.base_url, "--target-model", "target", "--inline",
        "--out", str(tmp_path / "report.json"),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "100.0%" in out
    run = SteeringRun.objects.get()
    assert run.status == "succeeded"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["results"]["comparisons"][0]["wins"] == 12
    assert "api_key" not in json.dumps(report["config"]).replace("api_key_env", "")


def test_critique_run_exports_sft_rows_with_their_principle(
    study, fake_llm, tmp_path, owner_client
):
    fake_llm.responder = lambda req: f"turns={len(req['messages'])}"
    constitution = make_constitution(study, [RULE, "Select the response that is kind."])
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("First?\nSecond?\nThird?\n")
    call_command(
        "steer_eval", "--kind", "critique", "--constitution", str(constitution.pk),
        "--prompts-file", str(prompts), "--target-base-url", fake_llm.base_url,
        "--target-model", "target", "--inline",
    )  # fmt: skip
    run = SteeringRun.objects.get()
    assert run.results == {"n_prompts": 3, "n_revised": 3, "n_failed": 0}
    call_command("export_training_data", "--critique-run", str(run.pk), "--out", str(tmp_path))
    rows = [
        json.loads(ln) for ln in (tmp_path / "critique_revision.jsonl").read_text().splitlines()
    ]
    assert [r["messages"][0]["content"] for r in rows] == ["First?", "Second?", "Third?"]
    assert all(r["messages"][1]["content"] == "turns=5" for r in rows)  # the revision
    assert all(r["principle"].startswith("When generating a response") for r in rows)
    page = owner_client.get(reverse("steering_detail", args=[study.pk, run.pk])).content.decode()
    assert "Critiques and revisions" in page
    assert "Revision:</strong> turns=5" in page
    download = owner_client.get(reverse("steering_export", args=[study.pk, run.pk]))
    assert len(b"".join(download.streaming_content).splitlines()) == 3
