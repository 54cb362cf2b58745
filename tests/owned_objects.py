"""Objects in the owner's study used to build URLs for access tests.

Extend ``make_owned_objects`` when a new route needs another kind of object.
"""

from __future__ import annotations

from typing import Any


def make_owned_objects(study, researcher) -> dict[str, Any]:
    return {"study": study, "researcher": researcher}
