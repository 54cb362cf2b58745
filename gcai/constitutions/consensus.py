"""Bridging consensus of general-stream principles, for pages and the API.

A general-stream principle (origin ``general``, or ``both`` after the merge) rests on
participants' value statements; other participants rated those statements agree /
disagree / pass (``annotations.bridging``). The ratings of a principle's evidence
statements give its overall agreement and, for a chosen attribute of the voters, its
group-informed consensus (``gcai.core.consensus``). This is presentation only: runs
and constitutions are not changed, and a ranking by consensus is a view of them.

Personal data: groups come from ``annotations.attributes.attribute_groups``, which
keeps only values held by at least ``Study.min_group_size`` people; the core then leaves
out any group with fewer voters than that on the principle. Neither kind of small group
is named or counted by value anywhere here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from annotations.attributes import attribute_groups, attribute_summary
from annotations.bridging import vote_ballots
from annotations.models import Study
from gcai.constitutions.evidence import through as evidence_through
from gcai.constitutions.models import Origin, Principle
from gcai.core.consensus import (
    Ballot,
    Consensus,
    agreement_order_key,
    consensus,
    consensus_order_key,
)

GENERAL_ORIGINS = (Origin.GENERAL, Origin.BOTH)
ORDERS = {
    "position": "Constitution order",
    "consensus": "Group-aware consensus, highest first",
    "agreement": "Overall agreement, highest first",
}


@dataclass
class ConsensusRow:
    principle_id: int
    position: int
    text: str
    origin: str
    statements: int  # evidence statements behind the principle
    result: Consensus

    @property
    def interval(self) -> tuple[float, float] | None:
        return self.result.overall.interval()

    def as_dict(self) -> dict[str, Any]:
        overall = self.result.overall
        interval = self.interval
        return {
            "principle_id": self.principle_id,
            "position": self.position,
            "text": self.text,
            "origin": self.origin,
            "statements": self.statements,
            "votes": {
                "agree": overall.agree,
                "disagree": overall.disagree,
                "pass": overall.passed,
                "voters": self.result.voters,
            },
            "agreement": overall.agreement,
            "agreement_interval": list(interval) if interval else None,
            "consensus": self.result.value,
            "groups": [
                {
                    "value": g.name,
                    "agree": g.counts.agree,
                    "disagree": g.counts.disagree,
                    "pass": g.counts.passed,
                    "voters": g.voters,
                }
                for g in self.result.groups
            ],
            "groups_left_out": self.result.groups_left_out,
            "groups_withheld": self.result.groups_withheld,
        }


@dataclass
class ConsensusReport:
    minimum: int
    order: str
    attributes: list[str]  # attributes with two or more groups of at least the minimum
    attribute: str | None
    rows: list[ConsensusRow] = field(default_factory=list)
    has_votes: bool = False
    messages: list[str] = field(default_factory=list)

    @property
    def orders(self) -> list[tuple[str, str]]:
        return list(ORDERS.items())

    def as_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "attributes": self.attributes,
            "min_group_size": self.minimum,
            "order": self.order,
            "has_votes": self.has_votes,
            "messages": self.messages,
            "principles": [row.as_dict() for row in self.rows],
        }


def consensus_attributes(*, study: Study) -> list[str]:
    """Attributes with at least two values each held by the minimum number of people."""
    return [row["key"] for row in attribute_summary(study=study) if len(row["values"]) >= 2]


def _group_of(study: Study, attribute: str) -> dict[str, str]:
    # Only participants vote; the groups are already those at or above the minimum.
    groups = attribute_groups(study=study, key=attribute)
    return {
        person.ref: value
        for value, people in groups.shown.items()
        for person in people
        if person.kind == "p"
    }


def principles_consensus(
    *,
    study: Study,
    items: Sequence[tuple[int, Principle, str]],
    attribute: str | None = None,
    order: str = "position",
) -> ConsensusReport:
    """Agreement and consensus of the general-stream principles among ``items``
    ((position, principle, text) in display order), ranked by ``order``.

    ``attribute`` must be one of :func:`consensus_attributes`; anything else (or None)
    falls back to the first of them, with a message when one was asked for.
    """
    order = order if order in ORDERS else "position"
    attributes = consensus_attributes(study=study)
    report = ConsensusReport(
        minimum=study.min_group_size, order=order, attributes=attributes, attribute=None
    )
    if attribute and attribute not in attributes:
        report.messages.append(
            f"“{attribute}” does not have two groups of at least {study.min_group_size} "
            "people, so it cannot be used; "
            + ("another attribute is shown." if attributes else "overall agreement is shown.")
        )
    report.attribute = attribute if attribute in attributes else (attributes or [None])[0]
    general = [(pos, p, text) for pos, p, text in items if p.origin in GENERAL_ORIGINS]
    if not general:
        report.messages.append("There are no general-stream principles here.")
        return report
    links = evidence_through("statements").objects.filter(
        principle_id__in=[p.pk for _, p, _ in general]
    )
    statements_of: dict[int, set[int]] = defaultdict(set)
    for principle_id, statement_id in links.values_list("principle_id", "valuestatement_id"):
        statements_of[principle_id].add(statement_id)
    ballots_of: dict[int, list[Ballot]] = defaultdict(list)
    all_statements = set().union(*statements_of.values()) if statements_of else set()
    for statement_id, participant_id, vote in vote_ballots(statement_ids=all_statements):
        ballots_of[statement_id].append(Ballot(voter=str(participant_id), vote=vote))
    group_of = _group_of(study, report.attribute) if report.attribute else {}
    for position, principle, text in general:
        ballots = [b for s in sorted(statements_of[principle.pk]) for b in ballots_of[s]]
        report.rows.append(
            ConsensusRow(
                principle_id=principle.pk,
                position=position,
                text=text,
                origin=principle.origin,
                statements=len(statements_of[principle.pk]),
                result=consensus(ballots, group_of=group_of, minimum=study.min_group_size),
            )
        )
    report.has_votes = any(row.result.overall.total for row in report.rows)
    if not report.has_votes:
        report.messages.append(
            "No participant has rated the statements behind these principles yet, so "
            "there is no agreement to show. Participants rate others' statements after "
            "writing their own (study setting “statements to rate”)."
        )
    elif not attributes:
        report.messages.append(
            f"No attribute has two or more groups of at least {study.min_group_size} "
            "people, so group-aware consensus cannot be computed; overall agreement is "
            "shown alone."
        )
    if order == "consensus":
        report.rows.sort(key=lambda r: consensus_order_key(r.result, r.position))
    elif order == "agreement":
        report.rows.sort(key=lambda r: agreement_order_key(r.result, r.position))
    return report
