"""Database caches for LLM answers and embeddings, and the settings-built clients."""

from __future__ import annotations

import numpy as np
import pytest

from gcai.constitutions import llm
from gcai.constitutions.llm_cache import DatabaseEmbeddingCache, DatabaseResponseCache
from gcai.constitutions.models import EmbeddingCacheEntry, LLMCacheEntry
from gcai.core.embed import CachedEmbedder, SentenceTransformerEmbedder
from gcai.core.fast_embed import OnnxMiniLMEmbedder
from gcai.core.llm.base import ChatRequest
from gcai.core.llm.openai_client import OpenAIChatModel
from gcai.core.llm.usage import UsageMeter
from gcai.core.types import Message
from tests.fakes import FakeOpenAIServer

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def test_response_cache_round_trips_and_keeps_the_first_answer():
    cache = DatabaseResponseCache()
    assert cache.get("a" * 64) is None
    cache.set("a" * 64, {"text": "first", "parsed": {"x": [1]}, "model": "m"})
    cache.set("a" * 64, {"text": "second", "model": "m"})
    assert cache.get("a" * 64) == {"text": "first", "parsed": {"x": [1]}, "model": "m"}
    assert LLMCacheEntry.objects.get().model == "m"


def test_response_cache_get_many_returns_only_hits(django_assert_max_num_queries):
    cache = DatabaseResponseCache()
    keys = [f"{i:064d}" for i in range(1200)]
    for key in keys[:3]:
        cache.set(key, {"text": key})
    with django_assert_max_num_queries(3):  # chunks of 500
        found = cache.get_many(keys)
    assert set(found) == set(keys[:3])


def test_embedding_cache_round_trips_float32_vectors(django_assert_max_num_queries):
    cache = DatabaseEmbeddingCache()
    vectors = {
        f"{i:064d}": np.random.default_rng(i).random(384, dtype=np.float32) for i in range(3)
    }
    cache.set_many(vectors, model="all-MiniLM-L6-v2")
    cache.set_many({f"{0:064d}": np.zeros(384, np.float32)}, model="all-MiniLM-L6-v2")
    with django_assert_max_num_queries(1):
        found = cache.get_many([*vectors, "f" * 64])
    assert set(found) == set(vectors)
    for key, vector in vectors.items():
        assert found[key].dtype == np.float32
        np.testing.assert_array_equal(found[key], vector)
    row = EmbeddingCacheEntry.objects.get(pk=f"{0:064d}")
    assert (row.dim, row.model) == (384, "all-MiniLM-L6-v2")


def test_chat_client_with_the_database_cache_repeats_no_calls():
    with FakeOpenAIServer() as server:
        requests = [
            ChatRequest(messages=[Message("user", f"pair {i}")], schema=SCHEMA) for i in range(5)
        ]

        def run():
            model = OpenAIChatModel(
                model="fake", base_url=server.base_url, cache=DatabaseResponseCache()
            )
            return model.complete_many(requests)

        first = run()
        second = run()
    assert server.chat_calls == 5
    assert all(r.usage.cached for r in second)
    assert [r.parsed for r in second] == [r.parsed for r in first] == [{"ok": True}] * 5
    assert LLMCacheEntry.objects.count() == 5


def test_chat_model_for_follows_the_settings(settings):
    with FakeOpenAIServer() as server:
        settings.GCAI_LLM_BACKEND = "openai"
        settings.GCAI_LLM_BASE_URL = server.base_url
        settings.GCAI_LLM_MODEL = "fake-model"
        settings.GCAI_LLM_CONCURRENCY = 3
        settings.GCAI_LLM_PRICES = {"fake-model": {"prompt": 1.0, "completion": 1.0}}
        meter = UsageMeter()
        model = llm.chat_model_for(meter=meter)
        assert isinstance(model, OpenAIChatModel)
        assert model.concurrency == 3
        request = ChatRequest(messages=[Message("user", "hi")], schema=SCHEMA)
        model.complete(request)
        llm.chat_model_for(meter=meter).complete(request)
        assert server.chat_calls == 1
        assert server.bodies()[0]["model"] == "fake-model"
    snap = meter.snapshot()
    assert (snap["calls"], snap["cached_calls"]) == (1, 1)
    assert snap["cost_usd"] > 0


def test_embedder_uses_the_openai_server_and_the_database_cache(settings):
    with FakeOpenAIServer(embedding_dim=16) as server:
        settings.GCAI_EMBEDDINGS = "openai"
        settings.GCAI_EMBEDDING_MODEL = "fake-embed"
        settings.GCAI_LLM_BASE_URL = server.base_url
        first = llm.embedder().embed(["be honest", "be kind"])
        second = llm.embedder().embed(["be honest", "be kind"])
        assert server.embedding_calls == 1
    np.testing.assert_allclose(first, second, rtol=1e-6)
    assert EmbeddingCacheEntry.objects.filter(model="fake-embed").count() == 2


def test_local_settings_build_the_bundled_minilm_behind_the_cache(settings):
    settings.GCAI_EMBEDDINGS = "local"
    settings.GCAI_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
    embedder = llm.embedder()
    assert isinstance(embedder, CachedEmbedder)
    assert isinstance(embedder.inner, SentenceTransformerEmbedder)
    assert embedder.name == "all-MiniLM-L6-v2"


def test_improved_2_fast_encoder_is_the_local_model_through_onnx_behind_the_cache(settings):
    settings.GCAI_EMBEDDINGS = "local"
    settings.GCAI_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
    fast = llm.fast_content_embedder(96)
    assert isinstance(fast, CachedEmbedder)
    assert isinstance(fast.inner, OnnxMiniLMEmbedder)
    assert isinstance(fast.cache, DatabaseEmbeddingCache)
    assert fast.name == "all-MiniLM-L6-v2-onnx-int8-96t"
    # An embeddings endpoint is the researcher's choice of model: it stays.
    settings.GCAI_EMBEDDINGS = "openai"
    settings.GCAI_EMBEDDING_MODEL = "fake-embed"
    settings.GCAI_LLM_BASE_URL = "http://127.0.0.1:9/v1"
    assert llm.fast_content_embedder(96).name == "fake-embed"


def test_llm_settings_defaults_hold_without_settings(settings):
    for name in ("GCAI_LLM_BACKEND", "GCAI_LLM_MODEL", "GCAI_LLM_PRICES", "GCAI_LLM_CONCURRENCY"):
        if hasattr(settings, name):
            delattr(settings, name)
    config = llm.llm_settings()
    assert config.backend == "local"
    assert config.concurrency == 16
    assert config.model_path is None
