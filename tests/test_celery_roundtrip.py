"""A real task goes through the real broker to a real worker process and lands in the DB."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import connection

from gcai.constitutions.models import WorkerPing
from gcai.constitutions.services import worker_ping


@pytest.mark.django_db(transaction=True)
def test_task_roundtrip_through_broker_and_worker(celery_worker_process):
    token = uuid.uuid4().hex
    assert worker_ping(token=token, timeout_s=60), celery_worker_process.log()
    ping = WorkerPing.objects.get(token=token)
    assert ping.processed_at is not None
    assert ping.worker  # the worker wrote its host name


def test_suite_uses_the_configured_services():
    # make test runs against PostgreSQL and Redis; this guards against silently
    # falling back to the embedded defaults in CI.
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        assert connection.vendor == "postgresql"
        assert settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://"))
    else:
        pytest.skip("running on the embedded SQLite default")
