"""Test doubles shared by every test suite (no network: loopback only).

``FakeOpenAIServer`` is the one seam for LLM calls in tests; see README.md here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import (
    FakeOpenAIServer,
    Fault,
    RecordedRequest,
    default_responder,
    example_for,
    fake_embedding,
    http_date,
    last_user_message,
    request_schema,
    system_message,
)

__all__ = [
    "FakeOpenAIServer",
    "Fault",
    "RecordedRequest",
    "default_responder",
    "example_for",
    "fake_embedding",
    "fake_openai",
    "http_date",
    "last_user_message",
    "request_schema",
    "system_message",
]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A running FakeOpenAIServer with the default responder; set ``.responder`` to script it.

    Enable it with ``pytest_plugins = ["tests.fakes"]`` in a conftest, or import it
    into a test module.
    """
    with FakeOpenAIServer() as server:
        yield server
