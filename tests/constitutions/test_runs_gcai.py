"""GCAI runs: both streams, merge, evidence, caps, the comparison build, a real worker."""

from __future__ import annotations

import json
import time

import pytest

from annotations.models import Dataset, Membership, PreferencePair, Role, Split
from gcai.constitutions import runs, services
from gcai.constitutions.models import Constitution, Principle, StageArtifact
from gcai.jobs.models import JobStatus
from tests.constitutions.conftest import load_synthetic
from tests.constitutions.judge_server import judge_responder
from tests.core.scripted import HONEST, KIND, Judge, Rule
from tests.factories import AnnotationFactory, PairFactory, StatementFactory, UserFactory

pytestmark = pytest.mark.django_db

GCAI_STAGES = {
    "contextual_generate",
    "contextual_cluster",
    "contextual_representatives",
    "contextual_vote",
    "contextual_rank",
    "general_generate",
    "general_cluster",
    "general_representatives",
    "general_rank",
    "merge",
}

DETAIL = Rule(
    "detailed",
    "Select the response that is more detailed.",
    ("Select the response that gives more detail.",),
    lambda text: len(text) > 700,
)


def _stage_names(run) -> set[str]:
    return set(StageArtifact.objects.filter(run=run, batch=-1).values_list("stage", flat=True))


def _annotator(study, name="ann1"):
    user = UserFactory(username=name)
    Membership.objects.create(user=user, study=study, role=Role.ANNOTATOR)
    return user


def _honest_study(study):
    """Synthetic capital-city pairs, annotated with honesty reasons, plus statements."""
    dataset = load_synthetic(study, "synthetic_data_aligned_vqvtb.csv")
    annotator = _annotator(study)
    for pair in PreferencePair.objects.filter(dataset=dataset, prompt__icontains="capital"):
        AnnotationFactory(
            pair=pair,
            annotator=annotator,
            preferred=pair.source_preference,
            reason="The chosen answer is honest; the other one invents a story.",
        )
    for text in (
        "AI systems should be honest with people, always.",
        "I want AI to stay honest even when the truth is unwelcome.",
        "AI should be kind to animals and never encourage cruelty.",
        "My favourite food is pizza and I like the beach.",
    ):
        StatementFactory(study=study, text=text)
    return dataset


@pytest.fixture
def gcai_run(drive_run):
    def make(study, **kwargs):
        return drive_run(runs.run_create(study=study, method="gcai", **kwargs))

    return make


def test_statements_without_values_yield_no_principles(study, llm_server, gcai_run):
    _honest_study(study)
    llm_server.responder = judge_responder(Judge((HONEST,), statement_rules=(KIND,)))
    run = gcai_run(study)
    assert run.status == JobStatus.SUCCEEDED, run.error
    items = StageArtifact.objects.get(run=run, stage="general_generate", batch=-1).data["items"]
    by_text = {s.text: s.pk for s in study.statements.all()}
    pizza = next(
        i
        for i in items
        if i["source_id"] == str(by_text["My favourite food is pizza and I like the beach."])
    )
    assert pizza["status"] == "no_values"
    assert pizza["principles"] == []
    pizza_principles = Principle.objects.filter(
        run=run, supporting_statements__text__icontains="pizza"
    )
    assert not pizza_principles.exists()


def test_principle_from_both_streams_is_merged_once_with_both_evidence_sets(
    study, llm_server, gcai_run
):
    _honest_study(study)
    llm_server.responder = judge_responder(Judge((HONEST,), statement_rules=(KIND,)))
    run = gcai_run(study)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert _stage_names(run) == GCAI_STAGES

    honest = [p for p in run.principles.all() if "honest" in p.text.lower()]
    assert len(honest) == 1
    merged = honest[0]
    assert merged.origin == "both"
    assert merged.supporting_annotations.exists()
    assert merged.supporting_statements.count() == 2
    kind = [p for p in run.principles.all() if "kind" in p.text.lower()]
    assert [p.origin for p in kind] == ["general"]
    # Every principle of the constitution has evidence, so it can be published.
    constitution = Constitution.objects.get(run=run)
    services.constitution_publish(constitution=constitution)
    for principle in run.principles.all():
        assert (
            principle.supporting_pairs.exists()
            or principle.supporting_annotations.exists()
            or principle.supporting_statements.exists()
        )


def test_cap_and_stream_share_hold(study, llm_server, gcai_run):
    _honest_study(study)
    for i in range(6):
        StatementFactory(study=study, text=f"AI should be kind to animals, reason {i}.")
    llm_server.responder = judge_responder(Judge((HONEST,), statement_rules=(KIND,)))
    run = gcai_run(study, method_config={"max_principles": 1, "contextual_share": 1.0})
    assert run.status == JobStatus.SUCCEEDED, run.error
    principles = list(run.principles.all())
    assert len(principles) == 1
    assert principles[0].origin in ("contextual", "both")


def test_gcai_on_alpacaeval_with_reasons_stores_every_stage(
    study, llm_server, shared_data, gcai_run
):
    dataset = Dataset.objects.create(study=study, name="alpacaeval")
    path = shared_data / "alpacaeval-reasons" / "mistral-7b-vs-gpt4turbo.jsonl"
    with path.open() as fh:
        for line in fh:
            row = json.loads(line)
            PreferencePair.objects.create(
                dataset=dataset,
                external_id=row["id"],
                prompt=row["prompt"],
                response_a=row["response_a"],
                response_b=row["response_b"],
                source_preference=row["preferred"],
                source_reason=row["reason"],
                split=Split.TRAIN,
            )
    StatementFactory(study=study, text="AI answers should be detailed and complete.")
    llm_server.responder = judge_responder(Judge((DETAIL,), statement_rules=(DETAIL,)))
    run = gcai_run(study, batch_size=8)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert _stage_names(run) == GCAI_STAGES
    generated = StageArtifact.objects.get(run=run, stage="contextual_generate", batch=-1).data
    assert len(generated["items"]) == 24  # one judgement per imported reason
    constitution = Constitution.objects.get(run=run)
    assert constitution.items.exists()
    for item in constitution.items.select_related("principle"):
        evidence = (
            item.principle.supporting_pairs.count() + item.principle.supporting_statements.count()
        )
        assert evidence > 0


def test_comparison_build_uses_the_same_training_pairs(study, llm_server):
    dataset = _honest_study(study)
    PreferencePair.objects.filter(
        dataset=dataset, pk__in=dataset.pairs.order_by("pk").values("pk")[:5]
    ).update(split=Split.TEST)
    gcai_run, icai_run = runs.runs_create_comparison(study=study, seed=1, max_training_pairs=12)
    gcai_ids = set(gcai_run.training_pairs.values_list("pk", flat=True))
    assert gcai_ids == set(icai_run.training_pairs.values_list("pk", flat=True))
    assert len(gcai_ids) == 12
    assert not gcai_ids & set(
        PreferencePair.objects.filter(split=Split.TEST).values_list("pk", flat=True)
    )
    assert gcai_run.comparison_group == icai_run.comparison_group != ""


def test_editing_a_published_constitution_creates_a_new_version(study, llm_server, gcai_run):
    _honest_study(study)
    llm_server.responder = judge_responder(Judge((HONEST,), statement_rules=(KIND,)))
    run = gcai_run(study)
    constitution = services.constitution_publish(constitution=Constitution.objects.get(run=run))
    items = [
        {"principle": i.principle_id, "text": i.text}
        for i in constitution.items.order_by("position")
    ]
    items[0]["text"] = "Select the response that is truthful."
    new = services.constitution_new_version(constitution=constitution, items=list(reversed(items)))
    assert new.pk != constitution.pk
    assert new.version == constitution.version + 1
    assert new.previous == constitution
    assert new.status == "draft"
    constitution.refresh_from_db()
    assert "truthful" not in constitution.as_text()
    assert "truthful" in new.as_text()
    with pytest.raises(services.ConstitutionError, match="not part of this constitution"):
        services.constitution_new_version(
            constitution=new, items=[{"principle": 999999, "text": "x"}]
        )


def test_publish_refuses_a_principle_without_evidence(study):
    principle = Principle.objects.create(
        study=study, text="Select the response that is nice to people.", origin="general"
    )
    constitution = Constitution.objects.create(study=study, title="Hand-written")
    constitution.items.create(principle=principle, position=1, text=principle.text)
    with pytest.raises(services.QualityGateError, match="flagged 1 principle") as caught:
        services.constitution_publish(constitution=constitution)
    assert [f["kind"] for f in caught.value.flags] == ["no_evidence"]


def test_quality_gate_blocks_a_malformed_principle_until_overridden(study, researcher):
    garbage = "] } ```python 1. The person explained their judgement"
    principle = Principle.objects.create(study=study, text=garbage, origin="contextual")
    principle.supporting_pairs.add(PairFactory(dataset__study=study))
    constitution = Constitution.objects.create(study=study, title="From the tiny model")
    constitution.items.create(principle=principle, position=1, text=garbage)

    with pytest.raises(services.QualityGateError) as caught:
        services.constitution_publish(constitution=constitution)
    assert [(f["position"], f["kind"]) for f in caught.value.flags] == [(1, "malformed")]
    constitution.refresh_from_db()
    assert constitution.status == "draft"

    services.constitution_publish(constitution=constitution, override=True, user=researcher)
    constitution.refresh_from_db()
    assert constitution.status == "published"
    assert constitution.quality_override["username"] == researcher.username
    assert constitution.quality_override["flags"][0]["kind"] == "malformed"


@pytest.mark.django_db(transaction=True)
def test_gcai_run_through_a_real_celery_worker(study, tmp_path, settings):
    """The whole loop with real processes: web-side enqueue, broker, worker, database."""
    from gcai.celery import app
    from tests.conftest import start_worker
    from tests.fakes import FakeOpenAIServer

    _honest_study(study)
    with FakeOpenAIServer(
        responder=judge_responder(Judge((HONEST,), statement_rules=(KIND,)))
    ) as server:
        previous_queue = app.conf.task_default_queue
        worker = start_worker(
            tmp_path,
            extra_env={
                "GCAI_LLM_BACKEND": "openai",
                "GCAI_LLM_BASE_URL": server.base_url,
                "OPENAI_API_KEY": "test-key",
                "GCAI_LLM_MODEL": "fake-judge",
                "GCAI_EMBEDDINGS": "openai",
                "GCAI_EMBEDDING_MODEL": "fake-embed",
            },
        )
        try:
            run = runs.run_create(study=study, method="gcai", batch_size=4)
            runs.run_start(run=run)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                run.refresh_from_db()
                if not run.is_active:
                    break
                time.sleep(0.5)
            assert run.status == JobStatus.SUCCEEDED, (
                f"{run.status} {run.error}\n{worker.log()[-3000:]}"
            )
            assert _stage_names(run) == GCAI_STAGES
            assert server.chat_calls > 0
            assert run.llm_calls == server.chat_calls
        finally:
            worker.stop()
            app.conf.task_default_queue = previous_queue


def test_finishing_a_run_twice_keeps_its_published_constitution(study, llm_server, gcai_run):
    from gcai.core.llm.usage import UsageMeter

    _honest_study(study)
    llm_server.responder = judge_responder(Judge((HONEST,), statement_rules=(KIND,)))
    run = gcai_run(study)
    constitution = services.constitution_publish(constitution=Constitution.objects.get(run=run))
    items = list(constitution.items.values_list("pk", "text"))
    again = runs.run_finish(run=run, ctx=runs._inputs(run, UsageMeter()))
    assert again.pk == constitution.pk
    assert list(constitution.items.values_list("pk", "text")) == items
