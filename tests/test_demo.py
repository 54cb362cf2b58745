"""The demo's build step on a tiny slice, with the fake LLM server: every object exists."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from annotations.models import Membership, Moderation, PreferencePair
from gcai.constitutions.models import Constitution, Evaluation, PipelineRun, StageArtifact
from gcai.demo import build
from gcai.jobs.models import JobStatus
from surveys.models import Survey, SurveyStatus
from tests.core.scripted import HONEST, Judge
from tests.fakes import FakeOpenAIServer
from tests.groups.support import CONCISE, DETAILED, group_responder


@pytest.fixture
def tiny_demo(settings, tmp_path, monkeypatch):
    lines = build.PAIRS_FILE.read_text(encoding="utf-8").splitlines()[:40]
    slice_file = tmp_path / "pairs.jsonl"
    slice_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(build, "PAIRS_FILE", slice_file)
    quick_file = tmp_path / "quick.jsonl"
    quick_file.write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    monkeypatch.setattr(build, "QUICK_PAIRS_FILE", quick_file)
    monkeypatch.setattr(
        build.DemoSizes,
        "for_backend",
        classmethod(lambda cls, backend: cls(8, 6, 1, 3, 5, False, quick_dataset=True)),
    )
    # The demo's simulated reading_style groups pick the shorter or the longer response.
    judge = Judge((DETAILED, CONCISE), statement_rules=(HONEST, DETAILED))
    responder = group_responder(judge)
    with FakeOpenAIServer(responder=responder) as server:
        settings.GCAI_LLM_BACKEND = "openai"
        settings.GCAI_LLM_BASE_URL = server.base_url
        settings.GCAI_LLM_MODEL = "fake-judge"
        settings.OPENAI_API_KEY = "test-key"
        settings.GCAI_EMBEDDINGS = "openai"
        settings.GCAI_EMBEDDING_MODEL = "fake-embed"
        from gcai.celery import app

        app.conf.task_always_eager = True
        yield server
        app.conf.task_always_eager = False


@pytest.mark.django_db(transaction=True)
def test_demo_build_creates_every_object(tiny_demo):
    lines: list[str] = []
    result = build.demo_build(say=lines.append, timeout_s=120)
    study = result.study

    assert not result.problems, result.problems
    # Accounts with printed, random passwords and the right roles.
    assert set(result.passwords) == {"researcher", "annotator1", "annotator2"}
    user = get_user_model().objects.get(username="researcher")
    assert user.check_password(result.passwords["researcher"])
    assert Membership.objects.filter(study=study, user=user, role="researcher").exists()
    assert Membership.objects.filter(study=study, role="annotator").count() == 2
    # Data: pairs with reasons split into train/test; statements moderated.
    pairs = PreferencePair.objects.filter(dataset__study=study)
    assert pairs.count() == 60  # the slice and the quick slice (a copy of 20 of its pairs)
    assert pairs.filter(split="train").exists()
    assert pairs.filter(split="test").exists()
    assert not pairs.filter(source_reason="").exists()
    assert study.statements.filter(moderation=Moderation.APPROVED).count() == 13
    assert study.statements.filter(moderation=Moderation.REJECTED).count() == 1
    assert study.statements.filter(moderation=Moderation.PENDING).count() == 22
    # The per-group comparison is queued last and holds its own runs and evaluations.
    comparison = result.group_comparison
    assert comparison is not None
    assert comparison.attribute == "reading_style"
    group_runs = PipelineRun.objects.filter(study=study, comparison_group=comparison.key)
    own_runs = PipelineRun.objects.filter(study=study).exclude(comparison_group=comparison.key)
    # Two runs on the same training pairs, both succeeded with every stage stored.
    runs = list(own_runs)
    assert sorted(r.method for r in runs) == ["gcai", "icai"]
    assert all(r.status == JobStatus.SUCCEEDED for r in runs), [r.error for r in runs]
    assert len({frozenset(r.training_pairs.values_list("pk", flat=True)) for r in runs}) == 1
    for run in runs:
        assert StageArtifact.objects.filter(run=run, batch=-1).count() == (
            10 if run.method == "gcai" else 5
        )
    # Published constitutions with evidence behind every principle.
    constitutions = Constitution.objects.filter(study=study, status="published")
    assert constitutions.count() == 2
    for constitution in constitutions:
        assert constitution.items.exists()
    # Evaluations of both constitutions and the two baselines on the same held-out pairs.
    comparison.refresh_from_db()
    cell_ids = [c["evaluation"] for c in comparison.cells]
    evaluations = list(Evaluation.objects.filter(study=study).exclude(pk__in=cell_ids))
    assert sorted(e.kind for e in evaluations) == [
        "constitution",
        "constitution",
        "no_constitution",
        "orthogonal",
    ]
    assert all(e.status == JobStatus.SUCCEEDED for e in evaluations), [e.error for e in evaluations]
    assert len({e.comparison_group for e in evaluations}) == 1
    assert all(e.results.get("metrics") for e in evaluations)
    # One GCAI run per reading_style group, then the 2 x 2 matrix of evaluations.
    assert sorted(r.config["people"]["value"] for r in group_runs) == ["brief", "thorough"]
    assert all(r.status == JobStatus.SUCCEEDED for r in group_runs), [r.error for r in group_runs]
    assert len(cell_ids) == 4
    assert Evaluation.objects.filter(pk__in=cell_ids, status=JobStatus.SUCCEEDED).count() == 4
    # An open survey comparing the two.
    survey = Survey.objects.get(study=study)
    assert survey.status == SurveyStatus.OPEN
    assert {survey.constitution_a_id, survey.constitution_b_id} == set(
        constitutions.values_list("pk", flat=True)
    )

    # Idempotent: a second run builds nothing new and renews the passwords.
    calls = tiny_demo.chat_calls
    again = build.demo_build(say=lines.append, timeout_s=120)
    assert tiny_demo.chat_calls == calls
    assert PipelineRun.objects.filter(study=study).count() == 4
    assert Evaluation.objects.filter(study=study).count() == 8
    assert again.group_comparison == comparison
    assert Survey.objects.filter(study=study).count() == 1
    assert PreferencePair.objects.filter(dataset__study=study).count() == 60
    quick = study.datasets.get(name=build.QUICK_DATASET_NAME)
    for run in PipelineRun.objects.filter(study=study):
        assert set(run.training_pairs.values_list("dataset_id", flat=True)) == {quick.pk}
    assert again.passwords["researcher"] != result.passwords["researcher"]
