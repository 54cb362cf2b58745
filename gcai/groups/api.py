"""API: per-group constitutions (create and list) and a comparison's divergence report."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from annotations.access import object_for
from annotations.api import StudyScopedAPIView
from gcai.groups import report as reports
from gcai.groups import services
from gcai.groups.models import GroupComparison


class GroupComparisonInput(serializers.Serializer):
    attribute = serializers.CharField(max_length=100)
    methods = serializers.ListField(
        child=serializers.ChoiceField(choices=services.METHODS), default=["gcai"]
    )
    values = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, allow_empty=False
    )
    seed = serializers.IntegerField(default=0)
    max_training_pairs = serializers.IntegerField(min_value=1, required=False)
    eval_limit = serializers.IntegerField(min_value=1, required=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=1000, default=25)


class GroupComparisonSummary(serializers.Serializer):
    id = serializers.IntegerField()
    attribute = serializers.CharField()
    methods = serializers.ListField(child=serializers.CharField())
    groups = serializers.ListField(child=serializers.DictField())
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


def _summary(comparison: GroupComparison, status: str | None = None) -> dict:
    return {
        "id": comparison.pk,
        "attribute": comparison.attribute,
        "methods": comparison.methods,
        "groups": [{"value": g["value"], "size": g["size"]} for g in comparison.groups],
        "status": status or reports.comparison_status(comparison),
        "created_at": comparison.created_at.isoformat(),
    }


class GroupComparisonListCreateAPI(StudyScopedAPIView):
    @extend_schema(
        operation_id="group_comparisons_list", responses=GroupComparisonSummary(many=True)
    )
    def get(self, request, study_id: int):
        study = self.get_study()
        minimum = study.min_group_size
        comparisons = [
            c
            for c in GroupComparison.objects.filter(study=study)
            if all(g["size"] >= minimum for g in c.groups)
        ]
        statuses = reports.comparison_statuses(comparisons)
        return Response([_summary(c, statuses[c.pk]) for c in comparisons])

    @extend_schema(
        operation_id="group_comparisons_create",
        request=GroupComparisonInput,
        responses={201: GroupComparisonSummary},
    )
    def post(self, request, study_id: int):
        study = self.get_study()
        data = GroupComparisonInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            comparison = services.group_comparison_create(
                study=study, user=request.user, **data.validated_data
            )
        except services.GroupComparisonError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        services.group_comparison_start(comparison=comparison)
        return Response(_summary(comparison), status=status.HTTP_201_CREATED)


class GroupComparisonReportAPI(StudyScopedAPIView):
    @extend_schema(
        operation_id="group_comparison_report",
        responses=inline_serializer("DivergenceReport", {"comparison": serializers.DictField()}),
    )
    def get(self, request, study_id: int, comparison_id: int):
        study = self.get_study()
        comparison = object_for(
            GroupComparison.objects.filter(study=study), request.user, comparison_id
        )
        try:
            return Response(reports.divergence_report(comparison))
        except reports.ReportUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
