"""REST API: training-data export of a published constitution, steering evaluations and
critique-and-revision runs. Every endpoint is under its study (strangers get 404)."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from annotations.access import object_for
from annotations.api import StudyScopedAPIView
from annotations.models import Split
from gcai.constitutions.models import Constitution
from gcai.core.training_data import (
    DEFAULT_HEADER,
    GENERATION_FORM,
    KINDS,
    PLACEMENTS,
    SELECTION_FORM,
    STYLES,
)
from gcai.modeling import exports, selectors, services
from gcai.modeling.exports import ExportError
from gcai.modeling.models import SteeringKind, SteeringRun
from gcai.modeling.services import SteeringError

# --------------------------------------------------------------------------- export


class ExportQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS, default="dpo")
    style = serializers.ChoiceField(choices=STYLES, default="conversational")
    placement = serializers.ChoiceField(choices=PLACEMENTS, default="user")
    reword = serializers.BooleanField(default=True)
    reword_from = serializers.CharField(default=SELECTION_FORM, max_length=300, allow_blank=True)
    reword_to = serializers.CharField(default=GENERATION_FORM, max_length=300, allow_blank=True)
    header = serializers.CharField(default=DEFAULT_HEADER, max_length=500, allow_blank=True)
    relevant_only = serializers.BooleanField(default=False)
    evaluation = serializers.IntegerField(required=False)
    datasets = serializers.ListField(child=serializers.IntegerField(), required=False)


_EXPORT_PARAMS = [
    OpenApiParameter(name, str, description=text)
    for name, text in (
        ("kind", "dpo (also ORPO) | kto | sft"),
        ("style", "conversational | standard"),
        ("placement", "user | system | none"),
        ("reword", "true | false"),
        ("reword_from", "phrase replaced at the start of each principle"),
        ("reword_to", "its replacement"),
        ("header", "line above the numbered principles"),
        ("relevant_only", "true: only the principles relevant to each pair"),
        ("evaluation", "id of an evaluation of this constitution (per-principle votes)"),
        ("datasets", "dataset id; repeat for several (default: all)"),
    )
]


class _ExportView(StudyScopedAPIView):
    def get_plan(self):
        study = self.get_study()
        constitution = object_for(
            Constitution.objects.filter(study=study),
            self.request.user,
            self.kwargs["constitution_id"],
        )
        query: dict[str, Any] = {
            k: v for k, v in self.request.query_params.items() if k != "datasets"
        }
        if "datasets" in self.request.query_params:
            query["datasets"] = self.request.query_params.getlist("datasets")
        params = ExportQuerySerializer(data=query)
        params.is_valid(raise_exception=True)
        v = dict(params.validated_data)
        evaluation_id = v.pop("evaluation", None)
        dataset_ids = v.pop("datasets", None)
        try:
            return exports.export_plan(
                constitution=constitution,
                settings=v,
                dataset_ids=dataset_ids,
                evaluation_id=evaluation_id,
            )
        except ExportError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from exc


class TrainingExportAPI(_ExportView):
    """The provenance sidecar (settings, counts per split, conditioning text) and the
    URLs of the JSON-lines files, for the same query parameters."""

    @extend_schema(parameters=_EXPORT_PARAMS, responses={200: dict})
    def get(self, request, study_id: int, constitution_id: int):
        plan = self.get_plan()
        provenance = exports.export_provenance(plan)
        query = request.META.get("QUERY_STRING", "")
        base = request.build_absolute_uri(request.path)
        provenance["urls"] = {
            part: f"{base}{part}.jsonl" + (f"?{query}" if query else "")
            for part in provenance["files"]
        }
        return Response(provenance)


class TrainingExportFileAPI(_ExportView):
    """One split as JSON lines in the chosen TRL format, streamed."""

    @extend_schema(parameters=_EXPORT_PARAMS, responses={(200, "application/jsonl"): str})
    def get(self, request, study_id: int, constitution_id: int, part: str):
        if part not in exports.PARTS:
            raise Http404("No such file.")
        plan = self.get_plan()
        response = StreamingHttpResponse(
            exports.export_lines(plan, part), content_type="application/jsonl; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{part}.jsonl"'
        return response


# --------------------------------------------------------------------------- steering


class SteeringCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SteeringKind.choices, default=SteeringKind.STEERING)
    constitution = serializers.IntegerField()
    constitution_b = serializers.IntegerField(required=False, allow_null=True)
    prompts = serializers.ListField(
        child=serializers.CharField(max_length=services.MAX_PROMPT_CHARS),
        required=False,
        max_length=services.MAX_PROMPTS,
        help_text="Prompts to answer; omit to use the study's prompts of `split`.",
    )
    datasets = serializers.ListField(child=serializers.IntegerField(), required=False)
    split = serializers.ChoiceField(choices=Split.values, default=Split.TEST)
    limit = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    target_backend = serializers.ChoiceField(choices=["openai", "local"], default="openai")
    target_base_url = serializers.CharField(required=False, allow_blank=True, max_length=500)
    target_model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    target_api_key_env = serializers.CharField(default="OPENAI_API_KEY", max_length=100)
    placement = serializers.ChoiceField(choices=["user", "system"], default="user")
    reword = serializers.BooleanField(default=True)
    max_tokens = serializers.IntegerField(default=512, min_value=1, max_value=32768)
    temperature = serializers.FloatField(default=0.0, min_value=0.0, max_value=2.0)
    seed = serializers.IntegerField(default=0)
    batch_size = serializers.IntegerField(
        default=services.DEFAULT_BATCH_SIZE, min_value=1, max_value=1000
    )
    start = serializers.BooleanField(default=True)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        study = self.context["study"]
        for field in ("constitution", "constitution_b"):
            pk = data.get(field)
            if pk is None:
                continue
            found = Constitution.objects.filter(study=study, pk=pk).first()
            if found is None:
                raise serializers.ValidationError({field: f"No constitution {pk} in this study."})
            data[f"{field}_object"] = found
        return data


def _output(run: SteeringRun, *, rows: bool = False) -> dict[str, Any]:
    config = run.config or {}
    out = {
        "id": run.pk,
        "kind": run.kind,
        "title": run.title,
        "status": run.status,
        "stage": run.stage,
        "progress_done": run.progress_done,
        "progress_total": run.progress_total,
        "error": run.error,
        "constitution": run.constitution_id,
        "constitution_b": run.constitution_b_id,
        "target": config.get("target"),
        "n_prompts": len(config.get("prompts") or []),
        "llm_calls": run.llm_calls,
        "llm_cached_calls": run.llm_cached_calls,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }
    if run.kind == SteeringKind.CRITIQUE:
        out["results"] = run.results
    else:
        out["comparisons"] = selectors.steering_comparisons(run, with_rows=rows)
    return out


class SteeringListCreateAPI(StudyScopedAPIView):
    @extend_schema(operation_id="studies_steering_list", responses={200: dict})
    def get(self, request, study_id: int):
        queryset = selectors.steering_runs_for_study(study=self.get_study()).defer(None)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([_output(r) for r in page])

    @extend_schema(request=SteeringCreateSerializer, responses={201: dict})
    def post(self, request, study_id: int):
        study = self.get_study()
        data = SteeringCreateSerializer(data=request.data, context={"study": study})
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            if v.get("prompts"):
                prompts, source = v["prompts"], {"kind": "list"}
            else:
                prompts = services.prompts_from_datasets(
                    study=study,
                    dataset_ids=v.get("datasets"),
                    split=v["split"],
                    limit=v.get("limit"),
                    seed=v["seed"],
                )
                source = {
                    "kind": "dataset",
                    "dataset_ids": v.get("datasets") or [],
                    "split": v["split"],
                }
            run = services.steering_create(
                study=study,
                kind=v["kind"],
                constitution=v["constitution_object"],
                constitution_b=v.get("constitution_b_object"),
                prompts=prompts,
                prompt_source=source,
                target={
                    "backend": v["target_backend"],
                    "base_url": v.get("target_base_url", ""),
                    "model": v.get("target_model", ""),
                    "api_key_env": v["target_api_key_env"],
                },
                placement=v["placement"],
                reword=v["reword"],
                max_tokens=v["max_tokens"],
                temperature=v["temperature"],
                seed=v["seed"],
                batch_size=v["batch_size"],
                user=request.user,
            )
        except SteeringError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if v["start"]:
            services.steering_start(run=run)
        return Response(_output(run), status=status.HTTP_201_CREATED)


class _RunView(StudyScopedAPIView):
    def get_run(self) -> SteeringRun:
        return object_for(
            SteeringRun.objects.filter(study=self.get_study()).select_related(
                "constitution", "constitution_b"
            ),
            self.request.user,
            self.kwargs["run_id"],
        )


class SteeringDetailAPI(_RunView):
    """Status, and the report with its per-prompt rows (prompts and both responses)."""

    @extend_schema(responses={200: dict})
    def get(self, request, study_id: int, run_id: int):
        return Response(_output(self.get_run(), rows=True))


class SteeringCancelAPI(_RunView):
    @extend_schema(request=None, responses={200: dict})
    def post(self, request, study_id: int, run_id: int):
        run = self.get_run()
        services.steering_cancel(run=run)
        run.refresh_from_db()
        return Response(_output(run))


class SteeringResumeAPI(_RunView):
    @extend_schema(request=None, responses={202: dict})
    def post(self, request, study_id: int, run_id: int):
        run = self.get_run()
        try:
            services.steering_resume(run=run)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        run.refresh_from_db()
        return Response(_output(run), status=status.HTTP_202_ACCEPTED)


class SteeringCritiqueExportAPI(_RunView):
    """A finished critique run's SFT rows (with the principle behind each revision)."""

    @extend_schema(responses={(200, "application/jsonl"): str})
    def get(self, request, study_id: int, run_id: int):
        run = self.get_run()
        if run.kind != SteeringKind.CRITIQUE:
            raise Http404("Not a critique-and-revision run.")
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in selectors.critique_rows(run))
        response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="critique-{run.pk}.jsonl"'
        return response
