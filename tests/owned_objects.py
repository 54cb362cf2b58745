"""Objects in the owner's study used to build URLs for access tests.

Extend ``make_owned_objects`` when a new route needs another kind of object.
"""

from __future__ import annotations

from typing import Any


def make_owned_objects(study, researcher) -> dict[str, Any]:
    from tests.constitutions.constitutions_owned_objects import make_constitution_objects

    owned: dict[str, Any] = {"study": study, "researcher": researcher}
    owned.update(make_constitution_objects(study, researcher))
    return owned
