"""Fixtures: the fake server behind both the platform judge and a target model."""

from __future__ import annotations

import pytest

from tests.fakes import FakeOpenAIServer


@pytest.fixture
def fake_llm(settings):
    """A fake OpenAI-compatible server the platform judge ("fake-judge") talks to; a
    steering run's target points at the same server under another model name."""
    with FakeOpenAIServer() as server:
        settings.GCAI_LLM_BACKEND = "openai"
        settings.GCAI_LLM_BASE_URL = server.base_url
        settings.GCAI_LLM_MODEL = "fake-judge"
        settings.OPENAI_API_KEY = "test-key"
        settings.GCAI_LLM_MAX_RETRIES = 0
        settings.GCAI_LLM_TIMEOUT = 10
        from gcai.celery import app

        app.conf.task_always_eager = True
        yield server
        app.conf.task_always_eager = False


@pytest.fixture
def drive(django_capture_on_commit_callbacks):
    """Advance a steering run in-process (eager Celery) until it stops."""
    from gcai.modeling.steering_jobs import ENGINE

    def run(job):
        with django_capture_on_commit_callbacks(execute=True):
            ENGINE.step(job.pk)
        job.refresh_from_db()
        return job

    return run
