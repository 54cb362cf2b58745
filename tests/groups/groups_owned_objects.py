"""URL kwargs for the per-group constitution routes (access tests)."""

from __future__ import annotations

from tests import entry_points


def make_comparison(study, values=("X", "Y")):
    from gcai.groups.models import GroupComparison

    return GroupComparison.objects.create(
        study=study,
        attribute="group",
        methods=["gcai"],
        groups=[{"value": v, "size": study.min_group_size, "members": []} for v in values],
        config={"labels": {v: {} for v in values}},
    )


def _comparison(owned):
    if "group_comparison" not in owned:
        owned["group_comparison"] = make_comparison(owned["study"])
    return owned["group_comparison"]


for _name in (
    "group_comparison_detail",
    "group_comparison_resume",
    "group_comparison_cancel",
    "group_comparison_csv",
    "group_comparison_json",
    "api_group_comparison_report",
):
    entry_points.register(_name)(
        lambda owned: {"study_id": owned["study"].pk, "comparison_id": _comparison(owned).pk}
    )
