"""The ONNX int8 MiniLM: exported offline from the bundled weights, same space as the full model."""

from __future__ import annotations

import numpy as np
import pytest

from gcai.core.embed import CachedEmbedder, MemoryEmbeddingCache, build_embedder
from gcai.core.fast_embed import OnnxMiniLMEmbedder

pytestmark = pytest.mark.slow

TEXTS = [
    "Select the response that is honest about uncertainty.",
    "Select the response that recommends the blue shirt.",
    "Water tomatoes deeply twice a week and stake them early.",
    "The capital of the United States is Washington, D.C.",
]


def test_onnx_int8_minilm_matches_the_full_model_and_reuses_its_export(tmp_path):
    full = build_embedder("local").embed(TEXTS)
    fast = OnnxMiniLMEmbedder(cache_dir=tmp_path, max_tokens=64)
    vectors = fast.embed(list(reversed(TEXTS)))[::-1]  # order is kept whatever the lengths

    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (full * vectors).sum(axis=1)
    assert cosine.min() > 0.98  # short texts: only int8 rounding separates them
    assert fast.name == "all-MiniLM-L6-v2-onnx-int8-64t"
    exported = sorted(p.name for p in tmp_path.rglob("*.onnx"))
    assert exported == ["model.int8.onnx", "model.onnx"]

    # A second embedder finds the export and does not write it again.
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.onnx")}
    again = OnnxMiniLMEmbedder(cache_dir=tmp_path, max_tokens=64).embed(TEXTS[:1])
    # int8 activations are scaled per batch, so other batch mates move a vector a little.
    assert float(again[0] @ vectors[0]) > 0.99
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.onnx")} == mtimes


def test_max_tokens_cuts_long_texts_and_names_the_setting(tmp_path):
    long = " ".join(["The quick brown fox jumps over the lazy dog."] * 40)
    tail = long + " Finally, something completely different about quantum chromodynamics."
    short = OnnxMiniLMEmbedder(cache_dir=tmp_path, max_tokens=32)
    assert np.allclose(short.embed([long]), short.embed([tail]), atol=1e-6)
    assert short.name != OnnxMiniLMEmbedder(cache_dir=tmp_path, max_tokens=128).name
    with pytest.raises(ValueError, match="max_tokens"):
        OnnxMiniLMEmbedder(cache_dir=tmp_path, max_tokens=4)


def test_build_embedder_onnx_is_cached_under_its_own_name(tmp_path, monkeypatch):
    monkeypatch.setenv("GCAI_ONNX_DIR", str(tmp_path))
    embedder = build_embedder("onnx", max_tokens=96, cache=MemoryEmbeddingCache())
    assert isinstance(embedder, CachedEmbedder)
    assert isinstance(embedder.inner, OnnxMiniLMEmbedder)
    assert embedder.name == "all-MiniLM-L6-v2-onnx-int8-96t"
