"""Evaluations end to end through the real client against the fake judge server:
creation, both-order judging, stored metrics, baselines, resume, similarity."""

from __future__ import annotations

import pytest

from annotations.models import Split
from gcai.constitutions import evaluation_reports, evaluations
from gcai.constitutions.evaluation_jobs import EVALUATION
from gcai.constitutions.evaluation_reports import evaluation_table_text
from gcai.constitutions.evaluation_tasks import evaluation_batch_task
from gcai.constitutions.evaluations import (
    EvaluationError,
    evaluation_cancel,
    evaluation_create,
    evaluation_run_inline,
    evaluations_create_comparison,
)
from gcai.constitutions.models import Evaluation, EvaluationArtifact, EvaluationKind, LLMCacheEntry
from gcai.core.evaluate import PairJudgement, compute_metrics, orthogonal_constitution
from gcai.jobs import engine
from gcai.jobs.models import JobStatus
from tests.constitutions.evaluation_support import (
    PLEASE,
    failed_in_batch_three,
    import_icai_csv,
    make_constitution,
    polite_pairs,
    serve_judge,
)
from tests.core.eval_fakes import (
    ALIGNED_GROUND_TRUTH,
    ALIGNED_RULES,
    as_responder,
    position_biased_judge,
    rule_judge,
)
from tests.factories import AnnotationFactory, DatasetFactory, PairFactory
from tests.fakes import Fault

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge_server(settings):
    yield from serve_judge(settings)


def run(evaluation: Evaluation) -> Evaluation:
    assert evaluation_run_inline(evaluation=evaluation) == "succeeded", Evaluation.objects.get(
        pk=evaluation.pk
    ).error
    return Evaluation.objects.get(pk=evaluation.pk)


# --------------------------------------------------------------------------- pairs


def test_held_out_test_pairs_are_used_by_default(study):
    test = polite_pairs(study, 6, split=Split.TEST, name="t")
    polite_pairs(study, 4, split=Split.TRAIN, name="tr")
    constitution = make_constitution(study, [PLEASE])

    evaluation = evaluation_create(study=study, constitution=constitution)

    assert evaluation.split == "test"
    assert sorted(evaluation.pairs.values_list("pk", flat=True)) == [p.pk for p in test]
    assert evaluation.config["principles"] == [PLEASE]
    assert evaluation.progress_total == 6


def test_training_split_only_when_asked_and_labelled_as_such(study):
    polite_pairs(study, 3, split=Split.TEST, name="t")
    train = polite_pairs(study, 4, split=Split.TRAIN, name="tr")
    constitution = make_constitution(study, [PLEASE])

    evaluation = evaluation_create(study=study, constitution=constitution, split=Split.TRAIN)

    assert evaluation.split == "train"
    assert evaluation.pairs.count() == len(train)


def test_unlabelled_pairs_are_left_out_and_annotations_label_the_rest(study):
    dataset = DatasetFactory(study=study)
    labelled = PairFactory(dataset=dataset, split=Split.TEST, source_preference="b")
    annotated = PairFactory(dataset=dataset, split=Split.TEST, source_preference="none")
    AnnotationFactory(pair=annotated, preferred="a")
    AnnotationFactory(pair=annotated, preferred="a")
    PairFactory(dataset=dataset, split=Split.TEST, source_preference="none")
    tie = PairFactory(dataset=dataset, split=Split.TEST, source_preference="tie")

    evaluation = evaluation_create(study=study, kind=EvaluationKind.NO_CONSTITUTION)

    # As the reference implementation, tied pairs are left out by default...
    assert evaluation.config["labels"] == {str(labelled.pk): "b", str(annotated.pk): "a"}
    # ...and kept (reported apart from accuracy) when the recorded setting says so.
    kept = evaluation_create(study=study, kind=EvaluationKind.NO_CONSTITUTION, ties="tie")
    assert kept.config["labels"] == {
        str(labelled.pk): "b",
        str(annotated.pk): "a",
        str(tie.pk): "tie",
    }


def test_limit_samples_the_same_pairs_for_the_same_seed(study):
    polite_pairs(study, 20)
    first = evaluation_create(study=study, kind=EvaluationKind.NO_CONSTITUTION, limit=5, seed=3)
    again = evaluation_create(study=study, kind=EvaluationKind.NO_CONSTITUTION, limit=5, seed=3)

    assert first.pairs.count() == 5
    assert set(first.config["labels"]) == set(again.config["labels"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "validation"}, "split"),
        ({"limit": 0}, "limit"),
        ({"batch_size": 0}, "batch_size"),
        ({"kind": "nonsense"}, "kind"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(study, kwargs, message):
    polite_pairs(study, 2)
    constitution = make_constitution(study, [PLEASE])
    with pytest.raises(EvaluationError, match=message):
        evaluation_create(study=study, constitution=constitution, **kwargs)


def test_a_study_without_labelled_test_pairs_is_refused_with_advice(study):
    polite_pairs(study, 3, split=Split.TRAIN)
    with pytest.raises(EvaluationError, match="No labelled test pairs"):
        evaluation_create(study=study, kind=EvaluationKind.NO_CONSTITUTION)


def test_constitution_of_another_study_is_refused(study, other_researcher):
    polite_pairs(study, 2)
    foreign = make_constitution(other_researcher.memberships.get().study, [PLEASE])
    with pytest.raises(EvaluationError, match="not a constitution of this study"):
        evaluation_create(study=study, constitution=foreign)


def test_comparison_uses_the_same_pairs_for_every_target_and_shares_a_group(study):
    polite_pairs(study, 10)
    gcai = make_constitution(study, [PLEASE], title="GCAI")
    icai = make_constitution(study, ["Select the shorter response."], title="ICAI", method="icai")

    created = evaluations_create_comparison(
        study=study, constitutions=[gcai, icai], baselines=True, limit=6, seed=1
    )

    assert [e.kind for e in created] == [
        "constitution",
        "constitution",
        "no_constitution",
        "orthogonal",
    ]
    assert len({e.comparison_group for e in created}) == 1
    assert len({tuple(sorted(e.config["labels"])) for e in created}) == 1
    assert created[3].config["principles"] == [p.text for p in orthogonal_constitution().principles]
    assert created[2].config["principles"] is None


def test_orthogonal_principles_can_be_edited(study):
    polite_pairs(study, 2)
    evaluation = evaluation_create(
        study=study,
        kind=EvaluationKind.ORTHOGONAL,
        orthogonal_principles="# my list\nSelect the response that mentions a fruit.\n\n",
    )
    assert evaluation.config["principles"] == ["Select the response that mentions a fruit."]


def test_draft_edits_after_creation_do_not_change_what_is_evaluated(study):
    polite_pairs(study, 2)
    constitution = make_constitution(study, [PLEASE])
    evaluation = evaluation_create(study=study, constitution=constitution)
    constitution.items.update(text="Select the rudest response.")

    evaluation.refresh_from_db()
    assert evaluation.config["principles"] == [PLEASE]


# --------------------------------------------------------------------------- judging


def test_planted_rule_judge_scores_near_100_percent(study, judge_server):
    polite_pairs(study, 12)
    evaluation = run(
        evaluation_create(study=study, constitution=make_constitution(study, [PLEASE]))
    )

    metrics = evaluation.results["metrics"]
    assert metrics["n_scored"] == 12
    assert metrics["accuracy"]["value"] == 1.0
    assert metrics["accuracy"]["lo"] > 0.7  # Wilson lower bound for 12/12
    assert metrics["coverage"]["value"] == 1.0
    assert metrics["order_disagreement"]["value"] == 0.0
    assert metrics["kappa"]["value"] == 1.0
    assert metrics["confusion"] == {
        "a": {"a": 6, "b": 0, "abstain": 0, "inconsistent": 0},
        "b": {"a": 0, "b": 6, "abstain": 0, "inconsistent": 0},
    }
    [principle] = metrics["principles"]
    assert principle["relevance"]["value"] == 1.0
    assert principle["accuracy"]["value"] == 1.0
    assert principle["decisive"]["value"] == 1.0
    # Both orders of every pair, plus the per-principle analysis in both orders.
    assert judge_server.chat_calls == 12 * 4
    assert evaluation.llm_calls == 48
    assert evaluation.prompt_tokens > 0
    assert evaluation.status == JobStatus.SUCCEEDED
    assert evaluation.progress_done == evaluation.progress_total == 12


def test_position_biased_judge_scores_at_chance_with_order_disagreement(study, judge_server):
    judge_server.responder = as_responder(position_biased_judge)
    polite_pairs(study, 12)
    evaluation = run(
        evaluation_create(study=study, constitution=make_constitution(study, [PLEASE]))
    )

    metrics = evaluation.results["metrics"]
    assert metrics["order_disagreement"]["value"] == 1.0
    assert metrics["order_flip"]["value"] == 1.0
    assert metrics["accuracy_per_order"]["value"] == 0.5
    assert metrics["kappa"]["value"] == 0.0
    assert metrics["kappa"]["lo"] < 0 < metrics["kappa"]["hi"]
    assert metrics["accuracy"]["value"] == 0.0
    assert metrics["confusion"]["a"]["inconsistent"] == 6


def test_stored_results_match_compute_metrics_on_the_stored_judgements(study, judge_server):
    polite_pairs(study, 9)
    dataset = DatasetFactory(study=study, name="ties")
    PairFactory(dataset=dataset, split=Split.TEST, source_preference="tie")
    evaluation = run(
        evaluation_create(
            study=study,
            constitution=make_constitution(study, [PLEASE]),
            batch_size=4,
            ties="tie",
        )
    )

    judgements = [PairJudgement.from_dict(j) for j in evaluation.results["judgements"]]
    expected = compute_metrics(judgements, principles=[PLEASE])
    assert evaluation.results["metrics"] == expected.to_dict()
    assert expected.n_ties == 1
    assert expected.n_scored == 9
    assert sorted(int(j.pair_id) for j in judgements) == sorted(
        evaluation.pairs.values_list("pk", flat=True)
    )


def test_each_batch_of_judgements_is_one_artifact_row(study, judge_server):
    polite_pairs(study, 10)
    evaluation = run(
        evaluation_create(
            study=study, constitution=make_constitution(study, [PLEASE]), batch_size=4
        )
    )

    rows = {
        (a.stage, a.batch): a.data for a in EvaluationArtifact.objects.filter(evaluation=evaluation)
    }
    assert sorted(rows) == [
        ("judging", -1),
        ("judging", 0),
        ("judging", 1),
        ("judging", 2),
        ("scoring", -1),
    ]
    pair_ids = sorted(evaluation.pairs.values_list("pk", flat=True))
    for batch, ids in enumerate([pair_ids[0:4], pair_ids[4:8], pair_ids[8:10]]):
        assert [int(j["pair_id"]) for j in rows[("judging", batch)]["judgements"]] == ids
    # The results document is the merged batches plus the scores, without bookkeeping.
    assert rows[("judging", -1)]["judgements"] == evaluation.results["judgements"]
    assert rows[("scoring", -1)]["metrics"] == evaluation.results["metrics"]
    assert set(evaluation.results) == {
        "config",
        "principles",
        "split",
        "metrics",
        "judgements",
        "similarity",
        "similarity_reference",
        "similarity_llm",
        "similarity_llm_reference",
    }
    assert evaluation.stage == "done"
    assert evaluation.progress_done == evaluation.progress_total == 10


def test_baselines_run_with_the_same_judge_and_pairs(study, judge_server):
    polite_pairs(study, 8)
    created = evaluations_create_comparison(
        study=study, constitutions=[make_constitution(study, [PLEASE])], baselines=True
    )
    done = [run(e) for e in created]

    constitution, none, orthogonal = (e.results["metrics"] for e in done)
    assert constitution["accuracy_per_order"]["value"] == 1.0
    assert constitution["accuracy"]["value"] == 1.0
    # The planted judge has no taste of its own and no orthogonal rule applies: forced
    # to choose, it lands at chance on the published measure.
    assert none["accuracy_per_order"]["value"] == 0.5
    assert orthogonal["accuracy_per_order"]["value"] == 0.5
    assert {e.llm_model for e in done} == {"fake-judge"}
    table = evaluation_table_text(
        evaluation_reports.evaluations_in_group(study=study, group=done[0].comparison_group)
    )
    assert "Baseline: no constitution" in table
    assert "100.0% [" in table


def test_judge_errors_are_recorded_per_pair_not_fatal(study, judge_server):
    polite_pairs(study, 4)
    constitution = make_constitution(study, [PLEASE])
    judge_server.responder = lambda body: Fault.invalid_json()
    evaluation = run(
        evaluation_create(study=study, constitution=constitution, principle_analysis=False)
    )
    assert evaluation.results["metrics"]["n_errors"] == 4
    assert evaluation.results["metrics"]["n_scored"] == 0


# --------------------------------------------------------------------------- resume and cancel


def test_resume_after_a_failed_batch_repeats_no_call(study, judge_server, settings):
    settings.GCAI_LLM_MAX_RETRIES = 0
    polite_pairs(study, 12)
    broken = "Ask for item 9."  # a pair in the third batch of four
    planted = judge_server.responder
    outage = {"on": True}

    def responder(body):
        text = "\n".join(str(m["content"]) for m in body["messages"])
        if outage["on"] and broken in text:
            return Fault.server_error(503)
        return planted(body)

    judge_server.responder = responder
    evaluation = evaluation_create(
        study=study, constitution=make_constitution(study, [PLEASE]), batch_size=4
    )

    assert evaluation_run_inline(evaluation=evaluation) == "failed"
    evaluation.refresh_from_db()
    assert evaluation.status == JobStatus.FAILED
    assert "judging batch 2" in evaluation.error
    assert evaluation.progress_done == 8  # the first two batches are stored
    assert sorted(
        EvaluationArtifact.objects.filter(evaluation=evaluation).values_list("stage", "batch")
    ) == [("judging", 0), ("judging", 1)]
    assert judge_server.chat_calls == 12 * 4  # every request once; four of them failed
    calls_before = judge_server.chat_calls

    outage["on"] = False
    evaluation = run(evaluation)

    # The resume sent only the four requests that had failed: the stored batches were
    # not judged again and the failed batch's answered calls came from the cache.
    assert judge_server.chat_calls - calls_before == 4
    bodies = [str(b["messages"]) for b in judge_server.bodies("chat")]
    repeated = {b for b in bodies if bodies.count(b) > 1}
    assert len(repeated) == 4
    assert all(broken in b for b in repeated)
    assert evaluation.results["metrics"]["accuracy"]["value"] == 1.0
    assert evaluation.llm_cached_calls == 12


def test_a_resume_judges_only_the_batches_without_an_artifact(study, judge_server, settings):
    """With the response cache emptied, only the stored artifacts can spare the calls."""
    evaluation, outage = failed_in_batch_three(study, judge_server, settings)
    evaluation.refresh_from_db()
    LLMCacheEntry.objects.all().delete()
    outage["on"] = False
    before = len(judge_server.bodies("chat"))

    evaluation = run(evaluation)

    # Batch 2 only: its four pairs, both orders; batches 0 and 1 were not asked again.
    asked = [str(b["messages"]) for b in judge_server.bodies("chat")[before:]]
    assert len(asked) == 4 * 2
    batch_2 = [f"Ask for item {i}." for i in range(8, 12)]
    assert all(any(item in body for item in batch_2) for body in asked)
    assert evaluation.results["metrics"]["n_scored"] == 12


def test_a_duplicate_delivery_of_a_batch_stores_it_once(study, judge_server):
    polite_pairs(study, 8)
    evaluation = evaluation_create(
        study=study, constitution=make_constitution(study, [PLEASE]), batch_size=4
    )

    assert evaluations.evaluation_batch(evaluation.pk, "judging", 0) == "batch-done"
    calls = judge_server.chat_calls
    # The broker hands the same message out again (a late ack after a restart)...
    assert evaluations.evaluation_batch(evaluation.pk, "judging", 0) == "batch-done"
    assert judge_server.chat_calls == calls
    # ...or two workers finish the same batch at once: the second write is dropped.
    stored = EvaluationArtifact.objects.get(evaluation=evaluation, stage="judging", batch=0)
    EVALUATION.save_artifact(evaluation, "judging", 0, {"judgements": []})
    assert list(
        EvaluationArtifact.objects.filter(evaluation=evaluation).values_list("pk", "data")
    ) == [(stored.pk, stored.data)]
    assert len(stored.data["judgements"]) == 4
    evaluation.refresh_from_db()
    assert evaluation.progress_done == 4


def test_a_batch_message_queued_before_the_engine_still_judges_its_batch(study, judge_server):
    polite_pairs(study, 8)
    evaluation = evaluation_create(
        study=study, constitution=make_constitution(study, [PLEASE]), batch_size=4
    )

    # The old message carried (evaluation id, batch): judging was the only batched stage.
    evaluation_batch_task(evaluation.pk, 1)

    [artifact] = EvaluationArtifact.objects.filter(evaluation=evaluation)
    assert (artifact.stage, artifact.batch) == ("judging", 1)
    pair_ids = sorted(evaluation.pairs.values_list("pk", flat=True))
    assert [int(j["pair_id"]) for j in artifact.data["judgements"]] == pair_ids[4:]


def test_rerunning_a_finished_evaluation_costs_no_calls(study, judge_server):
    polite_pairs(study, 6)
    constitution = make_constitution(study, [PLEASE])
    run(evaluation_create(study=study, constitution=constitution))
    calls = judge_server.chat_calls

    again = run(evaluation_create(study=study, constitution=constitution))

    assert judge_server.chat_calls == calls
    assert again.llm_calls == 0
    assert again.llm_cached_calls == 6 * 4


def test_cancel_stops_a_queued_evaluation_before_any_call(study, judge_server):
    polite_pairs(study, 4)
    evaluation = evaluation_create(study=study, constitution=make_constitution(study, [PLEASE]))
    evaluation_cancel(evaluation=evaluation)
    evaluation.refresh_from_db()

    assert evaluation.status == JobStatus.CANCELLED
    assert evaluations.evaluation_step(evaluation.pk, inline=True) == "idle"
    assert judge_server.chat_calls == 0


def test_cancel_during_a_run_stops_before_the_next_batch(study, judge_server, monkeypatch):
    polite_pairs(study, 8)
    evaluation = evaluation_create(
        study=study, constitution=make_constitution(study, [PLEASE]), batch_size=4
    )
    store = engine.JobKind.save_artifact

    def store_then_cancel(*args, **kwargs):
        outcome = store(*args, **kwargs)
        evaluation_cancel(evaluation=evaluation)  # the researcher clicks "Cancel"
        return outcome

    monkeypatch.setattr(engine.JobKind, "save_artifact", store_then_cancel)
    assert evaluation_run_inline(evaluation=evaluation) == "cancelled"

    evaluation.refresh_from_db()
    assert evaluation.status == JobStatus.CANCELLED
    assert judge_server.chat_calls == 4 * 4  # the first batch only
    assert evaluation.progress_done == 4


def test_a_succeeded_evaluation_cannot_be_resumed(study, judge_server):
    polite_pairs(study, 2)
    evaluation = run(
        evaluation_create(study=study, constitution=make_constitution(study, [PLEASE]))
    )
    with pytest.raises(EvaluationError, match="already succeeded"):
        evaluations.evaluation_resume(evaluation=evaluation)


# --------------------------------------------------------------------------- similarity


def test_icai_synthetic_ground_truth_against_itself_is_the_maximum(
    study, judge_server, shared_data
):
    import_icai_csv(study, shared_data / "icai-synthetic" / "synthetic_data_aligned_vqvtb.csv")
    judge_server.responder = as_responder(rule_judge(ALIGNED_RULES))
    truth = make_constitution(study, ALIGNED_GROUND_TRUTH, title="Ground truth")

    created = evaluations_create_comparison(
        study=study, constitutions=[truth], baselines=True, ground_truth=ALIGNED_GROUND_TRUTH
    )
    truth_eval, no_constitution, orthogonal = (run(e) for e in created)

    similarity = truth_eval.results["similarity"]
    reference = truth_eval.results["similarity_reference"]
    assert similarity["mean_similarity"] == pytest.approx(1.0)
    assert similarity["mean_similarity"] == pytest.approx(reference["mean_similarity"])
    assert orthogonal.results["similarity"]["mean_similarity"] < reference["mean_similarity"]
    assert orthogonal.results["similarity"]["padded_similarity"] < 0.5
    assert no_constitution.results["similarity"] is None
    assert judge_server.embedding_calls >= 1
    # The judge following the true principles reconstructs the preferences; the
    # orthogonal constitution does not apply to these pairs.
    assert truth_eval.results["metrics"]["accuracy"]["value"] >= 0.9
    assert (
        orthogonal.results["metrics"]["accuracy"]["value"]
        < truth_eval.results["metrics"]["accuracy"]["value"]
    )
    table = evaluation_table_text([truth_eval, orthogonal])
    assert "ground truth vs itself 1.000" in table


def test_paired_difference_without_spread_or_with_few_pairs_is_not_shown_as_a_result():
    from gcai.constitutions.evaluation_reports import _signed

    flat = {"value": 0.0, "lo": 0.0, "hi": 0.0, "n": 4}
    assert _signed(flat) == (
        "+0.0 pts (scored alike on all 4 pairs: no interval). "
        "Only 4 pairs (fewer than 30): too few to draw a conclusion."
    )
    assert _signed({"value": 0.1, "lo": -0.05, "hi": 0.2, "n": 60}) == ("+10.0 pts [-5.0, +20.0]")
