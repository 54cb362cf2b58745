"""The fast MiniLM: exported offline from the bundled weights, int8, same space as the full model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from gcai.core import fast_embed
from gcai.core.embed import (
    FAST_CACHE_CHUNK,
    CachedEmbedder,
    MemoryEmbeddingCache,
    build_embedder,
)
from gcai.core.fast_embed import OnnxMiniLMEmbedder, fingerprint

pytestmark = pytest.mark.slow

TEXTS = [
    "Select the response that is honest about uncertainty.",
    "Select the response that recommends the blue shirt.",
    "Water tomatoes deeply twice a week and stake them early.",
    "The capital of the United States is Washington, D.C.",
]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """One export for the module: it takes seconds, the tests only read it."""
    return tmp_path_factory.mktemp("onnx")


def test_fast_minilm_matches_the_full_model_and_reuses_its_export(export_dir):
    full = build_embedder("local").embed(TEXTS)
    fast = OnnxMiniLMEmbedder(cache_dir=export_dir, max_tokens=64)
    vectors = fast.embed(list(reversed(TEXTS)))[::-1]  # order is kept whatever the lengths

    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (full * vectors).sum(axis=1)
    assert cosine.min() > 0.98  # short texts: only int8 rounding separates them
    assert fast.name == "all-MiniLM-L6-v2-onnx-int8-64t"
    exported = sorted(p.name for p in export_dir.rglob("*.onnx"))
    assert exported == ["model.int8.onnx", "model.onnx"]

    # Weights are int8 (per channel), activations quantised on the fly.
    graph = onnx.load(str(fast.export_path())).graph
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= {n.op_type for n in graph.node}
    assert any(t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 1 for t in graph.initializer)

    # A second embedder finds the export and does not write it again.
    mtimes = {p: p.stat().st_mtime_ns for p in export_dir.rglob("*.onnx")}
    again = OnnxMiniLMEmbedder(cache_dir=export_dir, max_tokens=64).embed(TEXTS[:1])
    # int8 activations are scaled per batch, so other batch mates move a vector a little.
    assert float(again[0] @ vectors[0]) > 0.985
    assert float(again[0] @ full[0]) > 0.98
    assert {p: p.stat().st_mtime_ns for p in export_dir.rglob("*.onnx")} == mtimes


def test_repeated_texts_are_embedded_once_and_parallel_batches_change_nothing(export_dir):
    texts = [f"Principle number {i}: prefer answers that cite sources." for i in range(40)]
    one = OnnxMiniLMEmbedder(cache_dir=export_dir, threads=1, batch_tokens=64)
    two = OnnxMiniLMEmbedder(cache_dir=export_dir, threads=2, batch_tokens=64)
    assert len(one.batches([16] * 40)) == 10  # several batches to run side by side
    assert np.array_equal(one.embed(texts), two.embed(texts))

    seen: list[int] = []
    tokenize = two._tokenize
    two._tokenize = lambda batch: seen.append(len(batch)) or tokenize(batch)
    vectors = two.embed([texts[0], texts[1], texts[0]])
    assert seen == [2]
    assert np.array_equal(vectors[0], vectors[2])


def test_batches_hold_more_short_texts_than_long_ones_longest_first(export_dir):
    fast = OnnxMiniLMEmbedder(cache_dir=export_dir, batch_tokens=512)
    lengths = [128] * 6 + [8] * 100 + [64] * 3
    batches = fast.batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths == sorted(widths, reverse=True)
    assert all(len(b) * max(lengths[i] for i in b) <= 512 for b in batches)
    assert len(batches[0]) == 4  # 512 tokens of 128
    assert max(len(b) for b in batches) == 64  # 512 tokens of 8


def test_max_tokens_cuts_long_texts_and_names_the_setting(export_dir):
    long = " ".join(["The quick brown fox jumps over the lazy dog."] * 40)
    tail = long + " Finally, something completely different about quantum chromodynamics."
    short = OnnxMiniLMEmbedder(cache_dir=export_dir, max_tokens=32)
    assert np.allclose(short.embed([long]), short.embed([tail]), atol=1e-6)
    assert short.name != OnnxMiniLMEmbedder(cache_dir=export_dir, max_tokens=128).name
    with pytest.raises(ValueError, match="max_tokens"):
        OnnxMiniLMEmbedder(cache_dir=export_dir, max_tokens=4)


def test_long_texts_are_tokenized_from_a_prefix_with_the_same_result(export_dir):
    fast = OnnxMiniLMEmbedder(cache_dir=export_dir, max_tokens=32)
    prose = " ".join(["Water tomatoes deeply, twice a week."] * 40)
    # Words over 100 characters are one word piece each ([UNK]): the prefix falls short
    # of 32 word pieces and the whole text is tokenized instead.
    sparse = " ".join(["z" * 150] * 40)
    code = "x = {" + ", ".join(f"'k{i}': [{i}, {i + 1}]" for i in range(80)) + "}"
    short = "Be kind."
    texts = [prose, sparse, code, short, prose + "\nA tail nobody reads."]
    fast._tokenize([])  # loads the tokenizer
    whole = [e.ids for e in fast._tokenizer.encode_batch(texts)]
    assert fast._tokenize(texts) == whole
    assert [len(ids) for ids in whole] == [32, 32, 32, 5, 32]


def test_the_export_fingerprint_follows_the_recipe_and_onnxruntime(monkeypatch):
    import onnxruntime

    model = OnnxMiniLMEmbedder().model_path
    base = fingerprint(model)
    assert fingerprint(model) == base
    monkeypatch.setattr(fast_embed, "EXPORT_RECIPE", "another recipe")
    assert fingerprint(model) != base
    monkeypatch.undo()
    monkeypatch.setattr(onnxruntime, "__version__", "0.0.1")
    assert fingerprint(model) != base


def test_build_embedder_onnx_is_cached_under_its_own_name(tmp_path, monkeypatch):
    monkeypatch.setenv("GCAI_ONNX_DIR", str(tmp_path))
    embedder = build_embedder("onnx", max_tokens=96, cache=MemoryEmbeddingCache())
    assert isinstance(embedder, CachedEmbedder)
    assert isinstance(embedder.inner, OnnxMiniLMEmbedder)
    assert embedder.name == "all-MiniLM-L6-v2-onnx-int8-96t"
    assert embedder.inner.cache_dir == tmp_path
    # The cache hands the fast embedder large chunks, which it sorts by length.
    assert embedder.batch_size == FAST_CACHE_CHUNK
