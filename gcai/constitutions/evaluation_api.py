"""REST API for evaluations: create (one, or a comparison with baselines), status,
results, exports, cancel and resume. Every endpoint is under its study, resolved by
``StudyScopedAPIView`` so strangers get 404."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from annotations.api import StudyScopedAPIView
from gcai.constitutions import evaluation_reports, evaluation_views, evaluations
from gcai.constitutions.evaluations import EvaluationError
from gcai.constitutions.labels import DEFAULT_TIE_POLICY, TIE_POLICIES
from gcai.constitutions.models import Constitution, Evaluation, EvaluationKind
from gcai.core.stats import MIN_N_PAIRS, small_sample_warning

# --------------------------------------------------------------------------- serializers


class EvaluationCreateInputSerializer(serializers.Serializer):
    """One evaluation (``constitution`` or a baseline ``kind``), or a comparison:
    ``constitutions`` and/or ``baselines`` give one evaluation per constitution plus the
    two baselines, on the same pairs with the same judge."""

    kind = serializers.ChoiceField(
        choices=EvaluationKind.choices, default=EvaluationKind.CONSTITUTION
    )
    constitution = serializers.IntegerField(required=False)
    constitutions = serializers.ListField(child=serializers.IntegerField(), required=False)
    baselines = serializers.BooleanField(default=False)
    split = serializers.ChoiceField(choices=evaluations.SPLITS, default="test")
    limit = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    seed = serializers.IntegerField(default=0)
    orthogonal_principles = serializers.ListField(
        child=serializers.CharField(max_length=1000), required=False, allow_empty=False
    )
    ground_truth = serializers.ListField(
        child=serializers.CharField(max_length=1000), required=False
    )
    ground_truth_constitution = serializers.IntegerField(required=False)
    llm_similarity = serializers.BooleanField(default=False)
    principle_analysis = serializers.BooleanField(default=True)
    allow_abstain = serializers.BooleanField(
        default=False,
        help_text="Let the judge answer 'none'; adds strict agreement, coverage and abstention "
        "to the forced-choice headline.",
    )
    ties = serializers.ChoiceField(
        choices=TIE_POLICIES,
        default=DEFAULT_TIE_POLICY,
        help_text="Tied or split-annotator pairs: 'exclude' (as the reference) or keep as 'tie'.",
    )
    batch_size = serializers.IntegerField(
        default=evaluations.DEFAULT_BATCH_SIZE, min_value=1, max_value=1000
    )
    start = serializers.BooleanField(default=True, help_text="Queue the work at once.")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        study = self.context["study"]
        ids = [*data.get("constitutions", [])]
        if "constitution" in data:
            ids.append(data["constitution"])
        if data.get("ground_truth_constitution") is not None:
            ids.append(data["ground_truth_constitution"])
        found = {c.pk: c for c in Constitution.objects.filter(study=study, pk__in=ids)}
        missing = sorted(set(ids) - set(found))
        if missing:
            raise serializers.ValidationError(
                {"constitution": f"No constitution {missing[0]} in this study."}
            )
        data["constitution_objects"] = [found[pk] for pk in data.get("constitutions", [])]
        if "constitution" in data:
            data["constitution_object"] = found[data["constitution"]]
        if data.get("ground_truth_constitution") is not None:
            data["ground_truth"] = [
                item.text
                for item in found[data["ground_truth_constitution"]].items.order_by("position")
            ]
        return data


class EstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    lo = serializers.FloatField(allow_null=True)
    hi = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()
    k = serializers.FloatField(allow_null=True)
    method = serializers.CharField()
    confidence = serializers.FloatField()


class EvaluationOutputSerializer(serializers.Serializer):
    """An evaluation's identity, settings, status and headline metrics."""

    id = serializers.IntegerField()
    target = serializers.CharField()
    kind = serializers.CharField()
    constitution = serializers.IntegerField(allow_null=True)
    split = serializers.CharField()
    held_out = serializers.BooleanField()
    comparison_group = serializers.CharField()
    status = serializers.CharField()
    stage = serializers.CharField()
    progress_done = serializers.IntegerField()
    progress_total = serializers.IntegerField()
    error = serializers.CharField()
    llm_model = serializers.CharField()
    llm_calls = serializers.IntegerField()
    llm_cached_calls = serializers.IntegerField()
    cost_usd = serializers.FloatField()
    created_at = serializers.CharField()
    finished_at = serializers.CharField(allow_null=True)
    n_scored = serializers.IntegerField(allow_null=True)
    warning = serializers.CharField(
        help_text="Set when too few pairs were scored to draw a conclusion."
    )
    accuracy = EstimateSerializer(allow_null=True)
    kappa = EstimateSerializer(allow_null=True)
    similarity = serializers.FloatField(allow_null=True)


def _output(evaluation: Evaluation) -> dict[str, Any]:
    row = evaluation_reports.evaluation_row(evaluation)
    metrics = row["metrics"] or {}
    state = evaluation_reports.evaluation_status(evaluation)
    return {
        "id": evaluation.pk,
        "target": row["target"],
        "kind": evaluation.kind,
        "constitution": evaluation.constitution_id,
        "split": evaluation.split,
        "held_out": evaluation.split == "test",
        "comparison_group": evaluation.comparison_group,
        **{
            k: state[k]
            for k in (
                "status",
                "stage",
                "progress_done",
                "progress_total",
                "error",
                "llm_model",
                "llm_calls",
                "llm_cached_calls",
                "cost_usd",
                "finished_at",
            )
        },
        "created_at": evaluation.created_at.isoformat(),
        "n_scored": metrics.get("n_scored"),
        "warning": small_sample_warning(metrics.get("n_scored"), MIN_N_PAIRS, "scored pairs")
        if metrics
        else "",
        "accuracy": metrics.get("accuracy"),
        "kappa": metrics.get("kappa"),
        "similarity": row["similarity"],
    }


class EvaluationCreatedSerializer(serializers.Serializer):
    comparison_group = serializers.CharField()
    evaluations = EvaluationOutputSerializer(many=True)


class EvaluationResultsSerializer(serializers.Serializer):
    evaluation = serializers.DictField()
    status = serializers.DictField()
    results = serializers.DictField()


class ComparisonSerializer(serializers.Serializer):
    comparison_group = serializers.CharField()
    evaluations = EvaluationOutputSerializer(many=True)
    table = serializers.ListField(child=serializers.ListField())
    differences = serializers.ListField(child=serializers.DictField())


# --------------------------------------------------------------------------- views


class _EvaluationAPIView(StudyScopedAPIView):
    def get_evaluation(self, *, full: bool = False) -> Evaluation:
        queryset = Evaluation.objects.filter(study=self.get_study()).select_related("constitution")
        if not full:
            queryset = evaluation_reports.evaluations_summarised(queryset)
        try:
            return queryset.get(pk=self.kwargs["evaluation_id"])
        except Evaluation.DoesNotExist:
            raise Http404("No such evaluation.") from None


class EvaluationListCreateAPI(StudyScopedAPIView):
    @extend_schema(responses=EvaluationOutputSerializer(many=True))
    def get(self, request, study_id: int):
        queryset = evaluation_reports.evaluations_for_study(study=self.get_study())
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        data = EvaluationOutputSerializer([_output(e) for e in page], many=True).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        request=EvaluationCreateInputSerializer, responses={201: EvaluationCreatedSerializer}
    )
    def post(self, request, study_id: int):
        study = self.get_study()
        data = EvaluationCreateInputSerializer(data=request.data, context={"study": study})
        data.is_valid(raise_exception=True)
        v = data.validated_data
        options = {
            "user": request.user,
            "orthogonal_principles": v.get("orthogonal_principles"),
            "ground_truth": v.get("ground_truth"),
            "llm_similarity": v["llm_similarity"],
            "principle_analysis": v["principle_analysis"],
            "allow_abstain": v["allow_abstain"],
            "ties": v["ties"],
            "batch_size": v["batch_size"],
        }
        common = {"study": study, "split": v["split"], "limit": v.get("limit"), "seed": v["seed"]}
        try:
            if v["constitution_objects"] or v["baselines"]:
                subjects = list(v["constitution_objects"])
                if "constitution_object" in v:
                    subjects.insert(0, v["constitution_object"])
                created = evaluations.evaluations_create_comparison(
                    constitutions=subjects, baselines=v["baselines"], **common, **options
                )
            else:
                created = [
                    evaluations.evaluation_create(
                        kind=v["kind"],
                        constitution=v.get("constitution_object"),
                        **common,
                        **options,
                    )
                ]
        except EvaluationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if v["start"]:
            for evaluation in created:
                evaluations.evaluation_start(evaluation=evaluation)
        payload = {
            "comparison_group": created[0].comparison_group,
            "evaluations": [_output(e) for e in created],
        }
        return Response(EvaluationCreatedSerializer(payload).data, status=status.HTTP_201_CREATED)


class EvaluationDetailAPI(_EvaluationAPIView):
    @extend_schema(responses=EvaluationOutputSerializer)
    def get(self, request, study_id: int, evaluation_id: int):
        return Response(EvaluationOutputSerializer(_output(self.get_evaluation())).data)


class EvaluationResultsAPI(_EvaluationAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "judgements", bool, description="Include the per-pair judgements (1 or 0)."
            )
        ],
        responses=EvaluationResultsSerializer,
    )
    def get(self, request, study_id: int, evaluation_id: int):
        evaluation = self.get_evaluation(full=True)
        document = evaluation_reports.evaluation_export_document(evaluation=evaluation)
        if request.query_params.get("judgements") not in ("1", "true", "yes"):
            document["results"].pop("judgements", None)
        return Response(document)


class EvaluationExportCsvAPI(_EvaluationAPIView):
    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, study_id: int, evaluation_id: int):
        return evaluation_views.evaluation_csv_response(self.get_evaluation(full=True))


class EvaluationExportJsonAPI(_EvaluationAPIView):
    @extend_schema(responses=EvaluationResultsSerializer)
    def get(self, request, study_id: int, evaluation_id: int):
        return evaluation_views.evaluation_json_response(self.get_evaluation(full=True))


class EvaluationCancelAPI(_EvaluationAPIView):
    @extend_schema(request=None, responses=EvaluationOutputSerializer)
    def post(self, request, study_id: int, evaluation_id: int):
        evaluations.evaluation_cancel(evaluation=self.get_evaluation())
        return Response(EvaluationOutputSerializer(_output(self.get_evaluation())).data)


class EvaluationResumeAPI(_EvaluationAPIView):
    @extend_schema(request=None, responses={202: EvaluationOutputSerializer})
    def post(self, request, study_id: int, evaluation_id: int):
        try:
            evaluations.evaluation_resume(evaluation=self.get_evaluation())
        except EvaluationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(
            EvaluationOutputSerializer(_output(self.get_evaluation())).data,
            status=status.HTTP_202_ACCEPTED,
        )


class EvaluationComparisonAPI(StudyScopedAPIView):
    @extend_schema(responses=ComparisonSerializer)
    def get(self, request, study_id: int, group: str):
        rows = evaluation_reports.evaluations_in_group(study=self.get_study(), group=group)
        if not rows:
            raise Http404("No such comparison.")
        payload = {
            "comparison_group": group,
            "evaluations": [_output(e) for e in rows],
            "table": evaluation_reports.comparison_csv_rows(rows),
            "differences": evaluation_reports.comparison_differences(rows),
        }
        return Response(ComparisonSerializer(payload).data)
