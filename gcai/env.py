"""Small typed readers for settings from the environment.

Each fails loudly, naming the variable, so a typo in deployment shows up at start-up
instead of as odd behaviour later (after healthchecks' envbool/envint).
"""

from __future__ import annotations

import json
import os
from typing import Any


class ConfigError(RuntimeError):
    """A setting read from the environment is missing or malformed."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ConfigError(f"Environment variable {name} is required but not set.")
        return default if default is not None else ""
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(
        f"Environment variable {name}={raw!r} is not a boolean (use 1/0, true/false)."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"Environment variable {name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"Environment variable {name}={value} must be >= {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"Environment variable {name}={raw!r} is not a number.") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"Environment variable {name}={value} must be >= {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ConfigError(
            f"Environment variable {name}={value!r} must be one of {', '.join(choices)}."
        )
    return value


def env_json(name: str, default: Any) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Environment variable {name} is not valid JSON: {exc}") from None


_ENGINES = ("django.db.backends.postgresql", "django.db.backends.sqlite3")


def database_from_url(url: str, *, name: str = "DATABASE_URL") -> dict[str, Any]:
    """Django's ``DATABASES["default"]`` for ``postgres://user:pass@host:port/db?opts`` or
    ``sqlite:///relative/path`` / ``sqlite:////absolute/path`` (parsed by dj-database-url).

    Only PostgreSQL and SQLite are supported: the app relies on their JSON and locking.
    """
    import dj_database_url

    # Only the scheme goes into the message: the rest of the URL may hold a password.
    scheme = url.split("://", 1)[0] if "://" in url else ""
    try:
        config = dict(dj_database_url.parse(url))
    except (ValueError, dj_database_url.UnknownSchemeError):
        config = {}
    if config.get("ENGINE") not in _ENGINES:
        raise ConfigError(
            f"{name} has unsupported scheme {scheme!r}; use postgres:// or sqlite:///"
        )
    if not config.get("NAME"):
        example = (
            "postgres://user@host:5432/NAME"
            if config["ENGINE"].endswith("postgresql")
            else "sqlite:///var/gcai.sqlite3"
        )
        raise ConfigError(f"{name} must name a database: {example}")
    config["PORT"] = str(config.get("PORT") or "")
    config.setdefault("OPTIONS", {})
    return config
