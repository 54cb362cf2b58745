"""URL kwargs for the training-data and steering routes (access tests)."""

from __future__ import annotations

from tests import entry_points


def _constitution(owned):
    from tests.modeling.support import make_constitution

    if "modeling_constitution" not in owned:
        owned["modeling_constitution"] = make_constitution(owned["study"], ["Be kind."])
    return owned["modeling_constitution"]


def _run(owned):
    from gcai.modeling.models import SteeringRun

    if "steering_run" not in owned:
        owned["steering_run"] = SteeringRun.objects.create(
            study=owned["study"],
            constitution=_constitution(owned),
            status="failed",
            config={"prompts": ["q"], "target": {"model": "m"}},
        )
    return owned["steering_run"]


for _name in ("training_export", "training_export_provenance", "api_training_export"):
    entry_points.register(_name)(
        lambda owned: {"study_id": owned["study"].pk, "constitution_id": _constitution(owned).pk}
    )
for _name in ("training_export_file", "api_training_export_file"):
    entry_points.register(_name)(
        lambda owned: {
            "study_id": owned["study"].pk,
            "constitution_id": _constitution(owned).pk,
            "part": "train",
        }
    )
for _name in (
    "steering_detail",
    "steering_cancel",
    "steering_resume",
    "steering_export",
    "api_steering_detail",
    "api_steering_cancel",
    "api_steering_resume",
    "api_steering_critique",
):
    entry_points.register(_name)(
        lambda owned: {"study_id": owned["study"].pk, "run_id": _run(owned).pk}
    )
