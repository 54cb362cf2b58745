"""Registry of URL routes that take object ids besides ``study_id``.

tests/test_entry_points.py checks EVERY named route: routes whose only id is
``study_id`` are tested automatically; any other route must appear here with a function
that builds its kwargs from objects in the owner's study (``owned`` fixture dict), or be
listed in PUBLIC (participant links, login, health) with the reason it is public.
A new route that is neither makes the test fail, so no entry point goes untested.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# name -> function(owned: dict[str, Any]) -> url kwargs
OBJECT_ROUTES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

# Routes reachable without an account (participants enter with unguessable tokens).
PUBLIC: dict[str, str] = {
    "login": "login page",
    "logout": "logout",
    "healthz": "health check for load balancers",
    "api_token": "token endpoint (credentials required)",
    "api_schema": "OpenAPI schema; researchers only (tests/test_api_docs.py)",
    "api_docs": "API documentation; researchers only (tests/test_api_docs.py)",
    "participant_entry": "participant entry link; study's shared entry token, no data shown",
    "participant_consent": "participant page; who they are comes only from their session",
    "participant_statements": "participant page; who they are comes only from their session",
    "participant_votes": "participant page; who they are comes only from their session",
    "participant_about": "participant page; who they are comes only from their session",
    "participant_done": "participant page; who they are comes only from their session",
    "participant_finish": "Prolific completion redirect; participant from their session",
    "api_participant_statements": "participant API; session-identified, CSRF, throttled",
    "api_participant_votes": "participant API; session-identified, CSRF, throttled",
    "api_participant_about": "participant API; session-identified, CSRF, throttled",
}

# Routes for any logged-in user that are not about one study (list only own data).
PERSONAL: dict[str, str] = {
    "home": "lists the user's own studies",
    "study_create": "creates a study owned by the user",
    "api_studies": "lists the user's own studies",
    "methods": "docs/methods.md, the same for everyone: describes the code, no study data",
}


def register(name: str):
    def deco(fn):
        OBJECT_ROUTES[name] = fn
        return fn

    return deco
