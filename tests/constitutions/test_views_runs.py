"""Researcher pages for runs: the study section, starting runs, the run page, stage pages,
exports, cancel/resume and the comparison page."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gcai.constitutions.models import Method, PipelineRun, StageArtifact
from gcai.core.cluster import Evidence, Proposal, Proposals
from gcai.core.icai import DiffCluster, TripletSelection
from gcai.jobs.models import JobStatus
from tests.constitutions.constitutions_owned_objects import (
    EVIL,
    build_gcai_run,
    build_icai_run,
    make_study_input,
)
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(study):
    return make_study_input(study)


@pytest.fixture
def started(monkeypatch):
    """Record run_start calls instead of queueing Celery tasks (the engine is tested elsewhere)."""
    calls: list[PipelineRun] = []
    monkeypatch.setattr("gcai.constitutions.runs.run_start", lambda *, run: calls.append(run))
    return calls


def _section(study):
    return reverse("study_constitutions", kwargs={"study_id": study.pk})


def _run_url(run, name="run_detail", **extra):
    return reverse(name, kwargs={"study_id": run.study_id, "run_id": run.pk, **extra})


def _streamed(response) -> dict:
    return json.loads(b"".join(response.streaming_content))


# --------------------------------------------------------------------------- section


def test_section_lists_runs_with_status_progress_and_usage(owner_client, study, data):
    icai = build_icai_run(study, data)
    running = build_icai_run(
        study, data, status=JobStatus.RUNNING, stage="vote", progress_done=3, progress_total=8
    )
    response = owner_client.get(_section(study))
    assert response.status_code == 200
    html = response.content.decode()
    assert str(icai) in html
    assert "Succeeded" in html
    assert "Running" in html
    assert "3/8" in html
    assert ">42<" in html  # LLM calls
    assert ">7<" in html  # cached calls
    assert "0.0123" in html
    assert reverse("constitution_detail", args=[study.pk, icai.constitutions.get().pk]) in html
    assert reverse("run_detail", args=[study.pk, running.pk]) in html
    assert "Build GCAI + ICAI baseline" in html


def test_section_query_count_does_not_grow_with_runs(owner_client, study, data):
    build_icai_run(study, data)
    with CaptureQueriesContext(connection) as one:
        assert owner_client.get(_section(study)).status_code == 200
    for _ in range(3):
        build_icai_run(study, data)
    build_gcai_run(study, data)
    with CaptureQueriesContext(connection) as five:
        assert owner_client.get(_section(study)).status_code == 200
    assert len(five) == len(one)


def test_section_groups_runs_built_together(owner_client, study, data):
    gcai = build_gcai_run(study, data, comparison_group="g1")
    icai = build_icai_run(study, data, comparison_group="g1")
    html = owner_client.get(_section(study)).content.decode()
    assert f"?a={gcai.pk}&amp;b={icai.pk}" in html


# --------------------------------------------------------------------------- start runs


def test_start_run_creates_a_run_with_the_chosen_settings_and_starts_it(
    owner_client, study, data, started
):
    response = owner_client.post(
        reverse("run_create", args=[study.pk]),
        {
            "method": Method.ICAI,
            "seed": 3,
            "batch_size": 10,
            "max_training_pairs": 2,
            "datasets": [data["dataset"].pk],
            "num_clusters": 5,
            "max_principles": 4,
            "representative": "centroid",
            "vote_seeds": 2,
        },
    )
    run = PipelineRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == _run_url(run)
    assert started == [run]
    assert run.method == Method.ICAI
    assert run.seed == 3
    assert run.config["batch_size"] == 10
    assert run.config["dataset_ids"] == [data["dataset"].pk]
    settings = run.config["method_config"]
    assert settings["num_clusters"] == 5
    assert settings["max_principles"] == 4
    assert settings["representative"] == "centroid"
    assert settings["vote_seeds"] == 2
    assert run.training_pairs.count() == 2


def test_gcai_run_applies_cluster_count_and_representative_to_both_streams(
    owner_client, study, data, started
):
    owner_client.post(
        reverse("run_create", args=[study.pk]),
        {
            "method": Method.GCAI,
            "seed": 0,
            "batch_size": 25,
            "num_clusters": 7,
            "representative": "centroid",
            "contextual_share": 0.3,
            "advanced": '{"similarity_threshold": 0.9}',
        },
    )
    settings = PipelineRun.objects.get().config["method_config"]
    assert settings["contextual_clusters"] == settings["general_clusters"] == 7
    assert settings["contextual_representative"] == settings["general_representative"] == "centroid"
    assert settings["contextual_share"] == 0.3
    assert settings["similarity_threshold"] == 0.9


def test_engine_error_on_an_advanced_setting_is_shown_next_to_that_field(
    owner_client, study, data, started
):
    response = owner_client.post(
        reverse("run_create", args=[study.pk]),
        {"method": Method.ICAI, "seed": 0, "batch_size": 25, "advanced": '{"min_support": 2}'},
    )
    assert response.status_code == 400
    assert response.context["run_form"].errors["advanced"] == [
        "must be a number between 0.0 and 1.0, got 2"
    ]
    assert 'id="id_advanced_error1"' in response.content.decode()
    assert not PipelineRun.objects.exists()
    assert started == []


def test_engine_error_naming_a_visible_setting_lands_on_that_field(
    owner_client, study, data, started, monkeypatch
):
    def refuse(**kwargs):
        raise ValueError("contextual_clusters: must be at most 50")

    monkeypatch.setattr("gcai.constitutions.runs.run_create", refuse)
    response = owner_client.post(
        reverse("run_create", args=[study.pk]),
        {"method": Method.GCAI, "seed": 0, "batch_size": 25, "num_clusters": 99},
    )
    assert response.status_code == 400
    assert response.context["run_form"].errors["num_clusters"] == ["must be at most 50"]
    assert 'id="id_num_clusters_error1"' in response.content.decode()


def test_study_without_training_pairs_gets_a_form_error(owner_client, study, started):
    response = owner_client.post(
        reverse("run_create", args=[study.pk]),
        {"method": Method.ICAI, "seed": 0, "batch_size": 25},
    )
    assert response.status_code == 400
    assert "No training pairs" in response.content.decode()
    assert started == []


def test_invalid_number_is_refused_before_the_engine(owner_client, study, data, started):
    response = owner_client.post(
        reverse("run_create", args=[study.pk]),
        {"method": Method.ICAI, "seed": -1, "batch_size": 0},
    )
    assert response.status_code == 400
    errors = response.context["run_form"].errors
    assert "seed" in errors
    assert "batch_size" in errors


def test_one_click_builds_gcai_and_icai_on_the_same_training_pairs(
    owner_client, study, data, started
):
    response = owner_client.post(
        reverse("runs_create_comparison", args=[study.pk]),
        {
            "cmp-icai_method": Method.ICAI_IMPROVED_1,
            "cmp-seed": 4,
            "cmp-batch_size": 25,
            "cmp-max_training_pairs": 3,
            "cmp-num_clusters": 6,
        },
    )
    gcai = PipelineRun.objects.get(method=Method.GCAI)
    icai = PipelineRun.objects.get(method=Method.ICAI_IMPROVED_1)
    assert response.status_code == 302
    assert response["Location"].endswith(f"?a={gcai.pk}&b={icai.pk}")
    assert set(started) == {gcai, icai}
    assert gcai.comparison_group
    assert gcai.comparison_group == icai.comparison_group
    gcai_pairs = set(gcai.training_pairs.values_list("pk", flat=True))
    assert len(gcai_pairs) == 3
    assert gcai_pairs == set(icai.training_pairs.values_list("pk", flat=True))
    assert gcai.config["method_config"]["contextual_clusters"] == 6
    assert icai.config["method_config"]["num_clusters"] == 6


def test_one_click_build_with_defaults_needs_no_settings(owner_client, study, data, started):
    response = owner_client.post(
        reverse("runs_create_comparison", args=[study.pk]),
        {"cmp-icai_method": Method.ICAI, "cmp-seed": 0, "cmp-batch_size": 25},
    )
    assert response.status_code == 302
    assert PipelineRun.objects.count() == 2
    assert len(started) == 2


def test_start_forms_refuse_get(owner_client, study):
    assert owner_client.get(reverse("run_create", args=[study.pk])).status_code == 405


# --------------------------------------------------------------------------- run page


def test_run_page_shows_every_icai_stage(owner_client, study, data):
    run = build_icai_run(study, data)
    response = owner_client.get(_run_url(run))
    assert response.status_code == 200
    html = response.content.decode()
    for title in (
        "Generate candidate principles",
        "Embed and cluster candidates",
        "Pick one principle per cluster",
        "Test principles on training pairs",
        "Filter, rank and cap",
    ):
        assert title in html
    # generate: per pair, with statuses and notes
    assert "Select the response that is brief." in html
    assert "label tie: only decisive" in html
    assert "LLMOutputError: bad JSON" in html
    # cluster members with counts, representatives
    assert "Cluster 0: 2 members, 1 distinct text" in html
    assert "\u00d72" in html  # the member text appeared twice
    # vote table as an SVG chart and a table
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"' in html
    assert "Votes per principle" in html
    # filter: decisions and final list
    assert "kept (rank 1)" in html
    assert "for 0 &lt;= against 2" in html or "for 2 &lt;= against" in html or "min support" in html
    assert reverse("constitution_detail", args=[study.pk, run.constitutions.get().pk]) in html
    assert _run_url(run, "run_stage_export", stage="generate") in html
    assert "js/runs.js" not in html  # finished: no polling


def test_run_page_shows_both_gcai_streams_and_the_merge_decisions(owner_client, study, data):
    run = build_gcai_run(study, data)
    html = owner_client.get(_run_url(run)).content.decode()
    assert "Contextual stream" in html
    assert "General stream" in html
    assert "Merge into one constitution" in html
    assert "off-topic: about turtles" in html  # statement without values, with the reason
    assert "no_values" in html
    assert "1 similar pair" in html
    assert "1 confirmed by the LLM" in html
    assert "<strong>1 merged</strong>" in html
    assert "Select the response that is honest about uncertainty." in html
    # Reasons behind generated principles appear under the annotator's pseudonym only.
    assert data["annotator_pseudonym"] in html
    assert "Reason 0: it is honest." in html
    assert data["annotator"].username not in html
    assert data["annotator"].email not in html


def test_run_page_shows_the_triplet_stage_of_improved_2(owner_client, study, data):
    run = build_icai_run(study, data, method=Method.ICAI_IMPROVED_2)
    ids = [str(p.pk) for p in data["pairs"]]
    selection = TripletSelection(
        [
            DiffCluster("content", 0, 2.5, ids[:3], "selected", ids[:3]),
            DiffCluster("content", 1, 1.1, ids[3:], "too_small"),
        ],
        n_pairs=4,
    )
    StageArtifact.objects.create(run=run, stage="triplets", data=selection.to_dict())
    html = owner_client.get(_run_url(run)).content.decode()
    assert "Cluster response differences, pick triplets" in html
    assert "content-0" in html
    assert "too_small" in html
    assert ", ".join(ids[:3]) in html


def test_run_page_escapes_principle_text_everywhere(owner_client, study, data):
    run = build_icai_run(study, data, text=EVIL)
    html = owner_client.get(_run_url(run)).content.decode()
    assert EVIL not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in html
    stage_html = owner_client.get(_run_url(run, "run_stage", stage="vote")).content.decode()
    assert EVIL not in stage_html


def test_active_run_page_polls_and_offers_cancel(owner_client, study, data):
    run = build_icai_run(
        study, data, status=JobStatus.RUNNING, stage="vote", progress_done=2, progress_total=5
    )
    html = owner_client.get(_run_url(run)).content.decode()
    assert "js/runs.js" in html
    assert f'data-status-url="{reverse("api_run_status", args=[study.pk, run.pk])}"' in html
    assert 'data-active="true"' in html
    assert _run_url(run, "run_cancel") in html
    assert "Test principles on training pairs" in html  # the stage title, not its name
    assert 'aria-valuenow="40"' in html
    assert 'id="run-overall"' in html
    assert re.search(r'id="run-overall">Stage \d+ of \d+<', html)
    assert 'id="stage-state-vote"' in html


def test_failed_run_shows_its_error_and_a_resume_button(owner_client, study, data):
    run = build_icai_run(study, data, status=JobStatus.FAILED, error="LLM server <down>")
    html = owner_client.get(_run_url(run)).content.decode()
    assert "LLM server &lt;down&gt;" in html
    assert _run_url(run, "run_resume") in html
    assert "Cancel run" not in html


def test_cancel_stops_a_queued_run(owner_client, study, data):
    run = build_icai_run(study, data, status=JobStatus.QUEUED, stage="")
    response = owner_client.post(_run_url(run, "run_cancel"))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    assert run.cancel_requested


def test_cancel_of_a_finished_run_changes_nothing(owner_client, study, data):
    run = build_icai_run(study, data)
    response = owner_client.post(_run_url(run, "run_cancel"), follow=True)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED
    assert not run.cancel_requested
    assert "Only a queued or running run can be cancelled." in response.content.decode()


def test_resume_requeues_a_failed_run(owner_client, study, data, started):
    run = build_icai_run(study, data, status=JobStatus.FAILED, error="boom")
    owner_client.post(_run_url(run, "run_resume"))
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED
    assert run.error == ""
    assert [r.pk for r in started] == [run.pk]


def test_resume_of_a_succeeded_run_explains_why_not(owner_client, study, data, started):
    run = build_icai_run(study, data)
    response = owner_client.post(_run_url(run, "run_resume"), follow=True)
    assert "already succeeded" in response.content.decode()
    assert started == []


def test_run_of_another_study_is_not_found_under_own_study(owner_client, study, data):
    other = StudyFactory()
    foreign = build_icai_run(other, make_study_input(other))
    url = reverse("run_detail", kwargs={"study_id": study.pk, "run_id": foreign.pk})
    assert owner_client.get(url).status_code == 404


# --------------------------------------------------------------------------- stage pages


def _many_proposals(run, n: int) -> None:
    items = [
        Proposal(
            f"{i:04d}",
            Evidence(pair_ids=[f"{i}"]),
            [f"Principle {i}"] if i % 10 else [],
            "ok" if i % 10 else "error",
            "" if i % 10 else f"failure {i}",
        )
        for i in range(n)
    ]
    StageArtifact.objects.filter(run=run, stage="generate").delete()
    StageArtifact.objects.create(
        run=run, stage="generate", batch=-1, data=Proposals(items).to_dict()
    )


def test_run_page_caps_long_stages_and_links_to_the_full_listing(owner_client, study, data):
    run = build_icai_run(study, data)
    _many_proposals(run, 120)
    html = owner_client.get(_run_url(run)).content.decode()
    assert "Principle 1<" in html
    assert "Principle 51<" not in html
    assert "Show all 120 (showing 10)" in html


def test_run_page_queries_do_not_grow_with_the_stored_data(owner_client, study, data):
    run = build_icai_run(study, data)
    with CaptureQueriesContext(connection) as small:
        assert owner_client.get(_run_url(run)).status_code == 200
    _many_proposals(run, 120)
    with CaptureQueriesContext(connection) as large:
        assert owner_client.get(_run_url(run)).status_code == 200
    assert len(large) <= len(small)


def test_stage_page_paginates_and_filters_by_status(owner_client, study, data):
    run = build_icai_run(study, data)
    _many_proposals(run, 120)
    url = _run_url(run, "run_stage", stage="generate")
    page1 = owner_client.get(url).content.decode()
    assert "Page 1 of 3" in page1
    assert "Principle 49<" in page1
    assert "Principle 51<" not in page1
    page2 = owner_client.get(url, {"page": 2}).content.decode()
    assert "Principle 51<" in page2
    errors = owner_client.get(url, {"status": "error"}).content.decode()
    assert "failure 10" in errors
    assert "Principle 1<" not in errors


def test_vote_stage_page_lists_pairs_and_failed_calls(owner_client, study, data):
    run = build_icai_run(study, data)
    html = owner_client.get(_run_url(run, "run_stage", stage="vote")).content.decode()
    assert "Per pair" in html
    assert "Calls with invalid answers" in html
    assert "bad JSON" in html


def test_unknown_stage_is_not_found(owner_client, study, data):
    run = build_icai_run(study, data)
    assert owner_client.get(_run_url(run, "run_stage", stage="nope")).status_code == 404


def test_stage_page_of_a_stage_not_stored_yet_lists_stored_batches(owner_client, study, data):
    run = build_icai_run(study, data, status=JobStatus.RUNNING, stage="vote")
    StageArtifact.objects.filter(run=run, stage="vote").delete()
    StageArtifact.objects.create(run=run, stage="vote", batch=0, data={"calls": [], "pairs": []})
    html = owner_client.get(_run_url(run, "run_stage", stage="vote")).content.decode()
    assert "no stored output yet" in html
    assert "?batch=0" in html


# --------------------------------------------------------------------------- exports


def test_stage_export_streams_the_stored_json(owner_client, study, data):
    run = build_icai_run(study, data)
    response = owner_client.get(_run_url(run, "run_stage_export", stage="generate"))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    assert f'filename="run-{run.pk}-generate.json"' in response["Content-Disposition"]
    payload = _streamed(response)
    stored = StageArtifact.objects.get(run=run, stage="generate", batch=-1).data
    assert payload["run"] == run.pk
    assert payload["artifacts"][0]["stage"] == "generate"
    assert payload["artifacts"][0]["data"] == stored


def test_batch_export_and_missing_batches(owner_client, study, data):
    run = build_icai_run(study, data)
    url = _run_url(run, "run_stage_export", stage="generate")
    assert _streamed(owner_client.get(url, {"batch": 0}))["artifacts"][0]["batch"] == 0
    assert owner_client.get(url, {"batch": 7}).status_code == 404
    assert owner_client.get(url, {"batch": "x"}).status_code == 404


def test_run_export_holds_every_merged_stage(owner_client, study, data):
    run = build_gcai_run(study, data)
    payload = _streamed(owner_client.get(_run_url(run, "run_export")))
    stages = [a["stage"] for a in payload["artifacts"]]
    assert stages[0] == "contextual_generate"
    assert stages[-1] == "merge"
    assert len(stages) == 10


# --------------------------------------------------------------------------- comparison


def test_comparison_page_puts_two_runs_side_by_side(owner_client, study, data):
    gcai = build_gcai_run(study, data, comparison_group="g")
    icai = build_icai_run(study, data, comparison_group="g", llm_calls=99)
    response = owner_client.get(
        reverse("run_compare", args=[study.pk]), {"a": gcai.pk, "b": icai.pk}
    )
    html = response.content.decode()
    assert "Same training pairs" in html
    assert "built together" in html
    assert "Select the response that is honest about uncertainty." in html
    assert "Select the response that is honest." in html
    assert ">99 (7 cached" in html
    assert "Both streams" in html
    assert "ICAI baseline" in html


def test_comparison_page_warns_when_training_pairs_differ(owner_client, study, data):
    a = build_icai_run(study, data)
    b = build_icai_run(study, data)
    b.training_pairs.set(data["pairs"][:2])
    html = owner_client.get(
        reverse("run_compare", args=[study.pk]), {"a": a.pk, "b": b.pk}
    ).content.decode()
    assert "Different training pairs" in html
    assert "2 shared" in html


def test_comparison_of_a_run_from_another_study_is_not_found(owner_client, study, data):
    mine = build_icai_run(study, data)
    other = StudyFactory()
    foreign = build_icai_run(other, make_study_input(other))
    response = owner_client.get(
        reverse("run_compare", args=[study.pk]), {"a": mine.pk, "b": foreign.pk}
    )
    assert response.status_code == 404


def test_comparison_page_without_runs_chosen_shows_the_picker(owner_client, study, data):
    build_icai_run(study, data)
    html = owner_client.get(reverse("run_compare", args=[study.pk])).content.decode()
    assert '<label for="run-a">Run A</label>' in html
