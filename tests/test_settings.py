"""Settings come from the environment and fail loudly, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcai.env import ConfigError, database_from_url, env_bool, env_int, env_json

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")
    }
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_secret_key_with_debug_off_names_the_variable():
    result = _manage("check", env={"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_check_deploy_is_clean_in_production_mode():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DEBUG": "0",
            "SECRET_KEY": "k" * 20 + "-production-secret-for-the-check-0123456789",
            "ALLOWED_HOSTS": "gcai.example.org",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ConfigError, match="DEBUG"):
        env_bool("DEBUG", True)


def test_bad_integer_names_the_variable(monkeypatch):
    monkeypatch.setenv("GCAI_LLM_CONCURRENCY", "lots")
    with pytest.raises(ConfigError, match="GCAI_LLM_CONCURRENCY"):
        env_int("GCAI_LLM_CONCURRENCY", 16)


def test_integer_below_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("GCAI_LLM_CONCURRENCY", "0")
    with pytest.raises(ConfigError, match=">= 1"):
        env_int("GCAI_LLM_CONCURRENCY", 16, minimum=1)


def test_bad_json_names_the_variable(monkeypatch):
    monkeypatch.setenv("GCAI_LLM_PRICES", "{not json")
    with pytest.raises(ConfigError, match="GCAI_LLM_PRICES"):
        env_json("GCAI_LLM_PRICES", {})


def test_invalid_backend_choice_fails_at_startup():
    result = _manage("check", env={"GCAI_LLM_BACKEND": "magic"})
    assert result.returncode != 0
    assert "GCAI_LLM_BACKEND" in result.stderr


def test_parse_postgres_url():
    db = database_from_url("postgres://alice:s%40cret@db.internal:6543/gcai?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "alice",
        "s@cret",
        "db.internal",
        "6543",
        "gcai",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_parse_sqlite_url_relative_and_absolute():
    assert database_from_url("sqlite:///var/x.sqlite3")["NAME"] == "var/x.sqlite3"
    assert database_from_url("sqlite:////tmp/x.sqlite3")["NAME"] == "/tmp/x.sqlite3"


@pytest.mark.parametrize("url", ["mysql://root@localhost/x", "ftp://host/x", "not a url"])
def test_unknown_database_scheme_is_refused(url):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        database_from_url(url)


def test_postgres_url_without_database_is_refused():
    with pytest.raises(ConfigError, match="must name a database"):
        database_from_url("postgres://root@localhost")


def test_redis_visibility_timeout_outlasts_the_task_time_limit():
    # Otherwise Redis would hand a task that is still running to a second worker.
    env = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "CELERY_TASK_TIME_LIMIT": "7200"}
    result = _manage("shell", "-c", _PRINT_BROKER_OPTIONS, env=env)
    assert result.returncode == 0, result.stderr
    assert "visibility_timeout=10800" in result.stdout

    env["CELERY_BROKER_VISIBILITY_TIMEOUT"] = "3600"
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "CELERY_BROKER_VISIBILITY_TIMEOUT=3600 must be longer" in result.stderr


_PRINT_BROKER_OPTIONS = (
    "from gcai.celery import app; "
    "print(f\"visibility_timeout={app.conf.broker_transport_options['visibility_timeout']}\")"
)
