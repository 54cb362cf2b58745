"""Input and output serializers for the runs and constitutions API.

Inputs validate and shape; the engine (:mod:`gcai.constitutions.runs`) and the services
save. Outputs never include people's identities: evidence is ids only.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations.api import DatabaseIdField
from gcai.constitutions import selectors
from gcai.constitutions.labels import DEFAULT_TIE_POLICY, TIE_POLICIES
from gcai.constitutions.models import Constitution, Method, PipelineRun
from gcai.constitutions.run_progress import run_overall
from gcai.core import presets
from gcai.jobs.stages import DEFAULT_BATCH_SIZE

ICAI_METHODS = [m.value for m in Method if m != Method.GCAI]


# --------------------------------------------------------------------------- runs


class RunProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(source="progress_done")
    total = serializers.IntegerField(source="progress_total")
    percent = serializers.IntegerField(source="progress_percent")


class RunUsageSerializer(serializers.Serializer):
    calls = serializers.IntegerField(source="llm_calls", help_text="LLM calls actually made.")
    cached_calls = serializers.IntegerField(
        source="llm_cached_calls", help_text="Answered from the response cache (free)."
    )
    errors = serializers.IntegerField(source="llm_errors")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=6)
    model = serializers.CharField(source="llm_model")


class StageStateSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    state = serializers.ChoiceField(choices=["done", "running", "stopped", "waiting"])
    state_label = serializers.CharField()
    batches_stored = serializers.IntegerField()


class RunOverallSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    count = serializers.IntegerField()
    text = serializers.CharField()
    stages = StageStateSerializer(many=True)


class RunStatusSerializer(serializers.Serializer):
    """What the run page polls: small and cheap."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    status_label = serializers.CharField(source="get_status_display")
    is_active = serializers.BooleanField()
    cancel_requested = serializers.BooleanField()
    stage = serializers.CharField()
    stage_title = serializers.SerializerMethodField()
    progress = RunProgressSerializer(source="*")
    usage = RunUsageSerializer(source="*")
    error = serializers.CharField()
    stored_stages = serializers.SerializerMethodField(
        help_text="Stages whose merged output is stored."
    )
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    overall = serializers.SerializerMethodField(
        help_text='Which stage of how many ("Stage 3 of 10") and each stage\'s state.'
    )

    def get_stage_title(self, run: PipelineRun) -> str:
        return selectors.stage_title(run.stage)

    @extend_schema_field(RunOverallSerializer)
    def get_overall(self, run: PipelineRun) -> dict:
        return run_overall(run=run, stages=selectors.run_stages_list(run=run))

    def get_stored_stages(self, run: PipelineRun) -> int:
        stored = getattr(run, "n_stored_stages", None)
        return stored if stored is not None else selectors.run_stored_stage_count(run=run)


class RunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.IntegerField(source="study_id")
    title = serializers.CharField()
    method = serializers.CharField()
    method_label = serializers.CharField(source="get_method_display")
    preset_version = serializers.SerializerMethodField()
    status = serializers.CharField()
    is_active = serializers.BooleanField()
    cancel_requested = serializers.BooleanField()
    stage = serializers.CharField()
    stage_title = serializers.SerializerMethodField()
    progress = RunProgressSerializer(source="*")
    usage = RunUsageSerializer(source="*")
    error = serializers.CharField()
    seed = serializers.IntegerField()
    comparison_group = serializers.CharField()
    n_training_pairs = serializers.SerializerMethodField()
    constitution_ids = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    html_url = serializers.SerializerMethodField()

    def get_stage_title(self, run: PipelineRun) -> str:
        return selectors.stage_title(run.stage)

    def get_preset_version(self, run: PipelineRun) -> int:
        """The version of the method's preset the run used (0: made before presets)."""
        return int((run.config or {}).get("preset_version") or 0)

    def get_n_training_pairs(self, run: PipelineRun) -> int:
        annotated = getattr(run, "n_training_pairs", None)
        return annotated if annotated is not None else run.training_pairs.count()

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_constitution_ids(self, run: PipelineRun) -> list[int]:
        # Reads the prefetched list (selectors.run_list) instead of a query per run.
        return [c.pk for c in run.constitutions.all()]

    def get_html_url(self, run: PipelineRun) -> str:
        return reverse("run_detail", kwargs={"study_id": run.study_id, "run_id": run.pk})


class StageSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField()
    stream = serializers.CharField()
    batched = serializers.BooleanField()
    stored = serializers.BooleanField()
    batches_stored = serializers.IntegerField()
    stored_at = serializers.DateTimeField(allow_null=True)


class RunDetailSerializer(RunOutputSerializer):
    config = serializers.SerializerMethodField()
    stages = serializers.SerializerMethodField()
    training_pair_ids = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField())
    def get_config(self, run: PipelineRun) -> dict[str, Any]:
        shown = selectors.run_config_display(run=run)
        return {**shown["run"], "method_config": shown["method"]}

    @extend_schema_field(StageSerializer(many=True))
    def get_stages(self, run: PipelineRun) -> list[dict[str, Any]]:
        return StageSerializer(selectors.run_stages_list(run=run), many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_training_pair_ids(self, run: PipelineRun) -> list[int]:
        return sorted(run.training_pairs.values_list("pk", flat=True))


def _check_dataset_ids(ids: list[int], study: Any) -> list[int]:
    ids = sorted(set(ids))
    if ids:
        found = set(study.datasets.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise serializers.ValidationError(f"No dataset {missing[0]} in this study.")
    return ids


def _check_method_config(method: str, seed: int, config: dict[str, Any]) -> None:
    """The engine's own validation, so a bad setting is reported before anything is saved."""
    try:
        presets.resolve(method, config, seed=seed)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from None


class RunCreateInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(
        choices=Method.choices,
        help_text="A preset named after its publication (settings and sources: docs/methods.md).",
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(min_value=0, default=0)
    method_config = serializers.DictField(
        required=False,
        default=dict,
        help_text=(
            "Deviations from the preset (e.g. num_clusters, max_principles, representative); "
            "recorded with the run."
        ),
    )
    dataset_ids = serializers.ListField(child=DatabaseIdField(), required=False, default=list)
    max_training_pairs = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    batch_size = serializers.IntegerField(min_value=1, max_value=1000, default=DEFAULT_BATCH_SIZE)
    publish = serializers.BooleanField(
        default=False, help_text="Publish the constitution when the run succeeds."
    )
    ties = serializers.ChoiceField(
        choices=TIE_POLICIES,
        default=DEFAULT_TIE_POLICY,
        help_text="Tied or split-annotator training pairs: 'exclude' (as the reference) or "
        "keep as 'tie'. Recorded with the run.",
    )
    start = serializers.BooleanField(default=True, help_text="Queue the run at once.")

    def validate_dataset_ids(self, value: list[int]) -> list[int]:
        return _check_dataset_ids(value, self.context["study"])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            _check_method_config(attrs["method"], attrs["seed"], attrs["method_config"])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"method_config": exc.detail}) from None
        return attrs


class ComparisonInputSerializer(serializers.Serializer):
    icai_method = serializers.ChoiceField(choices=ICAI_METHODS, default=Method.ICAI)
    seed = serializers.IntegerField(min_value=0, default=0)
    gcai_config = serializers.DictField(required=False, default=dict)
    icai_config = serializers.DictField(required=False, default=dict)
    dataset_ids = serializers.ListField(child=DatabaseIdField(), required=False, default=list)
    max_training_pairs = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    batch_size = serializers.IntegerField(min_value=1, max_value=1000, default=DEFAULT_BATCH_SIZE)
    publish = serializers.BooleanField(default=False)
    ties = serializers.ChoiceField(choices=TIE_POLICIES, default=DEFAULT_TIE_POLICY)

    def validate_dataset_ids(self, value: list[int]) -> list[int]:
        return _check_dataset_ids(value, self.context["study"])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = {}
        for key, method in (("gcai_config", Method.GCAI), ("icai_config", attrs["icai_method"])):
            try:
                _check_method_config(method, attrs["seed"], attrs[key])
            except serializers.ValidationError as exc:
                errors[key] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ComparisonOutputSerializer(serializers.Serializer):
    comparison_group = serializers.CharField()
    same_training_pairs = serializers.BooleanField()
    n_training_pairs = serializers.IntegerField()
    gcai = RunOutputSerializer()
    icai = RunOutputSerializer()


class ArtifactSerializer(serializers.Serializer):
    stage = serializers.CharField()
    stage_title = serializers.CharField()
    kind = serializers.CharField()
    batch = serializers.IntegerField(help_text="-1 for the merged stage output.")
    created_at = serializers.DateTimeField()
    url = serializers.CharField()


# --------------------------------------------------------------------------- constitutions


class ConstitutionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.IntegerField(source="study_id")
    title = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    method = serializers.CharField()
    run = serializers.IntegerField(source="run_id", allow_null=True)
    previous = serializers.IntegerField(source="previous_id", allow_null=True)
    n_principles = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)
    html_url = serializers.SerializerMethodField()

    def get_n_principles(self, constitution: Constitution) -> int:
        annotated = getattr(constitution, "n_principles", None)
        return annotated if annotated is not None else constitution.items.count()

    def get_html_url(self, constitution: Constitution) -> str:
        return reverse(
            "constitution_detail",
            kwargs={"study_id": constitution.study_id, "constitution_id": constitution.pk},
        )


class EvidenceIdsSerializer(serializers.Serializer):
    annotation_ids = serializers.ListField(child=serializers.IntegerField())
    statement_ids = serializers.ListField(child=serializers.IntegerField())
    pair_ids = serializers.ListField(child=serializers.IntegerField())
    participants = serializers.ListField(
        child=serializers.CharField(), help_text="Pseudonyms of the people behind it."
    )


class ConstitutionItemOutputSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    text = serializers.CharField()
    principle_id = serializers.IntegerField()
    original_text = serializers.CharField()
    origin = serializers.CharField()
    stats = serializers.DictField()
    evidence = EvidenceIdsSerializer()


class ConstitutionDetailSerializer(ConstitutionOutputSerializer):
    principles = serializers.SerializerMethodField()
    next_version_ids = serializers.SerializerMethodField()

    @extend_schema_field(ConstitutionItemOutputSerializer(many=True))
    def get_principles(self, constitution: Constitution) -> list[dict[str, Any]]:
        items = selectors.constitution_items(constitution=constitution)
        ids = selectors.principle_evidence_ids(principle_ids=[i.principle_id for i in items])
        rows = []
        for item in items:
            p = item.principle
            stats = dict(p.stats or {})
            participants = stats.pop("participants", [])
            rows.append(
                {
                    "position": item.position,
                    "text": item.text,
                    "principle_id": p.pk,
                    "original_text": p.text,
                    "origin": p.origin,
                    "stats": stats,
                    "evidence": {
                        "annotation_ids": ids[p.pk]["annotations"],
                        "statement_ids": ids[p.pk]["statements"],
                        "pair_ids": ids[p.pk]["pairs"],
                        "participants": participants,
                    },
                }
            )
        return ConstitutionItemOutputSerializer(rows, many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_next_version_ids(self, constitution: Constitution) -> list[int]:
        return sorted(constitution.next_versions.values_list("pk", flat=True))


class ConstitutionItemInputSerializer(serializers.Serializer):
    principle = serializers.IntegerField(help_text="Id of a principle already in the version.")
    text = serializers.CharField(max_length=1000)


class ConstitutionEditInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    items = ConstitutionItemInputSerializer(
        many=True, help_text="The new ordered list; principles left out are dropped."
    )


class ConstitutionEditOutputSerializer(serializers.Serializer):
    created = serializers.BooleanField(
        help_text="True when a published version was edited into a new draft version."
    )
    constitution = ConstitutionDetailSerializer()
