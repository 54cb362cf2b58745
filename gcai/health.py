"""Liveness: the database answers (and, with ?worker=1, a worker round-trip completes)."""

from __future__ import annotations

import time
import uuid

from django.db import connection
from django.http import JsonResponse


def healthz(request):
    status: dict[str, object] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        status["database"] = "ok"
    except Exception as exc:  # pragma: no cover - reported, not raised
        status["database"] = f"error: {exc.__class__.__name__}"
    if request.GET.get("worker") == "1" and request.user.is_staff:
        from gcai.constitutions.services import worker_ping

        status["worker"] = (
            "ok" if worker_ping(token=uuid.uuid4().hex, timeout_s=10) else "no answer"
        )
    code = 200 if all(v == "ok" for v in status.values()) else 503
    status["time"] = time.time()
    return JsonResponse(status, status=code)
