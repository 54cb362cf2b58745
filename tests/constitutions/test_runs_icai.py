"""ICAI runs end to end: stored stages, planted principles recovered, resume, faults."""

from __future__ import annotations

import json

import pytest

from annotations.models import PreferencePair, Split
from gcai.constitutions import runs
from gcai.constitutions.models import Constitution, PipelineRun, StageArtifact
from gcai.jobs.models import JobStatus
from tests.constitutions.conftest import load_synthetic
from tests.constitutions.judge_server import judge_responder
from tests.core.scripted import ALIGNED_RULES, ORTHOGONAL_RULES, Judge
from tests.factories import DatasetFactory, PairFactory
from tests.fakes.openai_server import Fault

pytestmark = pytest.mark.django_db

ICAI_STAGES = {"generate", "cluster", "representatives", "vote", "filter"}


@pytest.fixture
def icai_run(drive_run):
    def make(study, **kwargs) -> PipelineRun:
        run = runs.run_create(study=study, method=kwargs.pop("method", "icai"), **kwargs)
        return drive_run(run)

    return make


def _stage_names(run) -> set[str]:
    return set(StageArtifact.objects.filter(run=run, batch=-1).values_list("stage", flat=True))


def test_icai_recovers_the_planted_principles(study, llm_server, icai_run):
    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")
    llm_server.responder = judge_responder(Judge(ORTHOGONAL_RULES))
    run = icai_run(study, batch_size=7, method_config={"num_clusters": 8})

    assert run.status == JobStatus.SUCCEEDED, run.error
    assert _stage_names(run) == ICAI_STAGES
    # Batched stages also keep every batch: 30 pairs / 7 = 5 batches each.
    for stage in ("generate", "vote"):
        assert StageArtifact.objects.filter(run=run, stage=stage, batch__gte=0).count() == 5

    constitution = Constitution.objects.get(run=run)
    texts = [item.text.lower() for item in constitution.items.order_by("position")]
    for rule in ORTHOGONAL_RULES:
        assert any(rule.key in t for t in texts), f"{rule.key} missing from {texts}"
    assert not any("longer" in t or "english" in t for t in texts)

    # The vote table matches the data: a planted rule's "for" votes are exactly the
    # pairs where it picks the preferred response.
    pairs = list(PreferencePair.objects.filter(dataset__study=study))
    table = StageArtifact.objects.get(run=run, stage="filter", batch=-1).data["table"]
    reps = StageArtifact.objects.get(run=run, stage="representatives", batch=-1).data
    texts_by_id = {c["id"]: c["text"].lower() for c in reps["candidates"]}
    checked = 0
    for row in table["rows"]:
        text = texts_by_id[row["candidate_id"]]
        rule = next((r for r in ORTHOGONAL_RULES if r.key in text), None)
        if rule is None:
            continue
        expected_for = sum(
            1
            for p in pairs
            if rule.decide(p.response_a, p.response_b) == p.source_preference.upper()
        )
        assert row["for"] == expected_for, row
        checked += 1
    assert checked >= len(ORTHOGONAL_RULES)
    assert run.llm_calls > 0


def test_every_principle_keeps_its_evidence(study, llm_server, icai_run):
    load_synthetic(study, "synthetic_data_aligned_vqvtb.csv")
    llm_server.responder = judge_responder(Judge(ALIGNED_RULES))
    run = icai_run(study, method_config={"num_clusters": 6})
    assert run.status == JobStatus.SUCCEEDED, run.error
    for principle in run.principles.all():
        assert principle.supporting_pairs.exists()
        assert principle.origin == "icai"
        assert {"for", "against"} <= set(principle.stats)


def test_a_second_identical_run_makes_no_llm_calls(study, llm_server, icai_run):
    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")
    llm_server.responder = judge_responder(Judge(ORTHOGONAL_RULES))
    first = icai_run(study, seed=3)
    calls_after_first = llm_server.chat_calls
    second = icai_run(study, seed=3)
    assert second.status == JobStatus.SUCCEEDED
    assert llm_server.chat_calls == calls_after_first
    assert second.llm_calls == 0
    assert second.llm_cached_calls > 0
    first_texts = list(Constitution.objects.get(run=first).items.values_list("text", flat=True))
    second_texts = list(Constitution.objects.get(run=second).items.values_list("text", flat=True))
    assert first_texts == second_texts  # seeded: same config, data and answers


def test_run_failing_mid_voting_resumes_without_repeating_calls(
    study, llm_server, icai_run, drive_run
):
    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")
    judge = Judge(ORTHOGONAL_RULES)
    state = {"votes": 0, "broken": True}
    failed: set[str] = set()

    def tamper(purpose, request):
        if purpose == "vote":
            state["votes"] += 1
            if state["broken"] and state["votes"] > 20:
                failed.add(json.dumps(request, sort_keys=True))
                return Fault.server_error(503)
        return None

    llm_server.responder = judge_responder(judge, tamper)
    run = icai_run(study, batch_size=5)
    assert run.status == JobStatus.FAILED
    assert "vote" in run.error
    stored_votes = StageArtifact.objects.filter(run=run, stage="vote", batch__gte=0).count()
    assert 0 < stored_votes < 6  # killed mid-voting, earlier stages kept
    assert {"generate", "cluster", "representatives"} <= _stage_names(run)

    def bodies(requests):
        return [
            json.dumps(r.body, sort_keys=True)
            for r in requests
            if r.path.endswith("/chat/completions")
        ]

    answered_before = set(bodies(llm_server.requests)) - failed
    seen = len(llm_server.requests)
    state["broken"] = False
    runs.run_resume(run=run)
    run = drive_run(run)
    assert run.status == JobStatus.SUCCEEDED, run.error

    # No request answered before the failure was sent again after the resume.
    sent_after = bodies(llm_server.requests[seen:])
    assert sent_after
    assert not answered_before & set(sent_after)


def test_malformed_vote_answers_become_invalid_votes(study, llm_server, icai_run):
    load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")

    def tamper(purpose, request):
        # The same questions stay malformed through the client's repair retry.
        first_user = next(m["content"] for m in request["messages"] if m["role"] == "user")
        if purpose == "vote" and sum(map(ord, first_user)) % 4 == 0:
            return "this is not JSON at all"
        return None

    llm_server.responder = judge_responder(Judge(ORTHOGONAL_RULES), tamper)
    run = icai_run(study)
    assert run.status == JobStatus.SUCCEEDED, run.error
    table = StageArtifact.objects.get(run=run, stage="filter", batch=-1).data["table"]
    assert sum(row["invalid"] for row in table["rows"]) > 0


def test_ties_and_both_bad_are_counted_not_explained(study, llm_server, icai_run):
    dataset = load_synthetic(study, "synthetic_data_orthogonal_adcbg.csv")
    ties = list(PreferencePair.objects.filter(dataset=dataset).order_by("pk")[:4])
    for pair, label in zip(ties, ["tie", "tie", "both_bad", "both_bad"], strict=True):
        pair.source_preference = label
        pair.save()
    llm_server.responder = judge_responder(Judge(ORTHOGONAL_RULES))
    # By default (as the reference) tied pairs carry no label: neither explained nor voted.
    default = icai_run(study)
    assert default.status == JobStatus.SUCCEEDED, default.error
    votes = StageArtifact.objects.get(run=default, stage="vote", batch=-1).data
    assert not {str(p.pk) for p in ties} & {p["pair_id"] for p in votes["pairs"]}
    # With the recorded setting "tie" they are counted in voting, still not explained.
    run = icai_run(study, ties="tie")
    assert run.status == JobStatus.SUCCEEDED, run.error
    proposals = StageArtifact.objects.get(run=run, stage="generate", batch=-1).data
    skipped = {p["source_id"] for p in proposals["items"] if p["status"] == "skipped"}
    assert skipped == {str(p.pk) for p in ties}
    votes = StageArtifact.objects.get(run=run, stage="vote", batch=-1).data
    assert {str(p.pk) for p in ties} <= {p["pair_id"] for p in votes["pairs"]}


def test_dataset_smaller_than_the_cluster_count(study, llm_server, icai_run):
    dataset = DatasetFactory(study=study)
    for i in range(3):
        PairFactory(
            dataset=dataset,
            prompt="Pick a shirt",
            response_a=f"The blue shirt, option {i}.",
            response_b=f"The green shirt, option {i}.",
            source_preference="a",
            split=Split.TRAIN,
        )
    llm_server.responder = judge_responder(Judge(ORTHOGONAL_RULES))
    run = icai_run(study, method_config={"num_clusters": 10})
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert Constitution.objects.get(run=run).items.exists()


def test_improved_variants_run_as_configuration(study, llm_server, icai_run):
    load_synthetic(study, "synthetic_data_mixed_vqvtb_adcbg.csv")
    llm_server.responder = judge_responder(Judge((*ALIGNED_RULES, *ORTHOGONAL_RULES)))
    improved_1 = icai_run(study, method="icai_improved_1")
    assert improved_1.status == JobStatus.SUCCEEDED, improved_1.error
    reps = StageArtifact.objects.get(run=improved_1, stage="representatives", batch=-1).data
    assert {c["method"] for c in reps["candidates"]} == {"centroid"}

    improved_2 = icai_run(study, method="icai_improved_2")
    assert improved_2.status == JobStatus.SUCCEEDED, improved_2.error
    assert "triplets" in _stage_names(improved_2)


def test_run_without_training_pairs_is_refused(study):
    with pytest.raises(ValueError, match="No training pairs"):
        runs.run_create(study=study, method="icai")


def test_bad_setting_is_refused_naming_the_field(study, llm_server):
    load_synthetic(study, "synthetic_data_aligned_vqvtb.csv")
    with pytest.raises(ValueError, match="vote_seeds"):
        runs.run_create(study=study, method="icai", method_config={"vote_seeds": 0})
    with pytest.raises(ValueError, match="unknown"):
        runs.run_create(study=study, method="icai", method_config={"num_clustres": 3})


def test_cancel_stops_a_queued_run(study, llm_server):
    load_synthetic(study, "synthetic_data_aligned_vqvtb.csv")
    run = runs.run_create(study=study, method="icai")
    runs.run_cancel(run=run)
    assert runs.run_step(run.pk) == "idle"
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    assert llm_server.chat_calls == 0


def test_server_down_fails_the_run_with_a_clear_error(study, llm_server, icai_run):
    load_synthetic(study, "synthetic_data_aligned_vqvtb.csv")
    llm_server.responder = lambda request: Fault.server_error(500)
    run = icai_run(study)
    assert run.status == JobStatus.FAILED
    assert "failed after retries" in run.error
