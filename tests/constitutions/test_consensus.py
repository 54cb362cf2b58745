"""Group-aware consensus of general-stream principles on the constitution and run pages
and in the API; groups below the minimum size never appear."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.attributes import attribute_set
from annotations.models import StatementVote
from gcai.constitutions.models import Origin
from tests.factories import ConstitutionFactory, ParticipantFactory, StatementFactory

pytestmark = pytest.mark.django_db

BRIDGING = "Select the response that treats every region fairly."
DIVISIVE = "Select the response that favours the north."
CONTEXTUAL = "Select the response that answers the question asked."


def _people(study, value, n, key="region"):
    people = [ParticipantFactory(study=study) for _ in range(n)]
    for p in people:
        attribute_set(study=study, key=key, value=value, participant=p)
    return people


def _vote(people, statement, votes):
    for person, vote in zip(people, votes, strict=False):
        StatementVote.objects.create(participant=person, statement=statement, vote=vote)


@pytest.fixture
def world(study):
    """Minimum 3. Groups: Northfolk (3), Southfolk (3), Eastfolk (3 people, 1 voter), a value
    held by one person. DIVISIVE is position 1, BRIDGING position 2."""
    study.min_group_size = 3
    study.save()
    constitution = ConstitutionFactory(study=study, principles=[DIVISIVE, BRIDGING, CONTEXTUAL])
    items = {i.text: i.principle for i in constitution.items.select_related("principle")}
    items[CONTEXTUAL].origin = Origin.CONTEXTUAL
    items[CONTEXTUAL].save()
    s_bridging = StatementFactory(study=study, text="Fairness to all regions matters.")
    s_divisive = StatementFactory(study=study, text="The north deserves more.")
    s_other = StatementFactory(study=study, text="Answer what was asked.")
    items[BRIDGING].supporting_statements.add(s_bridging)
    items[DIVISIVE].supporting_statements.add(s_divisive)
    items[CONTEXTUAL].supporting_statements.add(s_other)
    north = _people(study, "Northfolk", 3)
    south = _people(study, "Southfolk", 3)
    east = _people(study, "Eastfolk", 3)
    rare = _people(study, "RareValueXYZ", 1)
    loner = ParticipantFactory(study=study)  # no attribute
    _vote(north, s_bridging, ["agree"] * 3)
    _vote(south, s_bridging, ["agree", "agree", "disagree"])
    _vote(east, s_bridging, ["agree"])  # one voter of three: left out
    _vote(rare, s_bridging, ["disagree"])
    _vote([loner], s_bridging, ["pass"])
    _vote(north, s_divisive, ["agree"] * 3)
    _vote(south, s_divisive, ["disagree"] * 3)
    _vote(north, s_other, ["disagree"] * 3)  # a contextual principle: not shown
    # A second attribute whose values are all below the minimum: not offered.
    for i, p in enumerate(north[:2]):
        attribute_set(study=study, key="hobby", value=f"hobby{i}", participant=p)
    return {"constitution": constitution, "principles": items}


def _api(client, study, constitution, **params):
    url = reverse(
        "api_constitution_consensus",
        kwargs={"study_id": study.pk, "constitution_id": constitution.pk},
    )
    return client.get(url, params)


def test_api_gives_agreement_and_consensus_per_general_principle(owner_client, study, world):
    body = _api(owner_client, study, world["constitution"]).json()
    assert body["attribute"] == "region"
    assert body["attributes"] == ["region"]  # "hobby" has no group of three
    assert body["min_group_size"] == 3
    rows = {r["text"]: r for r in body["principles"]}
    assert set(rows) == {DIVISIVE, BRIDGING}
    bridging = rows[BRIDGING]
    assert bridging["votes"] == {"agree": 6, "disagree": 2, "pass": 1, "voters": 9}
    assert bridging["agreement"] == pytest.approx(6 / 8)
    lo, hi = bridging["agreement_interval"]
    assert lo < 0.75 < hi
    # north (3+1)/(3+0+2) = 4/5, south (2+1)/(2+1+2) = 3/5; east and the rare value out.
    assert bridging["consensus"] == pytest.approx(12 / 25)
    assert [g["value"] for g in bridging["groups"]] == ["Northfolk", "Southfolk"]
    assert bridging["groups"][1] == {
        "value": "Southfolk",
        "agree": 2,
        "disagree": 1,
        "pass": 0,
        "voters": 3,
    }
    assert bridging["groups_left_out"] == 1  # east: one voter; the rare value is no group
    divisive = rows[DIVISIVE]
    assert divisive["agreement"] == pytest.approx(0.5)
    assert divisive["consensus"] == pytest.approx((4 / 5) * (1 / 5))


def test_ranking_by_consensus_puts_the_bridging_principle_first(owner_client, study, world):
    constitution = world["constitution"]
    body = _api(owner_client, study, constitution).json()
    assert [r["text"] for r in body["principles"]] == [DIVISIVE, BRIDGING]
    body = _api(owner_client, study, constitution, order="consensus").json()
    assert body["order"] == "consensus"
    assert [r["text"] for r in body["principles"]] == [BRIDGING, DIVISIVE]
    assert [r["position"] for r in body["principles"]] == [2, 1]
    url = reverse("constitution_detail", args=[study.pk, constitution.pk])
    html = owner_client.get(url, {"order": "consensus", "attribute": "region"}).content.decode()
    section = html.split('id="bridging-table"', 1)[1]
    assert section.index(BRIDGING) < section.index(DIVISIVE)
    assert "0.480" in section
    assert "0.160" in section
    assert "0.75" in section
    html = owner_client.get(url).content.decode()
    section = html.split('id="bridging-table"', 1)[1]
    assert section.index(DIVISIVE) < section.index(BRIDGING)


def test_small_groups_never_appear_on_pages_or_in_the_api(owner_client, study, world):
    constitution = world["constitution"]
    run = constitution.run
    pages = [
        owner_client.get(reverse("constitution_detail", args=[study.pk, constitution.pk])),
        owner_client.get(reverse("run_detail", args=[study.pk, run.pk])),
        _api(owner_client, study, constitution),
        owner_client.get(
            reverse("api_run_consensus", kwargs={"study_id": study.pk, "run_id": run.pk})
        ),
        _api(owner_client, study, constitution, attribute="hobby"),
    ]
    for response in pages:
        assert response.status_code == 200
        text = response.content.decode()
        assert "RareValueXYZ" not in text
        assert "Eastfolk" not in text
        assert "hobby0" not in text
        assert "Northfolk" in text  # the groups that meet the minimum are shown
    assert 'id="bridging-table"' in pages[1].content.decode()  # the run page has it too


def test_an_attribute_without_two_large_groups_is_refused_with_a_message(
    owner_client, study, world
):
    body = _api(owner_client, study, world["constitution"], attribute="hobby").json()
    assert body["attribute"] == "region"
    assert any("“hobby” does not have two groups of at least 3" in m for m in body["messages"])


def test_without_any_usable_attribute_only_agreement_is_shown(owner_client, study, world):
    study.min_group_size = 4
    study.save()
    body = _api(owner_client, study, world["constitution"]).json()
    assert body["attribute"] is None
    assert body["attributes"] == []
    assert all(r["consensus"] is None and r["groups"] == [] for r in body["principles"])
    assert {r["text"]: r["agreement"] for r in body["principles"]}[BRIDGING] == pytest.approx(0.75)
    assert any("No attribute has two or more groups of at least 4" in m for m in body["messages"])
    html = owner_client.get(
        reverse("constitution_detail", args=[study.pk, world["constitution"].pk])
    ).content.decode()
    assert "No attribute has two or more groups of at least 4" in html
    assert "Northfolk" not in html


def test_without_votes_an_honest_message_and_no_numbers(owner_client, study, world):
    StatementVote.objects.all().delete()
    body = _api(owner_client, study, world["constitution"]).json()
    assert body["has_votes"] is False
    assert any("No participant has rated" in m for m in body["messages"])
    html = owner_client.get(
        reverse("constitution_detail", args=[study.pk, world["constitution"].pk])
    ).content.decode()
    assert "No participant has rated" in html
    assert 'id="bridging-table"' not in html


def test_a_constitution_without_general_principles_has_no_section(owner_client, study):
    constitution = ConstitutionFactory(study=study, method="icai", principles=[CONTEXTUAL])
    html = owner_client.get(
        reverse("constitution_detail", args=[study.pk, constitution.pk])
    ).content.decode()
    assert 'id="bridging"' not in html


def test_strangers_get_404(stranger_client, study, world):
    assert _api(stranger_client, study, world["constitution"]).status_code == 404
    url = reverse("constitution_detail", args=[study.pk, world["constitution"].pk])
    assert stranger_client.get(url, {"order": "consensus"}).status_code == 404


def test_consensus_reads_a_fixed_number_of_queries(
    owner_client, study, world, django_assert_max_num_queries
):
    for i in range(5):
        extra = StatementFactory(study=study, text=f"More fairness {i}.")
        world["principles"][BRIDGING].supporting_statements.add(extra)
    with django_assert_max_num_queries(12):
        response = _api(owner_client, study, world["constitution"], order="consensus")
    assert response.status_code == 200
