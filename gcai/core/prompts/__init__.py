"""Prompt templates as plain text files, versioned by name (``icai_generate_v1``).

A template holds a ``[system]`` and a ``[user]`` section. Placeholders use
``string.Template`` syntax (``$name``), not ``str.format``, so templates may show JSON
examples with braces and substituted values (responses, reasons) are never re-parsed.
A changed prompt gets a new file name, which keeps old runs reproducible and keeps the
LLM cache honest: a different prompt is a different request.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from string import Template

from gcai.core.types import Message

_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)
_NAME = re.compile(r"^[a-z0-9_]+$")


@cache
def load(name: str) -> dict[str, str]:
    """Return the sections (``{"system": ..., "user": ...}``) of template ``name``."""
    parts = _SECTION.split(text(name))
    # parts = [preamble, role, body, role, body, ...]; the preamble is a comment area.
    sections = {role: body.strip("\n") for role, body in zip(parts[1::2], parts[2::2], strict=True)}
    if "user" not in sections:
        raise ValueError(f"prompt {name!r} has no [user] section")
    return sections


def render(name: str, **values: str) -> list[Message]:
    """Fill template ``name`` with ``values`` and return the chat messages.

    Raises ``KeyError`` when a placeholder has no value, so a template and its caller
    cannot silently drift apart.
    """
    messages = []
    for role in ("system", "user"):
        body = load(name).get(role)
        if body is not None:
            messages.append(Message(role=role, content=Template(body).substitute(values).strip()))
    return messages


def block(tag: str, content: str) -> str:
    """``content`` wrapped in ``<tag>`` lines with blank lines around, or ``""`` if empty.

    Used for optional template parts (the user prompt, rating scores) so a template
    does not show an empty section.
    """
    content = content.strip("\n")
    if not content.strip():
        return ""
    return f"\n<{tag}>\n{content}\n</{tag}>\n"


def text(name: str) -> str:
    """Return the raw text of a prompt-directory file that is not a chat template."""
    if not _NAME.match(name):
        raise ValueError(f"invalid prompt name {name!r}: use lowercase letters, digits and _")
    path = resources.files(__package__).joinpath(f"{name}.txt")
    if not path.is_file():
        raise ValueError(f"unknown prompt {name!r}: no file {name}.txt in gcai/core/prompts")
    return path.read_text(encoding="utf-8")


def exists(name: str) -> bool:
    """Whether a template called ``name`` ships with the package."""
    try:
        load(name)
    except ValueError:
        return False
    return True
