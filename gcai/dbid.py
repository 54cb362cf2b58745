"""Ids as the database can hold them: positive 64-bit integers.

A URL such as ``/api/studies/2/statements/99999999999999999999999/`` or a request body
with ``"ids": [99999999999999999999999]`` must be a 404 or a 400, never a 500 because
the database driver cannot bind the number (SQLite raises ``OverflowError``; others
fail in other ways). URL routes use the ``id`` converter (registered by
``annotations.apps``), request bodies ``annotations.api.DatabaseIdField`` or ``is_db_id``.
"""

from __future__ import annotations

from typing import Any

# BigAutoField's range (DEFAULT_AUTO_FIELD): PostgreSQL bigint and SQLite INTEGER.
MAX_DB_ID = 2**63 - 1


def is_db_id(value: Any) -> bool:
    """True for an int (not a bool) that can be a primary key: 1 .. 2**63-1."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DB_ID


class DatabaseIdConverter:
    """``<id:name>``: like ``<id:name>`` but only numbers a primary key can be, so a
    longer number simply matches no route (404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 0 <= number <= MAX_DB_ID:
            raise ValueError(f"{value} is out of the database's id range")
        return number

    def to_url(self, value: Any) -> str:
        return str(value)
