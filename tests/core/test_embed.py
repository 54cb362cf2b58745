"""Embedders: cache wrapper, OpenAI-compatible client against the fake server, real MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from gcai.core.embed import (
    CachedEmbedder,
    Embedder,
    MemoryEmbeddingCache,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    build_embedder,
    embedding_key,
    normalise,
)
from gcai.core.llm.base import LLMTransportError
from gcai.core.llm.retry import RetryPolicy
from tests.fakes import FakeOpenAIServer, Fault

FAST = RetryPolicy(max_retries=3, backoff_base=0.01, backoff_max=0.05)


class CountingEmbedder:
    """Deterministic 8-d embedder that records every batch it is asked for."""

    name = "counting"

    def __init__(self):
        self.batches: list[list[str]] = []

    def embed(self, texts):
        self.batches.append(list(texts))
        rows = [[float((hash(t) >> s) % 7 + 1) for s in range(8)] for t in texts]
        return normalise(np.array(rows, dtype=np.float32).reshape(len(texts), 8))


def test_normalise_gives_float32_unit_rows_and_keeps_zero_rows():
    out = normalise([[3.0, 4.0], [0.0, 0.0]])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_embedding_key_depends_on_model_and_text():
    assert len(embedding_key("m", "t")) == 64
    assert embedding_key("m", "t") != embedding_key("n", "t")
    assert embedding_key("ab", "c") != embedding_key("a", "bc")


def test_cached_embedder_embeds_only_misses_in_batches_and_dedupes():
    inner = CountingEmbedder()
    cache = MemoryEmbeddingCache()
    embedder = CachedEmbedder(inner, cache, batch_size=4)
    assert isinstance(embedder, Embedder)
    texts = [f"text {i}" for i in range(10)] + ["text 0", "text 1"]
    first = embedder.embed(texts)
    assert first.shape == (12, 8)
    assert [len(b) for b in inner.batches] == [4, 4, 2]  # 10 unique texts
    np.testing.assert_array_equal(first[10], first[0])

    inner.batches.clear()
    second = embedder.embed([*texts, "new one"])
    assert inner.batches == [["new one"]]
    np.testing.assert_allclose(second[:12], first, rtol=1e-6)
    assert len(cache) == 11
    assert embedder.hits == 10
    assert embedder.misses == 11


def test_cached_embedder_handles_empty_input():
    embedder = CachedEmbedder(CountingEmbedder(), MemoryEmbeddingCache())
    assert embedder.embed([]).shape[0] == 0


@pytest.fixture
def server():
    with FakeOpenAIServer(embedding_dim=32) as srv:
        yield srv


def test_openai_embedder_batches_keeps_order_and_normalises(server):
    embedder = OpenAIEmbedder(
        model="emb", base_url=server.base_url, batch_size=3, retry_policy=FAST
    )
    texts = ["be honest", "be kind", "be honest and kind", "pizza", "cats", "dogs", "rain"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (7, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert server.embedding_calls == 3
    assert server.bodies("embeddings")[0]["input"] == texts[:3]
    sims = vectors @ vectors.T
    assert sims[0, 2] > sims[0, 3]
    assert embedder.calls == 3
    assert embedder.prompt_tokens > 0


def test_openai_embedder_retries_rate_limits_and_server_errors(server):
    server.inject(
        Fault.rate_limit(retry_after=0.05, endpoint="embeddings"),
        Fault.server_error(endpoint="embeddings"),
    )
    embedder = OpenAIEmbedder(model="emb", base_url=server.base_url, retry_policy=FAST)
    assert embedder.embed(["a", "b"]).shape == (2, 32)
    assert server.embedding_calls == 3


def test_openai_embedder_gives_up_with_a_transport_error(server):
    server.inject(*[Fault.server_error(endpoint="embeddings") for _ in range(4)])
    embedder = OpenAIEmbedder(model="emb", base_url=server.base_url, retry_policy=FAST)
    with pytest.raises(LLMTransportError):
        embedder.embed(["a"])


def test_build_embedder_wraps_openai_in_the_cache(server):
    cache = MemoryEmbeddingCache()
    embedder = build_embedder(
        "openai", model="emb", base_url=server.base_url, cache=cache, batch_size=2
    )
    assert isinstance(embedder, CachedEmbedder)
    embedder.embed(["a", "b", "c"])
    embedder.embed(["a", "b", "c"])
    assert server.embedding_calls == 2  # 3 texts in batches of 2, then all cached


def test_build_embedder_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown embedder"):
        build_embedder("word2vec")


@pytest.fixture(scope="module")
def minilm():
    return SentenceTransformerEmbedder()


def test_real_minilm_embeds_offline_into_normalised_384_d_vectors(minilm):
    # The model ships in a package; reaching the Hub would trip the no-network guard.
    texts = [
        "Be honest about what you do not know.",
        "Admit uncertainty instead of making up facts.",
        "Bake the chocolate cake for forty minutes.",
    ]
    vectors = minilm.embed(texts)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert minilm.embed([]).shape == (0, 384)
    assert minilm.name == "all-MiniLM-L6-v2"


def test_build_embedder_local_is_minilm_behind_the_cache(minilm):
    embedder = build_embedder("local", cache=MemoryEmbeddingCache())
    assert embedder.name == "all-MiniLM-L6-v2"
    np.testing.assert_allclose(
        embedder.embed(["hello world"]), minilm.embed(["hello world"]), atol=1e-6
    )
