"""The fake LLM server fixture of the constitution tests."""

from tests.constitutions.conftest import llm_server  # noqa: F401
