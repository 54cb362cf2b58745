"""Per-group constitutions: two groups following different known rules, through the fake
OpenAI-compatible server, the real job engine and the real evaluation."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from gcai.constitutions.models import Evaluation, PipelineRun
from gcai.groups import report as reports
from gcai.groups import services
from gcai.groups.models import GroupComparison
from gcai.jobs.models import JobStatus
from tests.core.scripted import BLUE, CAT, Judge
from tests.groups.support import RULES, group_responder, make_groups

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(llm_server):
    llm_server.responder = group_responder(Judge(RULES))
    return llm_server


@pytest.fixture
def build(judged, django_capture_on_commit_callbacks):
    def run(study, **kwargs):
        comparison = services.group_comparison_create(study=study, attribute="group", **kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            services.group_comparison_start(comparison=comparison)
        comparison.refresh_from_db()
        return comparison

    return run


def _rules_in(texts: list[str]) -> set[str]:
    judge = Judge(RULES)
    return {rule.key for t in texts if (rule := judge.rule_for(t)) is not None}


def test_each_group_recovers_its_own_rule_and_the_matrix_diverges(study, build):
    make_groups(study)
    comparison = build(study)
    runs = PipelineRun.objects.filter(comparison_group=comparison.key)
    assert runs.count() == 2
    assert {r.status for r in runs} == {JobStatus.SUCCEEDED}, [r.error for r in runs]
    # Same training pairs for both groups.
    assert len({tuple(sorted(r.training_pairs.values_list("pk", flat=True))) for r in runs}) == 1
    assert len(comparison.cells) == 4
    assert set(
        Evaluation.objects.filter(comparison_group=comparison.key).values_list("status", flat=True)
    ) == {JobStatus.SUCCEEDED}

    report = reports.divergence_report(comparison)
    assert report["comparison"]["status"] == "done"
    texts = report["constitutions"]["gcai"]
    assert _rules_in(texts["X"]) == {CAT.key}
    assert _rules_in(texts["Y"]) == {BLUE.key}

    matrix = report["matrix"]["gcai"]
    cells = {(c["row"], c["col"]): c["accuracy"]["value"] for line in matrix["cells"] for c in line}
    assert cells[("X", "X")] == pytest.approx(1.0)
    assert cells[("Y", "Y")] == pytest.approx(1.0)
    # Pets and shirts are independent: one group's rule is at chance on the other's labels.
    assert cells[("X", "Y")] == pytest.approx(0.5)
    assert cells[("Y", "X")] == pytest.approx(0.5)
    lo = next(c for line in matrix["cells"] for c in line if c["row"] == c["col"] == "X")
    assert lo["accuracy"]["lo"] < 1.0  # a Wilson interval, not a bare point

    # The groups' own labels agree on half the pairs: kappa near zero.
    [cohen] = report["agreement"]["cohen"]
    assert cohen["n_pairs"] == 16
    assert cohen["agreement"] == pytest.approx(0.5)
    assert cohen["kappa"] == pytest.approx(0.0, abs=0.01)
    assert report["agreement"]["fleiss"] is None  # two groups: pairwise kappa says it all

    # Both principles are specific to their group; none is shared.
    principles = report["principles"]["gcai"]
    assert principles["shared"] == []
    assert _rules_in([p["text"] for p in principles["specific"]["X"]]) == {CAT.key}
    assert _rules_in([p["text"] for p in principles["specific"]["Y"]]) == {BLUE.key}
    # The group below the minimum is nowhere in the report.
    assert '"Z"' not in json.dumps(report)
    assert report["usage"]["runs"]["llm_calls"] > 0
    assert report["usage"]["evaluations"]["llm_calls"] > 0


def test_groups_below_the_minimum_are_refused(study, judged):
    make_groups(study)
    with pytest.raises(services.GroupComparisonError, match="fewer than 5 people"):
        services.group_comparison_create(study=study, attribute="group", values=["X", "Z"])
    study.min_group_size = 6
    study.save()
    with pytest.raises(services.GroupComparisonError, match="at least two groups of at least 6"):
        services.group_comparison_create(study=study, attribute="group")
    assert not GroupComparison.objects.exists()
    assert not PipelineRun.objects.exists()


def test_a_group_without_held_out_labels_is_refused(study, judged):
    make_groups(study, n_test=0)
    with pytest.raises(services.GroupComparisonError, match="no held-out"):
        services.group_comparison_create(study=study, attribute="group")


def test_report_is_withheld_once_the_minimum_rises_above_a_group(study, build, owner_client):
    make_groups(study)
    comparison = build(study)
    url = reverse("group_comparison_detail", args=[study.pk, comparison.pk])
    html = owner_client.get(url).content.decode()
    assert 'id="heatmap-gcai"' in html
    assert "background:rgb(" in html
    study.min_group_size = 6
    study.save()
    html = owner_client.get(url).content.decode()
    assert "no longer shown" in html
    assert "heatmap" not in html
    api = owner_client.get(reverse("api_group_comparison_report", args=[study.pk, comparison.pk]))
    assert api.status_code == 403
    assert "X" not in json.dumps(api.json().get("matrix", {}))
    csv = owner_client.get(reverse("group_comparison_csv", args=[study.pk, comparison.pk]))
    assert csv.status_code == 403


def test_page_exports_and_api(study, build, owner_client):
    make_groups(study)
    comparison = build(study)
    args = [study.pk, comparison.pk]
    response = owner_client.get(reverse("group_comparison_csv", args=args))
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines()[0].startswith("method,constitution_group,labels_group,accuracy")
    assert len(text.splitlines()) == 5
    assert "Z" not in text.split("\n", 1)[1]
    doc = json.loads(owner_client.get(reverse("group_comparison_json", args=args)).content)
    assert "members" not in json.dumps(doc)  # who is in a group never leaves the server
    api = owner_client.get(reverse("api_group_comparison_report", args=args)).json()
    assert api["matrix"]["gcai"]["mean_diagonal"] == pytest.approx(1.0)
    listing = owner_client.get(reverse("api_group_comparisons", args=[study.pk])).json()
    assert [row["id"] for row in listing] == [comparison.pk]
    assert {g["value"] for g in listing[0]["groups"]} == {"X", "Y"}
    page = owner_client.get(reverse("group_comparison_list", args=[study.pk])).content.decode()
    assert ">Z<" not in page
    # Each cell is judged on a handful of pairs: every view says so before the numbers.
    assert any("too few to draw a conclusion" in w for w in doc["warnings"])
    assert api["warnings"] == doc["warnings"]
    detail = owner_client.get(reverse("group_comparison_detail", args=args)).content.decode()
    assert "Weak evidence." in detail
    assert "embedded offline model" not in detail
    # Runs built with the embedded model are flagged as such.
    PipelineRun.objects.filter(comparison_group=comparison.key).update(
        config={"llm_backend": "local"}, llm_model="smollm2-135m-instruct"
    )
    detail = owner_client.get(reverse("group_comparison_detail", args=args)).content.decode()
    assert "Built with the embedded offline model (smollm2-135m-instruct)" in detail
    # So are evaluations judged by it, whatever built the constitutions.
    PipelineRun.objects.filter(comparison_group=comparison.key).update(config={})
    cell_ids = [c["evaluation"] for c in comparison.cells]
    evaluation = Evaluation.objects.get(pk=cell_ids[0])
    Evaluation.objects.filter(pk=evaluation.pk).update(
        config={**evaluation.config, "llm_backend": "local"}, llm_model="gemma3-270m"
    )
    detail = owner_client.get(reverse("group_comparison_detail", args=args)).content.decode()
    assert "Built with the embedded offline model (gemma3-270m)" in detail


def test_api_refuses_a_small_group_with_a_clear_message(study, judged, owner_client):
    make_groups(study)
    response = owner_client.post(
        reverse("api_group_comparisons", args=[study.pk]),
        {"attribute": "group", "values": ["X", "Z"]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "minimum group size" in response.json()["detail"]
    assert not GroupComparison.objects.exists()


def test_build_groups_command_prints_constitutions_and_matrix(study, judged, tmp_path, capsys):
    make_groups(study)
    out = tmp_path / "report.json"
    call_command("build_groups", str(study.pk), "--attribute", "group", "--out", str(out))
    printed = capsys.readouterr().out
    assert "gcai constitution of group = X" in printed
    assert "rows = whose constitution" in printed
    assert "mean diagonal 100.0%, mean off-diagonal 50.0%" in printed
    assert "Warning: Only" in printed  # a handful of held-out pairs per cell
    report = json.loads(out.read_text())
    assert report["comparison"]["status"] == "done"
    with pytest.raises(CommandError, match="fewer than 5 people"):
        call_command("build_groups", str(study.pk), "--attribute", "group", "--values", "X,Z")


def test_icai_per_group_learns_from_each_groups_labels_only(study, build):
    make_groups(study)
    comparison = build(study, methods=["icai"])
    report = reports.divergence_report(comparison, with_principles=False)
    assert report["comparison"]["status"] == "done", report["runs"]
    texts = report["constitutions"]["icai"]
    assert CAT.key in _rules_in(texts["X"])
    assert BLUE.key not in _rules_in(texts["X"])
    assert BLUE.key in _rules_in(texts["Y"])
    assert CAT.key not in _rules_in(texts["Y"])
    assert report["matrix"]["icai"]["mean_diagonal"] == pytest.approx(1.0)


def test_annotators_of_the_study_cannot_see_attributes_or_comparisons(client, study, annotator):
    from tests.groups.groups_owned_objects import make_comparison

    comparison = make_comparison(study)
    client.force_login(annotator)
    for url in (
        reverse("study_attributes", args=[study.pk]),
        reverse("api_attributes", args=[study.pk]),
        reverse("group_comparison_detail", args=[study.pk, comparison.pk]),
        reverse("api_group_comparison_report", args=[study.pk, comparison.pk]),
    ):
        assert client.get(url).status_code == 404, url


def test_comparison_lists_take_a_bounded_number_of_queries(
    study, owner_client, django_assert_max_num_queries
):
    from tests.groups.groups_owned_objects import make_comparison

    for _ in range(5):
        make_comparison(study)
    with django_assert_max_num_queries(12):
        response = owner_client.get(reverse("api_group_comparisons", args=[study.pk]))
    assert len(response.json()) == 5
    assert {row["status"] for row in response.json()} == {"waiting"}
    with django_assert_max_num_queries(14):
        assert (
            owner_client.get(reverse("group_comparison_list", args=[study.pk])).status_code == 200
        )


def test_matrix_cells_show_the_published_headline_not_strict_agreement(study, build):
    """A judge that flips with the order gets 50% per order but 0% strict agreement: the
    matrix shows the headline every evaluation page shows."""
    make_groups(study)
    comparison = build(study)
    cell = comparison.cells[0]
    evaluation = Evaluation.objects.get(pk=cell["evaluation"])
    metrics = evaluation.results["metrics"]
    metrics["accuracy"] = {**metrics["accuracy"], "value": 0.0, "k": 0}
    metrics["accuracy_per_order"] = {**metrics["accuracy_per_order"], "value": 0.5, "k": 8}
    Evaluation.objects.filter(pk=evaluation.pk).update(
        results={**evaluation.results, "metrics": metrics}
    )
    report = reports.divergence_report(comparison, with_principles=False)
    shown = next(
        c
        for line in report["matrix"][cell["method"]]["cells"]
        for c in line
        if c["evaluation"] == evaluation.pk
    )
    assert shown["accuracy"]["value"] == pytest.approx(0.5)
