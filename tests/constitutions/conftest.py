"""Fixtures for pipeline runs: the fake LLM server wired into Django settings, and data."""

from __future__ import annotations

import pytest

from annotations.models import Dataset, PreferencePair, Split
from tests.core.scripted import SYNTHETIC, load_icai_csv
from tests.fakes import FakeOpenAIServer


@pytest.fixture
def llm_server(settings):
    """A fake OpenAI-compatible server that the app's LLM and embedding clients use."""
    with FakeOpenAIServer() as server:
        settings.GCAI_LLM_BACKEND = "openai"
        settings.GCAI_LLM_BASE_URL = server.base_url
        settings.GCAI_LLM_MODEL = "fake-judge"
        settings.OPENAI_API_KEY = "test-key"
        settings.GCAI_EMBEDDINGS = "openai"
        settings.GCAI_EMBEDDING_MODEL = "fake-embed"
        settings.GCAI_LLM_MAX_RETRIES = 0
        settings.GCAI_LLM_TIMEOUT = 10
        settings.CELERY_TASK_ALWAYS_EAGER = True
        from gcai.celery import app

        app.conf.task_always_eager = True
        yield server
        app.conf.task_always_eager = False


def load_synthetic(study, name: str, *, split: str = Split.TRAIN) -> Dataset:
    """One of ICAI's synthetic CSVs (vendored in tests/fixtures) as a dataset of the study."""
    path = SYNTHETIC / name
    dataset = Dataset.objects.create(study=study, name=name)
    for pair in load_icai_csv(path):
        PreferencePair.objects.create(
            dataset=dataset,
            external_id=pair.id,
            prompt=pair.prompt,
            response_a=pair.response_a,
            response_b=pair.response_b,
            source_preference=str(pair.preferred),
            split=split,
        )
    return dataset


@pytest.fixture
def drive_run(django_capture_on_commit_callbacks):
    """Advance a run in-process until it stops, with Celery in eager mode.

    Inside a test transaction nothing commits, so the engine's ``on_commit`` hand-offs
    (a finished stage enqueues the next step) are captured and executed here.
    """
    from gcai.constitutions import runs

    def drive(run):
        with django_capture_on_commit_callbacks(execute=True):
            runs.run_step(run.pk)
        run.refresh_from_db()
        return run

    return drive
