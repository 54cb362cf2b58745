"""URL kwargs for annotation routes that take ids besides study_id (access tests)."""

from __future__ import annotations

from tests import entry_points
from tests.factories import StatementFactory


@entry_points.register("api_statement_moderate")
def _statement(owned):
    statement = StatementFactory(study=owned["study"], moderation="pending")
    return {"study_id": owned["study"].pk, "statement_id": statement.pk}
