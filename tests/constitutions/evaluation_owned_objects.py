"""URL kwargs for evaluation routes that take ids besides study_id (access tests)."""

from __future__ import annotations

from tests import entry_points


def _evaluation(owned):
    """One evaluation in the owner's study, created once per test."""
    from gcai.constitutions.models import Evaluation

    if "evaluation" not in owned:
        owned["evaluation"] = Evaluation.objects.create(
            study=owned["study"], kind="no_constitution", comparison_group="owned-group"
        )
    return owned["evaluation"]


_ONE = (
    "evaluation_detail",
    "evaluation_status",
    "evaluation_cancel",
    "evaluation_resume",
    "evaluation_export_csv",
    "evaluation_export_json",
    "api_evaluation_detail",
    "api_evaluation_results",
    "api_evaluation_export_csv",
    "api_evaluation_export_json",
    "api_evaluation_cancel",
    "api_evaluation_resume",
)
_GROUP = ("evaluation_compare", "evaluation_compare_csv", "api_evaluation_comparison")

for _name in _ONE:
    entry_points.register(_name)(
        lambda owned: {"study_id": owned["study"].pk, "evaluation_id": _evaluation(owned).pk}
    )
for _name in _GROUP:
    entry_points.register(_name)(
        lambda owned: {"study_id": owned["study"].pk, "group": _evaluation(owned).comparison_group}
    )
