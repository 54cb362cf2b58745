"""``scripts/demo.sh serve`` serves as in production: DEBUG off, static files through
WhiteNoise, a generated secret kept under the var directory, friendly error pages."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.conftest import ROOT, _database_url_for_worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", errors="replace")


@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_demo_serves_with_debug_off(tmp_path, settings):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env.update(
        {
            "GCAI_VAR_DIR": str(tmp_path),
            "DATABASE_URL": _database_url_for_worker(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": f"gcai-demo-test-{uuid.uuid4().hex[:8]}",
            "PORT": str(port),
        }
    )
    proc = subprocess.Popen(
        ["bash", "scripts/demo.sh", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(1)
        status, login = _get(base + "/accounts/login/")
        assert status == 200
        assert 'name="password"' in login
        status, css = _get(base + "/static/css/app.css")
        assert status == 200
        assert ".topbar" in css
        status, missing = _get(base + "/no-such-page/")
        assert status == 404
        assert 'id="error-page"' in missing
        assert "DEBUG = True" not in missing  # Django's debug 404 page says so
        assert "URLconf" not in missing
        secret = tmp_path / "secret_key"
        assert len(secret.read_text().strip()) >= 50
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
