"""Writes for runs, constitutions and evaluations."""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone

from gcai.constitutions.models import WorkerPing


def worker_ping(*, token: str, timeout_s: float = 10.0) -> bool:
    """Send a task through the broker and wait until a worker has written to the database."""
    from gcai.constitutions.tasks import record_worker_ping

    WorkerPing.objects.create(token=token)
    transaction.on_commit(lambda: record_worker_ping.delay(token))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if WorkerPing.objects.filter(token=token, processed_at__isnull=False).exists():
            return True
        time.sleep(0.1)
    return False


def worker_ping_record(*, token: str, worker: str) -> None:
    WorkerPing.objects.filter(token=token).update(processed_at=timezone.now(), worker=worker[:200])
