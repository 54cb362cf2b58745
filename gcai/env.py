"""Small typed readers for settings from the environment.

Each fails loudly, naming the variable, so a typo in deployment shows up at start-up
instead of as odd behaviour later (after healthchecks' envbool/envint).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


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


@dataclass(frozen=True)
class DatabaseURL:
    engine: str
    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""
    options: dict[str, str] | None = None


def parse_database_url(url: str, *, name: str = "DATABASE_URL") -> DatabaseURL:
    """Parse ``postgres://user:pass@host:port/db`` or ``sqlite:///path``."""
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        db = unquote(parsed.path.lstrip("/"))
        if not db:
            raise ConfigError(f"{name} must name a database: postgres://user@host:5432/NAME")
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return DatabaseURL(
            engine="django.db.backends.postgresql",
            name=db,
            user=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
            host=parsed.hostname or "",
            port=str(parsed.port or ""),
            options=options or None,
        )
    if parsed.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
        if not path:
            raise ConfigError(f"{name} must give a file: sqlite:///var/gcai.sqlite3")
        return DatabaseURL(engine="django.db.backends.sqlite3", name=str(Path(path)))
    raise ConfigError(
        f"{name} has unsupported scheme {parsed.scheme!r}; use postgres:// or sqlite:///"
    )
