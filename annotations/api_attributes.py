"""API: attributes of people, aggregated (small groups suppressed), and the Prolific import."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotations import attributes
from annotations.api import StudyScopedAPIView


class _ValueCount(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField()


class AttributeSummarySerializer(serializers.Serializer):
    key = serializers.CharField()
    values = _ValueCount(many=True)
    hidden_values = serializers.IntegerField(
        help_text="Values held by fewer than min_group_size people (not shown)."
    )


class AttributesAPI(StudyScopedAPIView):
    """Counts of people per attribute value; values below the study's minimum are hidden."""

    @extend_schema(
        responses=inline_serializer(
            "StudyAttributes",
            {
                "min_group_size": serializers.IntegerField(),
                "attributes": AttributeSummarySerializer(many=True),
            },
        )
    )
    def get(self, request, study_id: int):
        study = self.get_study()
        return Response(
            {
                "min_group_size": study.min_group_size,
                "attributes": attributes.attribute_summary(study=study),
            }
        )


class ProlificUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class AttributesProlificImportAPI(StudyScopedAPIView):
    """Import Prolific's demographic export CSV (matched on "Participant id")."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request=ProlificUploadSerializer,
        responses=inline_serializer(
            "ProlificImportReport",
            {
                "rows": serializers.IntegerField(),
                "matched": serializers.IntegerField(),
                "unmatched": serializers.IntegerField(),
                "unmatched_lines": serializers.ListField(child=serializers.IntegerField()),
                "attributes_set": serializers.IntegerField(),
                "keys": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request, study_id: int):
        study = self.get_study()
        data = ProlificUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            report = attributes.attributes_import_prolific(
                study=study, file=data.validated_data["file"]
            )
        except attributes.AttributeImportError as exc:
            return Response({"file": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(report.as_dict(), status=status.HTTP_201_CREATED)
