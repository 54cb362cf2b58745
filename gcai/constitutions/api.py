"""REST API for pipeline runs, their stage artifacts and constitutions.

Every endpoint lives under ``/api/studies/<study_id>/`` and resolves its study through
``StudyScopedAPIView.get_study`` (annotations.access), so strangers get 404.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from annotations.api import StudyScopedAPIView
from gcai.constitutions import run_exports, runs, selectors, services
from gcai.constitutions.models import Constitution, PipelineRun
from gcai.constitutions.serializers import (
    ArtifactSerializer,
    ComparisonInputSerializer,
    ComparisonOutputSerializer,
    ConstitutionDetailSerializer,
    ConstitutionEditInputSerializer,
    ConstitutionEditOutputSerializer,
    ConstitutionOutputSerializer,
    RunCreateInputSerializer,
    RunDetailSerializer,
    RunOutputSerializer,
    RunStatusSerializer,
)

TAG_RUNS = ["runs"]
TAG_CONSTITUTIONS = ["constitutions"]

INPUT_FIELDS = {
    "method",
    "seed",
    "batch_size",
    "max_training_pairs",
    "dataset_ids",
    "icai_method",
}


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


def engine_error(
    exc: ValueError, *, config_field: str = "method_config"
) -> serializers.ValidationError:
    """An engine ``ValueError`` ("setting: message") as a field error where possible."""
    name, sep, rest = str(exc).partition(": ")
    if sep and name in INPUT_FIELDS:
        return serializers.ValidationError({name: [rest]})
    if sep and " " not in name:
        return serializers.ValidationError({config_field: [str(exc)]})
    return serializers.ValidationError({"detail": str(exc)})


class RunScopedAPIView(StudyScopedAPIView):
    """A run of the URL's study; other studies' runs are 404 like the study itself."""

    def get_run(self) -> PipelineRun:
        if not hasattr(self, "_run"):
            study = self.get_study()
            self._run = get_object_or_404(
                PipelineRun.objects.filter(study=study), pk=self.kwargs["run_id"]
            )
            self._run.study = study
        return self._run


class ConstitutionScopedAPIView(StudyScopedAPIView):
    def get_constitution(self) -> Constitution:
        if not hasattr(self, "_constitution"):
            study = self.get_study()
            self._constitution = get_object_or_404(
                Constitution.objects.filter(study=study), pk=self.kwargs["constitution_id"]
            )
            self._constitution.study = study
        return self._constitution


# --------------------------------------------------------------------------- runs


class RunListCreateAPI(StudyScopedAPIView, generics.ListAPIView):
    """List a study's runs (newest first) or create one and queue it."""

    serializer_class = RunOutputSerializer

    def get_queryset(self):
        return selectors.run_list(study=self.get_study())

    @extend_schema(tags=TAG_RUNS, summary="List the study's pipeline runs")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAG_RUNS,
        summary="Create a run (and queue it unless start=false)",
        request=RunCreateInputSerializer,
        responses={201: RunOutputSerializer},
    )
    def post(self, request, study_id: int):
        study = self.get_study()
        data = RunCreateInputSerializer(data=request.data, context={"study": study})
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        start = values.pop("start")
        try:
            with transaction.atomic():
                run = runs.run_create(study=study, user=request.user, **values)
                if start:
                    runs.run_start(run=run)
        except ValueError as exc:
            raise engine_error(exc) from None
        return Response(RunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class RunComparisonCreateAPI(StudyScopedAPIView):
    @extend_schema(
        tags=TAG_RUNS,
        summary="Build GCAI and an ICAI baseline on the same training pairs, both queued",
        request=ComparisonInputSerializer,
        responses={201: ComparisonOutputSerializer},
    )
    def post(self, request, study_id: int):
        study = self.get_study()
        data = ComparisonInputSerializer(data=request.data, context={"study": study})
        data.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                gcai_run, icai_run = runs.runs_create_comparison(
                    study=study, user=request.user, **data.validated_data
                )
                runs.run_start(run=gcai_run)
                runs.run_start(run=icai_run)
        except ValueError as exc:
            raise engine_error(exc, config_field="detail") from None
        gcai_pairs = set(gcai_run.training_pairs.values_list("pk", flat=True))
        icai_pairs = set(icai_run.training_pairs.values_list("pk", flat=True))
        payload = {
            "comparison_group": gcai_run.comparison_group,
            "same_training_pairs": gcai_pairs == icai_pairs,
            "n_training_pairs": len(gcai_pairs),
            "gcai": gcai_run,
            "icai": icai_run,
        }
        return Response(ComparisonOutputSerializer(payload).data, status=status.HTTP_201_CREATED)


class RunDetailAPI(RunScopedAPIView):
    @extend_schema(
        tags=TAG_RUNS, summary="A run with its settings and stages", responses=RunDetailSerializer
    )
    def get(self, request, study_id: int, run_id: int):
        return Response(RunDetailSerializer(self.get_run()).data)


class RunStatusAPI(RunScopedAPIView):
    @extend_schema(
        tags=TAG_RUNS,
        summary="Status, progress and LLM usage (polled by the run page)",
        responses=RunStatusSerializer,
    )
    def get(self, request, study_id: int, run_id: int):
        run = (
            PipelineRun.objects.filter(pk=self.get_run().pk)
            .annotate(n_stored_stages=Count("artifacts", filter=Q(artifacts__batch=-1)))
            .get()
        )
        return Response(RunStatusSerializer(run).data)


class RunCancelAPI(RunScopedAPIView):
    @extend_schema(
        tags=TAG_RUNS,
        summary="Cancel a queued or running run",
        request=None,
        responses={202: RunStatusSerializer, 409: DetailSerializer},
    )
    def post(self, request, study_id: int, run_id: int):
        run = self.get_run()
        if not run.is_active:
            return Response(
                {"detail": "Only a queued or running run can be cancelled."},
                status=status.HTTP_409_CONFLICT,
            )
        runs.run_cancel(run=run)
        run.refresh_from_db()
        return Response(RunStatusSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunResumeAPI(RunScopedAPIView):
    @extend_schema(
        tags=TAG_RUNS,
        summary="Resume a failed, cancelled or stalled run from its last stored stage",
        request=None,
        responses={202: RunStatusSerializer, 409: DetailSerializer},
    )
    def post(self, request, study_id: int, run_id: int):
        run = self.get_run()
        try:
            runs.run_resume(run=run)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        run.refresh_from_db()
        return Response(RunStatusSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunArtifactListAPI(RunScopedAPIView):
    @extend_schema(
        tags=TAG_RUNS,
        summary="Stored stage artifacts of a run (without their data)",
        responses=ArtifactSerializer(many=True),
    )
    def get(self, request, study_id: int, run_id: int):
        run = self.get_run()
        rows = run_exports.artifact_list(run=run)
        for row in rows:
            url = reverse(
                "api_run_artifact_detail",
                kwargs={"study_id": run.study_id, "run_id": run.pk, "stage": row["stage"]},
            )
            row["url"] = url if row["batch"] < 0 else f"{url}?batch={row['batch']}"
        return Response(ArtifactSerializer(rows, many=True).data)


class RunArtifactDetailAPI(RunScopedAPIView):
    @extend_schema(
        tags=TAG_RUNS,
        summary="One stage artifact with its data (streamed)",
        parameters=[
            OpenApiParameter(
                "batch", int, description="A batch number; default -1, the merged output."
            )
        ],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="{run, method, title, artifacts: [{stage, batch, created_at, data}]}",
            )
        },
    )
    def get(self, request, study_id: int, run_id: int, stage: str):
        run = self.get_run()
        try:
            batch = int(request.query_params.get("batch", -1))
        except ValueError:
            raise Http404("No such batch.") from None
        chunks = run_exports.stage_artifact_stream(run=run, stage=stage, batch=batch)
        if chunks is None:
            raise Http404("This stage has no stored output.")
        # Streamed as stored: big artifacts are never decoded and re-encoded in memory.
        return StreamingHttpResponse(chunks, content_type="application/json")


# --------------------------------------------------------------------------- constitutions


class ConstitutionListAPI(StudyScopedAPIView, generics.ListAPIView):
    serializer_class = ConstitutionOutputSerializer

    def get_queryset(self):
        return selectors.constitution_list(study=self.get_study())

    @extend_schema(tags=TAG_CONSTITUTIONS, summary="List the study's constitutions (all versions)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ConstitutionDetailAPI(ConstitutionScopedAPIView):
    @extend_schema(
        tags=TAG_CONSTITUTIONS,
        summary="A constitution with its ordered principles and evidence ids",
        responses=ConstitutionDetailSerializer,
    )
    def get(self, request, study_id: int, constitution_id: int):
        return Response(ConstitutionDetailSerializer(self.get_constitution()).data)


class ConstitutionVersionCreateAPI(ConstitutionScopedAPIView):
    @extend_schema(
        tags=TAG_CONSTITUTIONS,
        summary="Edit wording, order and membership (a published version gets a new draft)",
        request=ConstitutionEditInputSerializer,
        responses={
            200: ConstitutionEditOutputSerializer,
            201: ConstitutionEditOutputSerializer,
            400: DetailSerializer,
        },
    )
    def post(self, request, study_id: int, constitution_id: int):
        constitution = self.get_constitution()
        data = ConstitutionEditInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            target = services.constitution_new_version(
                constitution=constitution,
                items=[dict(item) for item in data.validated_data["items"]],
                user=request.user,
                title=data.validated_data.get("title"),
            )
        except services.ConstitutionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        created = target.pk != constitution.pk
        target = Constitution.objects.get(pk=target.pk)
        payload = {"created": created, "constitution": target}
        return Response(
            ConstitutionEditOutputSerializer(payload).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class PublishInputSerializer(serializers.Serializer):
    override = serializers.BooleanField(
        default=False,
        help_text="Publish although the quality check flagged principles (recorded).",
    )


class ConstitutionPublishAPI(ConstitutionScopedAPIView):
    @extend_schema(
        tags=TAG_CONSTITUTIONS,
        summary="Publish a draft (it becomes immutable)",
        description=(
            "Runs the quality check first: principles that are not one well-formed sentence, "
            "duplicates and principles without evidence refuse publication with 400 and a "
            "`flags` list, unless `override` is true (the override is recorded)."
        ),
        request=PublishInputSerializer,
        responses={200: ConstitutionOutputSerializer, 400: DetailSerializer},
    )
    def post(self, request, study_id: int, constitution_id: int):
        data = PublishInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            constitution = services.constitution_publish(
                constitution=self.get_constitution(),
                override=data.validated_data["override"],
                user=request.user,
            )
        except services.QualityGateError as exc:
            return Response(
                {"detail": str(exc), "flags": exc.flags}, status=status.HTTP_400_BAD_REQUEST
            )
        except services.ConstitutionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ConstitutionOutputSerializer(constitution).data)
