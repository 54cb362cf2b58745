"""Evaluations store their batches as artifact rows, like every other job.

Before, each judged batch was written into ``Evaluation.results["batches"][str(i)]`` (the
whole JSON document rewritten under a row lock for every batch). An evaluation that was
queued, running, failed or cancelled mid-way at the upgrade still holds that key: its
batches become ``EvaluationArtifact`` rows of the "judging" stage, so a resume judges
only the missing ones. Plain ORM calls, so PostgreSQL and SQLite behave alike.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

STAGE = "judging"


def batches_to_artifacts(apps, schema_editor):
    Evaluation = apps.get_model("constitutions", "Evaluation")
    EvaluationArtifact = apps.get_model("constitutions", "EvaluationArtifact")
    # Ids first: updating rows while a cursor walks the same table is not portable.
    ids = list(
        Evaluation.objects.filter(results__has_key="batches")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pk in ids:
        evaluation = Evaluation.objects.only("pk", "results").get(pk=pk)
        results = dict(evaluation.results)
        batches = results.pop("batches") or {}
        EvaluationArtifact.objects.bulk_create(
            [
                EvaluationArtifact(
                    evaluation_id=pk,
                    stage=STAGE,
                    batch=int(key),
                    data={"judgements": list(judgements or [])},
                )
                for key, judgements in sorted(batches.items(), key=lambda kv: int(kv[0]))
            ],
            ignore_conflicts=True,
        )
        Evaluation.objects.filter(pk=pk).update(results=results)


def artifacts_to_batches(apps, schema_editor):
    Evaluation = apps.get_model("constitutions", "Evaluation")
    EvaluationArtifact = apps.get_model("constitutions", "EvaluationArtifact")
    # A succeeded evaluation never kept its batches in the old layout; the others get
    # them back so the old code resumes them without judging again.
    rows = (
        EvaluationArtifact.objects.filter(stage=STAGE, batch__gte=0)
        .exclude(evaluation__status="succeeded")
        .order_by("evaluation_id", "batch")
        .values_list("evaluation_id", "batch", "data")
    )
    by_evaluation: dict[int, dict[str, list]] = {}
    for evaluation_id, batch, data in rows:
        by_evaluation.setdefault(evaluation_id, {})[str(batch)] = data.get("judgements", [])
    for pk, batches in by_evaluation.items():
        evaluation = Evaluation.objects.only("pk", "results").get(pk=pk)
        Evaluation.objects.filter(pk=pk).update(
            results={**(evaluation.results or {}), "batches": batches}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("constitutions", "0004_merge_quality_override_and_presets"),
    ]

    operations = [
        migrations.CreateModel(
            name="EvaluationArtifact",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("stage", models.CharField(max_length=60)),
                (
                    "batch",
                    models.IntegerField(default=-1, help_text="-1 for a whole-stage artifact"),
                ),
                ("data", models.JSONField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "evaluation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="artifacts",
                        to="constitutions.evaluation",
                    ),
                ),
            ],
            options={
                "ordering": ["evaluation", "created_at", "stage", "batch"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("evaluation", "stage", "batch"),
                        name="evaluation_artifact_unique_stage_batch",
                    )
                ],
            },
        ),
        migrations.RunPython(batches_to_artifacts, artifacts_to_batches),
    ]
