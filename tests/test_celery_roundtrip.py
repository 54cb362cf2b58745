"""A real task goes through the real broker to a real worker process and lands in the DB."""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings
from django.db import connection

from gcai.celery import app as celery_app
from gcai.constitutions.models import WorkerPing
from gcai.constitutions.services import worker_ping


@pytest.mark.django_db(transaction=True)
def test_task_roundtrip_through_broker_and_worker(celery_worker_process):
    token = uuid.uuid4().hex
    assert worker_ping(token=token, timeout_s=60), celery_worker_process.log()
    ping = WorkerPing.objects.get(token=token)
    assert ping.processed_at is not None
    assert ping.worker  # the worker wrote its host name


@pytest.mark.django_db
def test_suite_uses_the_configured_services():
    # make test sets DATABASE_URL and CELERY_BROKER_URL (PostgreSQL and Redis); the suite
    # must really talk to them, not silently fall back to the embedded defaults.
    url = os.environ.get("DATABASE_URL", "")
    expected_vendor = "postgresql" if url.startswith(("postgres", "pgsql")) else "sqlite"
    assert connection.vendor == expected_vendor
    if expected_vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            (database,) = cursor.fetchone()
        # pytest-django runs on test_<name> of the configured database.
        assert database == f"test_{url.rsplit('/', 1)[-1].split('?')[0]}"
    broker = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    assert broker == settings.CELERY_BROKER_URL
    assert celery_app.conf.broker_url == broker
