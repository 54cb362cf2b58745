"""API: agreement and group-aware consensus of a constitution's or a run's general-stream
principles (see gcai.constitutions.consensus; groups below the minimum never appear)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from gcai.constitutions import selectors
from gcai.constitutions.api import (
    TAG_CONSTITUTIONS,
    TAG_RUNS,
    ConstitutionScopedAPIView,
    RunScopedAPIView,
)
from gcai.constitutions.consensus import ORDERS, ConsensusReport, principles_consensus


def _counts(name: str, *, group: bool = False, **kwargs):
    # "pass" is a Python keyword, so the serializer is built from a dict of fields.
    fields = {"value": serializers.CharField()} if group else {}
    fields.update(
        agree=serializers.IntegerField(),
        disagree=serializers.IntegerField(),
        voters=serializers.IntegerField(),
    )
    fields["pass"] = serializers.IntegerField()
    return inline_serializer(name, fields=fields, **kwargs)


class ConsensusPrincipleSerializer(serializers.Serializer):
    principle_id = serializers.IntegerField()
    position = serializers.IntegerField(help_text="Place in the constitution (or run rank).")
    text = serializers.CharField()
    origin = serializers.CharField()
    statements = serializers.IntegerField(help_text="Evidence statements behind it.")
    votes = _counts("ConsensusVotes", help_text="Votes on its evidence statements.")
    agreement = serializers.FloatField(
        allow_null=True, help_text="agree / (agree + disagree); null without such votes."
    )
    agreement_interval = serializers.ListField(
        child=serializers.FloatField(), allow_null=True, help_text="95% Wilson interval."
    )
    consensus = serializers.FloatField(
        allow_null=True,
        help_text="Product over groups of (agree + 1) / (agree + disagree + 2); null with "
        "fewer than two groups meeting the minimum.",
    )
    groups = _counts(
        "ConsensusGroup",
        group=True,
        many=True,
        help_text="Only groups with at least the minimum of people and voters.",
    )
    groups_left_out = serializers.IntegerField(
        help_text="Groups with votes but fewer voters than the minimum (never named)."
    )
    groups_withheld = serializers.BooleanField(
        help_text="Per-group tallies left out because the voters outside the shown groups "
        "are fewer than the minimum (the difference from the totals would reveal them)."
    )


class ConsensusReportSerializer(serializers.Serializer):
    attribute = serializers.CharField(allow_null=True)
    attributes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Attributes with two or more groups of at least the minimum size.",
    )
    min_group_size = serializers.IntegerField()
    order = serializers.ChoiceField(choices=list(ORDERS))
    has_votes = serializers.BooleanField()
    messages = serializers.ListField(child=serializers.CharField())
    principles = ConsensusPrincipleSerializer(many=True)


_PARAMETERS = [
    OpenApiParameter(
        "attribute", str, description="Attribute whose values are the groups (default: first)."
    ),
    OpenApiParameter("order", str, enum=list(ORDERS), description="Ranking (default position)."),
]


def _respond(request, report: ConsensusReport) -> Response:
    return Response(ConsensusReportSerializer(report.as_dict()).data)


class ConstitutionConsensusAPI(ConstitutionScopedAPIView):
    @extend_schema(
        tags=TAG_CONSTITUTIONS,
        summary="Agreement and group-aware consensus of the general-stream principles",
        parameters=_PARAMETERS,
        responses=ConsensusReportSerializer,
    )
    def get(self, request, study_id: int, constitution_id: int):
        constitution = self.get_constitution()
        items = selectors.constitution_items(constitution=constitution)
        report = principles_consensus(
            study=constitution.study,
            items=[(i.position, i.principle, i.text) for i in items],
            attribute=request.query_params.get("attribute"),
            order=request.query_params.get("order", "position"),
        )
        return _respond(request, report)


class RunConsensusAPI(RunScopedAPIView):
    @extend_schema(
        tags=TAG_RUNS,
        summary="Agreement and group-aware consensus of the run's general-stream principles",
        parameters=_PARAMETERS,
        responses=ConsensusReportSerializer,
    )
    def get(self, request, study_id: int, run_id: int):
        run = self.get_run()
        principles = selectors.run_principles(run=run)
        report = principles_consensus(
            study=run.study,
            items=[(p.rank, p, p.text) for p in principles],
            attribute=request.query_params.get("attribute"),
            order=request.query_params.get("order", "position"),
        )
        return _respond(request, report)
