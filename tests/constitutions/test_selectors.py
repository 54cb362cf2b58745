"""Reads behind the run and constitution pages."""

from __future__ import annotations

import pytest

from gcai.constitutions import selectors, stage_views
from gcai.constitutions.models import ConstitutionPrinciple, Origin, Principle, StageArtifact
from gcai.constitutions.services import constitution_new_version, constitution_publish
from tests.constitutions.constitutions_owned_objects import (
    build_gcai_run,
    build_icai_run,
    make_study_input,
)
from tests.factories import AnnotationFactory, PairFactory, StatementFactory


@pytest.mark.parametrize(
    ("name", "kind", "stream"),
    [
        ("generate", "generate", ""),
        ("contextual_generate", "generate", "contextual"),
        ("general_representatives", "representatives", "general"),
        ("contextual_vote", "vote", "contextual"),
        ("general_rank", "rank", "general"),
        ("merge", "merge", ""),
        ("triplets", "triplets", ""),
        ("something_new", "other", ""),
    ],
)
def test_stage_kind_and_stream_come_from_the_name(name, kind, stream):
    assert selectors.stage_kind(name) == kind
    assert selectors.stage_stream(name) == stream


def test_stage_titles_cover_the_run_states():
    assert selectors.stage_title("") == "Waiting to start"
    assert selectors.stage_title("done") == "Finished"
    assert selectors.stage_title("triplets") == "Cluster response differences, pick triplets"
    assert selectors.stage_title("general_rank") == "General: rank by participant support"


@pytest.mark.django_db
def test_run_stages_follow_the_pipeline_and_report_what_is_stored(study):
    run = build_icai_run(study, make_study_input(study))
    StageArtifact.objects.filter(run=run, stage__in=["vote", "filter"]).delete()
    StageArtifact.objects.create(run=run, stage="vote", batch=0, data={})
    StageArtifact.objects.create(run=run, stage="vote", batch=1, data={})
    stages = {s.name: s for s in selectors.run_stages_list(run=run)}
    assert list(stages) == ["generate", "cluster", "representatives", "vote", "filter"]
    assert stages["generate"].stored
    assert stages["generate"].batches_stored == 1
    assert not stages["vote"].stored
    assert stages["vote"].batches_stored == 2
    assert stages["vote"].batched
    assert not stages["filter"].stored


@pytest.mark.django_db
def test_improved_2_runs_start_with_the_triplet_stage(study):
    run = build_icai_run(study, make_study_input(study), method="icai_improved_2")
    names = [s.name for s in selectors.run_stages_list(run=run)]
    assert names[0] == "triplets"


@pytest.mark.django_db
def test_vote_view_tallies_outcomes_against_the_labels(study):
    run = build_icai_run(study, make_study_input(study))
    info = selectors.run_stage_get(run=run, stage="vote")
    view = stage_views.stage_artifact_view(run=run, info=info)
    rows = {r["id"]: r for r in view.extra["rows"]}
    assert (rows["c0"]["for"], rows["c0"]["against"]) == (4, 0)
    assert (rows["c1"]["against"], rows["c1"]["abstain"]) == (2, 2)
    assert rows["c0"]["text"] == "Select the response that is honest."
    assert view.summary["failed_calls"] == 1
    assert view.items == []  # per-pair rows only on the stage's own page


@pytest.mark.django_db
def test_generate_view_previews_and_pages(study):
    run = build_icai_run(study, make_study_input(study))
    info = selectors.run_stage_get(run=run, stage="generate")
    preview = stage_views.stage_artifact_view(run=run, info=info)
    assert preview.total == 4
    assert preview.page is None
    errors = stage_views.stage_artifact_view(run=run, info=info, page=1, status="error")
    assert [i["status"] for i in errors.items] == ["error"]
    assert errors.page.paginator.count == 1


@pytest.mark.django_db
def test_generate_view_never_shows_input_of_another_study(study):
    from tests.factories import StudyFactory

    run = build_icai_run(study, make_study_input(study))
    other = StudyFactory()
    foreign = PairFactory(dataset__study=other, prompt="Secret prompt of another study")
    artifact = StageArtifact.objects.get(run=run, stage="generate", batch=-1)
    artifact.data["items"][0]["evidence"]["pair_ids"] = [str(foreign.pk)]
    artifact.save()
    info = selectors.run_stage_get(run=run, stage="generate")
    view = stage_views.stage_artifact_view(run=run, info=info)
    assert "Secret prompt" not in str(view.items)


@pytest.mark.django_db
def test_merge_view_counts_duplicate_decisions(study):
    run = build_gcai_run(study, make_study_input(study))
    info = selectors.run_stage_get(run=run, stage="merge")
    view = stage_views.stage_artifact_view(run=run, info=info)
    assert view.summary["similar"] == 1
    assert view.summary["confirmed"] == 1
    assert view.summary["merged"] == 1
    (check,) = view.extra["checks"]
    assert check["general_text"] == "AI should be honest."


@pytest.mark.django_db
def test_rank_view_uses_stable_stat_names(study):
    run = build_gcai_run(study, make_study_input(study))
    general = stage_views.stage_artifact_view(
        run=run, info=selectors.run_stage_get(run=run, stage="general_rank")
    )
    assert general.items[0]["stats"]["statements"] == 1
    contextual = stage_views.stage_artifact_view(
        run=run, info=selectors.run_stage_get(run=run, stage="contextual_rank")
    )
    assert contextual.items[0]["stats"]["annotations"] == 3


@pytest.mark.django_db
def test_evidence_is_capped_per_principle_but_counted_in_full(study, django_assert_num_queries):
    data = make_study_input(study)
    principles = []
    for n in (7, 2):
        p = Principle.objects.create(study=study, text=f"P{n}", origin=Origin.CONTEXTUAL)
        pairs = [PairFactory(dataset=data["dataset"]) for _ in range(n)]
        p.supporting_pairs.set(pairs)
        p.supporting_annotations.set(
            [AnnotationFactory(pair=pair, annotator=data["annotator"]) for pair in pairs]
        )
        p.supporting_statements.set(
            [StatementFactory(study=study, participant=data["participant"]) for _ in range(n)]
        )
        principles.append(p)
    ids = [p.pk for p in principles]
    # counts (3 + dataset reasons) + capped annotations, pseudonyms, statements, pairs
    with django_assert_num_queries(8):
        evidence = selectors.principle_evidence_get(study=study, principle_ids=ids, cap=5)
    big, small = evidence[ids[0]], evidence[ids[1]]
    assert big.counts == {
        "reasons": 7,
        "annotations": 7,
        "dataset_reasons": 0,
        "statements": 7,
        "pairs": 7,
    }
    assert len(big.annotations) == len(big.statements) == len(big.pairs) == 5
    assert big.more_annotations == 2
    assert len(small.annotations) == 2
    assert small.more_annotations == 0
    assert {a["author"] for a in big.annotations} == {data["annotator_pseudonym"]}
    assert {s["author"] for s in big.statements} == {data["participant"].pseudonym}


@pytest.mark.django_db
def test_version_history_walks_both_directions(study):
    v1 = build_icai_run(study, make_study_input(study)).constitutions.get()
    item = v1.items.get()
    v1 = constitution_publish(constitution=v1)
    v2 = constitution_publish(
        constitution=constitution_new_version(
            constitution=v1, items=[{"principle": item.principle_id, "text": "two"}]
        ),
        override=True,  # "two" is not a well-formed principle
    )
    v3 = constitution_new_version(
        constitution=v2, items=[{"principle": item.principle_id, "text": "three"}]
    )
    for version in (v1, v2, v3):
        history = selectors.constitution_versions_list(constitution=version)
        assert [c.version for c in history] == [1, 2, 3]


@pytest.mark.django_db
def test_comparison_reports_shared_training_pairs_and_stats(study):
    data = make_study_input(study)
    gcai = build_gcai_run(study, data, comparison_group="g")
    icai = build_icai_run(study, data, comparison_group="g")
    result = selectors.run_comparison_get(run_a=gcai, run_b=icai)
    assert result["same_training_pairs"]
    assert result["same_group"]
    a, b = result["runs"]
    assert a.origins == {"Both streams": 1}
    assert b.origins == {"ICAI": 1}
    assert a.evidence["annotations"] == 3
    assert b.mean_accuracy == 1.0
    assert a.constitution == gcai.constitutions.get()


@pytest.mark.django_db
def test_run_principles_carry_evidence_counts(study):
    run = build_gcai_run(study, make_study_input(study))
    (p,) = selectors.run_principles(run=run)
    assert p.evidence_counts == {
        "reasons": 3,
        "annotations": 3,
        "dataset_reasons": 0,
        "statements": 1,
        "pairs": 3,
    }


@pytest.mark.django_db
def test_constitution_items_come_in_position_order(study):
    constitution = build_icai_run(study, make_study_input(study)).constitutions.get()
    extra = Principle.objects.create(study=study, text="Second", origin=Origin.ICAI)
    ConstitutionPrinciple.objects.create(
        constitution=constitution, principle=extra, position=2, text="Second"
    )
    texts = [i.text for i in selectors.constitution_items(constitution=constitution)]
    assert texts == ["Select the response that is honest.", "Second"]
