"""REST API for data in and out: uploads (multipart) and streamed exports.

Same services as the Data page and the management commands; ownership comes from
``StudyScopedAPIView`` (strangers get 404). Export endpoints ignore the client's Accept
header because the file type is chosen by ``?fmt=``: a client asking for ``text/csv``
should get the CSV, not a 406 from JSON-only renderers.
"""

from __future__ import annotations

from dataclasses import asdict

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from annotations import exports, imports
from annotations.api import StudyScopedAPIView
from annotations.importers import DataImportError, pair_format_choices
from annotations.io_views import (
    constitution_in_study,
    dataset_from_query,
    download,
    survey_in_study,
)
from annotations.models import Dataset
from annotations.splits import pairs_assign_split


class PairsImportInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    dataset = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Defaults to the file name."
    )
    format = serializers.ChoiceField(
        choices=pair_format_choices(), required=False, allow_blank=True, default=""
    )
    mapping = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text='Column mapping: "prompt=q,response_a=x,response_b=y" or a JSON object.',
    )
    seed = serializers.IntegerField(required=False, default=0)
    split_test_fraction = serializers.FloatField(
        required=False, allow_null=True, default=None, min_value=0.01, max_value=0.99
    )
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Only detect and parse the first rows."
    )
    skip_invalid = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Import the valid rows and report every invalid one (line and reason) in "
        "skipped_rows; by default one invalid row fails the whole import.",
    )


class StatementsImportInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    mapping = serializers.CharField(required=False, allow_blank=True, default="")
    dry_run = serializers.BooleanField(required=False, default=False)
    skip_invalid = serializers.BooleanField(required=False, default=False)


class ImportReportSerializer(serializers.Serializer):
    kind = serializers.CharField()
    format = serializers.CharField()
    format_label = serializers.CharField()
    filename = serializers.CharField()
    dataset_id = serializers.IntegerField(allow_null=True)
    dataset_name = serializers.CharField()
    dataset_created = serializers.BooleanField()
    rows_read = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    duplicate_lines = serializers.ListField(child=serializers.IntegerField())
    duplicates_in_file = serializers.IntegerField()
    empty_responses = serializers.IntegerField()
    empty_response_lines = serializers.ListField(child=serializers.IntegerField())
    identical_responses = serializers.IntegerField()
    identical_response_lines = serializers.ListField(child=serializers.IntegerField())
    skip_invalid = serializers.BooleanField()
    skipped = serializers.IntegerField()
    skipped_rows = serializers.ListField(child=serializers.DictField())
    warnings = serializers.ListField(child=serializers.CharField())
    annotations_created = serializers.IntegerField()
    annotations_duplicate = serializers.IntegerField()
    split = serializers.DictField(allow_null=True)
    bytes_read = serializers.IntegerField()
    seconds = serializers.FloatField()
    imported_at = serializers.CharField()
    summary = serializers.CharField()


class SplitInputSerializer(serializers.Serializer):
    test_fraction = serializers.FloatField(min_value=0.01, max_value=0.99, default=0.2)
    seed = serializers.IntegerField(required=False, default=0)


def _error(exc: DataImportError) -> Response:
    return Response(exc.as_dict(), status=status.HTTP_400_BAD_REQUEST)


def _preview_payload(preview: imports.ImportPreview) -> dict:
    return {
        "format": preview.format,
        "format_label": preview.format_label,
        "container": preview.container,
        "columns": preview.columns,
        "rows": [asdict(row) for row in preview.rows],
        "error": preview.error_detail,
        "skipped_rows": preview.skipped_rows,
    }


class PairsImportAPI(StudyScopedAPIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": PairsImportInputSerializer},
        responses={201: ImportReportSerializer, 200: OpenApiTypes.OBJECT},
        description="Import preference pairs from a file into a dataset (created if new). "
        "With dry_run, return the detected format and the first rows instead.",
    )
    def post(self, request, study_id: int):
        study = self.get_study()
        data = PairsImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        args = data.validated_data
        upload = args["file"]
        try:
            if args["dry_run"]:
                preview = imports.pairs_preview(
                    file=upload,
                    format=args["format"] or None,
                    mapping=args["mapping"] or None,
                    seed=args["seed"],
                    skip_invalid=args["skip_invalid"],
                )
                return Response(_preview_payload(preview))
            report = imports.pairs_import(
                study=study,
                dataset_name=args.get("dataset") or upload.name.rsplit(".", 1)[0],
                file=upload,
                format=args["format"] or None,
                mapping=args["mapping"] or None,
                seed=args["seed"],
                split_test_fraction=args["split_test_fraction"],
                skip_invalid=args["skip_invalid"],
            )
        except DataImportError as exc:
            return _error(exc)
        payload = {**report.as_dict(), "summary": report.summary}
        return Response(payload, status=status.HTTP_201_CREATED)


class StatementsImportAPI(StudyScopedAPIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": StatementsImportInputSerializer},
        responses={201: ImportReportSerializer, 200: OpenApiTypes.OBJECT},
        description="Import value statements (CSV/JSONL with text and optional participant, "
        "question, moderation).",
    )
    def post(self, request, study_id: int):
        study = self.get_study()
        data = StatementsImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        args = data.validated_data
        try:
            if args["dry_run"]:
                preview = imports.statements_preview(
                    file=args["file"],
                    mapping=args["mapping"] or None,
                    skip_invalid=args["skip_invalid"],
                )
                return Response(_preview_payload(preview))
            report = imports.statements_import(
                study=study,
                file=args["file"],
                mapping=args["mapping"] or None,
                skip_invalid=args["skip_invalid"],
            )
        except DataImportError as exc:
            return _error(exc)
        payload = {**report.as_dict(), "summary": report.summary}
        return Response(payload, status=status.HTTP_201_CREATED)


class DatasetSplitAPI(StudyScopedAPIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(request=SplitInputSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, study_id: int, dataset_id: int):
        study = self.get_study()
        dataset = get_object_or_404(Dataset, pk=dataset_id, study=study)
        data = SplitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = pairs_assign_split(dataset=dataset, **data.validated_data)
        return Response(result)


# --- Exports -------------------------------------------------------------------------------
class _AnyAccept(BaseContentNegotiation):
    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return (renderers[0], renderers[0].media_type)


class _ExportAPI(StudyScopedAPIView):
    content_negotiation_class = _AnyAccept

    def _bad_format(self, fmt: str, table: dict) -> Response:
        return Response(
            {"detail": f"Unknown export format {fmt!r}; use one of: {', '.join(table)}."},
            status=status.HTTP_400_BAD_REQUEST,
        )


def _fmt_parameter(table: dict, default: str) -> OpenApiParameter:
    return OpenApiParameter(
        "fmt", str, enum=list(table), default=default, description="File format."
    )


class PairsExportAPI(_ExportAPI):
    @extend_schema(
        parameters=[
            _fmt_parameter(exports.PAIR_EXPORTS, "jsonl"),
            OpenApiParameter("dataset", int, required=False, description="Only this dataset."),
        ],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        description="Pairs with all their annotations (pseudonyms only), streamed.",
    )
    def get(self, request, study_id: int):
        study = self.get_study()
        fmt = request.query_params.get("fmt", "jsonl")
        kind = exports.PAIR_EXPORTS.get(fmt)
        if kind is None:
            return self._bad_format(fmt, exports.PAIR_EXPORTS)
        dataset = dataset_from_query(study, request.query_params.get("dataset"))
        name = exports.export_filename(
            "study", study.pk, "pairs", dataset.name if dataset else "", extension=kind.extension
        )
        return download(kind.function(study=study, dataset=dataset), kind, name)


class StatementsExportAPI(_ExportAPI):
    @extend_schema(
        parameters=[_fmt_parameter(exports.STATEMENT_EXPORTS, "csv")],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        description="Value statements with moderation state, streamed.",
    )
    def get(self, request, study_id: int):
        study = self.get_study()
        fmt = request.query_params.get("fmt", "csv")
        kind = exports.STATEMENT_EXPORTS.get(fmt)
        if kind is None:
            return self._bad_format(fmt, exports.STATEMENT_EXPORTS)
        name = exports.export_filename("study", study.pk, "statements", extension=kind.extension)
        return download(kind.function(study=study), kind, name)


class ConstitutionExportAPI(_ExportAPI):
    @extend_schema(
        parameters=[_fmt_parameter(exports.CONSTITUTION_EXPORTS, "json")],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        description="A constitution as JSON (principles, origins, stats, evidence ids), "
        "Markdown or plain system-prompt text.",
    )
    def get(self, request, study_id: int, constitution_id: int):
        study = self.get_study()
        constitution = constitution_in_study(study, constitution_id)
        fmt = request.query_params.get("fmt", "json")
        kind = exports.CONSTITUTION_EXPORTS.get(fmt)
        if kind is None:
            return self._bad_format(fmt, exports.CONSTITUTION_EXPORTS)
        name = exports.export_filename(
            constitution.title, f"v{constitution.version}", extension=kind.extension
        )
        return download(kind.function(constitution=constitution), kind, name)


class SurveyAnswersExportAPI(_ExportAPI):
    @extend_schema(
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
        description="Survey answers, one CSV row per answer, participants as pseudonyms.",
    )
    def get(self, request, study_id: int, survey_id: int):
        study = self.get_study()
        survey = survey_in_study(study, survey_id)
        kind = exports.SURVEY_EXPORTS["csv"]
        name = exports.export_filename("survey", survey.pk, "answers", extension=kind.extension)
        return download(kind.function(survey=survey), kind, name)
