"""A long-lived, signed per-browser cookie: binds a participant to the browser that
created them, and holds an open (anonymous) study to one participation per browser.

The session alone is not enough: it can be flushed or expire while the browser (and
the person) stays the same. The cookie carries a random id; participants store only a
hash of it, scoped per flow, so the statements collection and each survey keep their
own participations and the database never holds the cookie itself.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings

# Neutral name: participants of a blinded survey see cookie names too.
COOKIE_NAME = "browser"
_SALT = "participant-browser"
_MAX_AGE = 365 * 24 * 3600
_ATTR = "_gcai_browser_id"
_NEW_ATTR = "_gcai_browser_new"


def browser_id(request) -> str:
    """This browser's id: from its signed cookie, or a new one (sent by
    :func:`remember_browser` on the response)."""
    cached = getattr(request, _ATTR, None)
    if cached:
        return cached
    value = request.get_signed_cookie(COOKIE_NAME, default=None, salt=_SALT)
    if not value:
        value = secrets.token_urlsafe(24)
        setattr(request, _NEW_ATTR, True)
    setattr(request, _ATTR, value)
    return value


def browser_key(request, scope: str) -> str:
    """The hash stored on a participant for this browser and flow (``scope``)."""
    return hashlib.sha256(f"{scope}:{browser_id(request)}".encode()).hexdigest()


def remember_browser(request, response):
    """Send the cookie when this request created the browser id; returns ``response``."""
    if getattr(request, _NEW_ATTR, False):
        response.set_signed_cookie(
            COOKIE_NAME,
            getattr(request, _ATTR),
            salt=_SALT,
            max_age=_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
    return response
