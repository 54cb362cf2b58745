"""Shared fixtures: personas, a real Celery worker process, and the no-network guard."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from annotations.models import Role
from tests.factories import MembershipFactory, StudyFactory, UserFactory
from tests.fixtures import DATA

ROOT = Path(__file__).resolve().parent.parent


# --- No network: sockets may only reach loopback ------------------------------------------
_real_connect = socket.socket.connect


def _loopback_only_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
    ):
        raise RuntimeError(f"Tests must not reach the network (tried {address!r}).")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    socket.socket.connect = _loopback_only_connect  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


# --- Fast password hashing: real hashing costs ~0.5 s per user and tests create dozens --
@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    previous = settings.PASSWORD_HASHERS
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()
    yield
    settings.PASSWORD_HASHERS = previous
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()


# --- Personas ------------------------------------------------------------------------------
@pytest.fixture
def study(db):
    return StudyFactory(name="Owned study")


@pytest.fixture
def researcher(study):
    user = UserFactory(username="owner")
    MembershipFactory(user=user, study=study, role=Role.RESEARCHER)
    return user


@pytest.fixture
def other_researcher(db):
    user = UserFactory(username="stranger")
    MembershipFactory(
        user=user, study=StudyFactory(name="Someone else's study"), role=Role.RESEARCHER
    )
    return user


@pytest.fixture
def annotator(study):
    user = UserFactory(username="annotator")
    MembershipFactory(user=user, study=study, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def owner_client(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def stranger_client(client, other_researcher):
    client.force_login(other_researcher)
    return client


@pytest.fixture
def shared_data() -> Path:
    """The vendored slices of ../shared/data (tests/fixtures/data): never skipped."""
    return DATA


# --- A real Celery worker process -------------------------------------------------------
def _database_url_for_worker() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] or "postgres"
    if db["PASSWORD"]:
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, queue: str, env: dict[str, str], log_path: Path) -> None:
        self.queue = queue
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable, "-m", "celery", "-A", "gcai", "worker",
            "-Q", queue, "--pool=threads", "--concurrency=4", "--loglevel=INFO",
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Celery worker exited early:\n{self.log()}")
            if "ready." in self.log():
                return
            time.sleep(0.2)
        raise RuntimeError(f"Celery worker not ready after {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-task without acknowledging or handing anything back."""
        self.proc.kill()
        self.proc.wait(timeout=15)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def start_worker(
    tmp_path: Path, extra_env: dict[str, str] | None = None, *, queue: str | None = None
) -> WorkerProcess:
    """Start a worker on a private queue (or ``queue``, to join another worker's) against
    the test database; route tasks to it."""
    from gcai.celery import app

    queue = queue or f"gcai-test-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": _database_url_for_worker(),
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "GCAI_VAR_DIR": str(settings.VAR_DIR),
            "DJANGO_SETTINGS_MODULE": "gcai.settings",
        }
    )
    env.update(extra_env or {})
    worker = WorkerProcess(queue, env, tmp_path / f"{queue}-{uuid.uuid4().hex[:4]}.log")
    worker.wait_ready()
    app.conf.task_default_queue = queue
    return worker


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real worker process consuming a private queue, reading the test database."""
    from gcai.celery import app

    previous_queue = app.conf.task_default_queue
    worker = start_worker(tmp_path)
    yield worker
    worker.stop()
    app.conf.task_default_queue = previous_queue
