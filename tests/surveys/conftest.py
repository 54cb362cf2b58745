"""Fixtures for survey tests."""

from __future__ import annotations

import random

import pytest
from django.core.cache import cache

from tests.factories import ParticipantFactory
from tests.surveys.factories import open_survey


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # Participant endpoints are rate-limited per client address; every test client is
    # 127.0.0.1, so counts would leak from one test into the next.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def survey(study, researcher):
    return open_survey(study=study, user=researcher)


@pytest.fixture
def rated_survey(study, researcher):
    return open_survey(study=study, user=researcher, rate_principles=True)


@pytest.fixture
def participant(study):
    return ParticipantFactory(study=study, prolific_pid="PID0001")


@pytest.fixture
def rng():
    return random.Random(1234)
