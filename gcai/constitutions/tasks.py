"""Celery tasks: thin adapters that load ids, call a service, save."""

from __future__ import annotations

import socket

from celery import shared_task

from gcai.constitutions import services


@shared_task(name="gcai.worker_ping")
def record_worker_ping(token: str) -> str:
    services.worker_ping_record(token=token, worker=socket.gethostname())
    return token
