"""An in-process scripted ChatModel, a deterministic embedder and a rule-following judge.

Used by the pipeline unit tests (cluster, voting, ICAI, GCAI): no database, no network.
The judge reads the same prompt text a real model gets (the ``<tag>`` blocks of the
templates in gcai/core/prompts) and answers with JSON that goes through the production
parser (``gcai.core.llm.parsing.parse_output``), so request building and answer parsing
are exercised end to end.

Planted rules: ICAI's synthetic data was generated from a few known principles. Each
:class:`Rule` knows a keyword that identifies it in a principle's wording and a
predicate telling whether a response follows it, so the judge proposes, votes on,
summarises and compares principles consistently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcai.core.llm.base import (
    ChatRequest,
    ChatResult,
    LLMError,
    LLMOutputError,
    LLMTransportError,
    Usage,
)
from gcai.core.llm.parsing import parse_output
from gcai.core.types import Pair, Preference

# ICAI's synthetic CSVs, vendored (source and licence in the folder's README.md).
SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "icai_synthetic"


# --------------------------------------------------------------------------- data


def _split_instruction(text: str) -> tuple[str, str]:
    match = re.match(r"Instruction:\s*(.*?)\n\s*\nOutput:\s*(.*)\Z", text, re.DOTALL)
    return (match.group(1).strip(), match.group(2).strip()) if match else ("", text)


def load_icai_csv(path: Path, prefix: str = "") -> list[Pair]:
    """ICAI's processed CSV (index, text_a, text_b, preferred_text) as pairs.

    When both texts share an "Instruction: ... Output: ..." prefix, the instruction
    becomes the pair's prompt, so the prompt is shown separately as the pipeline wants.
    """
    labels = {"text_a": Preference.A, "text_b": Preference.B, "tie": Preference.TIE}
    labels["tie (bothbad)"] = Preference.BOTH_BAD
    pairs = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            index = row.get("") or row.get("index") or str(len(pairs))
            prompt_a, out_a = _split_instruction(row["text_a"])
            prompt_b, out_b = _split_instruction(row["text_b"])
            if prompt_a != prompt_b:
                prompt_a, out_a, out_b = "", row["text_a"], row["text_b"]
            pairs.append(
                Pair(
                    id=f"{prefix}{int(index):03d}",
                    prompt=prompt_a,
                    response_a=out_a,
                    response_b=out_b,
                    preferred=labels.get(row["preferred_text"], Preference.NONE),
                )
            )
    return pairs


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """A planted principle: how to recognise it in text, and who follows it."""

    key: str  # word that identifies the rule in a principle, reason or statement
    principle: str
    variants: tuple[str, ...]
    follows: Callable[[str], bool]

    def decide(self, a: str, b: str) -> str:
        fa, fb = self.follows(a), self.follows(b)
        if fa and fb:
            return "both"
        if fa:
            return "A"
        if fb:
            return "B"
        return "neither"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


CAT = Rule(
    "cat",
    "Select the response that features a cat.",
    (
        "Select the response where the pet is a cat.",
        "Select the response that tells a story about a cat.",
    ),
    lambda t: "cat" in _words(t) or "whiskers" in _words(t),
)
BLUE = Rule(
    "blue",
    "Select the response that recommends the blue shirt.",
    ("Select the response that picks the blue shirt.", "Select the response favouring blue."),
    lambda t: "blue" in _words(t),
)
LEMON = Rule(
    "lemon",
    "Select the response that recommends lemon ice cream.",
    ("Select the response that suggests the lemon flavour.", "Select the response choosing lemon."),
    lambda t: "lemon" in _words(t),
)
CAPITAL = Rule(
    "washington",
    "Select the response that names Washington as the capital.",
    ("Select the response that correctly says Washington.",),
    lambda t: "washington" in _words(t),
)
DESTINATION = Rule(
    "destination",
    "Select the response that names a specific destination.",
    ("Select the response recommending a concrete destination.",),
    lambda t: not t.lower().startswith("travel"),
)
EAGER = Rule(
    "eager",
    "Select the response that is eager to help.",
    ("Select the response that sounds eager and willing.",),
    lambda t: "of course" in t.lower(),
)
HONEST = Rule(  # used by the GCAI tests: shared by a reason and a value statement
    "honest",
    # Reasons yield the variant, statements the principle: same words, other wording.
    "Select the response that is honest, always.",
    ("Select the response that is always honest.",),
    lambda t: "washington" in _words(t),
)
ORTHOGONAL_RULES = (CAT, BLUE, LEMON)
ALIGNED_RULES = (CAPITAL, DESTINATION, EAGER)
KIND = Rule(  # a value only statements express; no response in the data follows it
    "kind",
    "Select the response that is kind to animals.",
    ("Select the response showing kindness to animals.",),
    lambda t: False,
)
# Plausible but wrong explanations: the judge proposes them, voting must reject them.
# "Longer" loses on the synthetic data (preferred answers are shorter); every response
# is in English, so that one never takes a side and lacks support.
NOISE = (
    "Select the response that is longer.",
    "Select the response that is written in English.",
)


def _output(text: str) -> str:
    return _split_instruction(text)[1]


# --------------------------------------------------------------------------- reading prompts


def tag(text: str, name: str) -> str | None:
    match = re.search(rf"<{name}>\n(.*?)\n</{name}>", text, re.DOTALL)
    return match.group(1) if match else None


def tags(text: str, name: str) -> list[str]:
    return re.findall(rf"<{name}>\n(.*?)\n</{name}>", text, re.DOTALL)


def user_text(request: ChatRequest) -> str:
    return "\n".join(m.content for m in request.messages if m.role == "user")


def numbered_rules(request: ChatRequest) -> list[str]:
    block = tag(user_text(request), "rules") or ""
    return [re.sub(r"^\d+\.\s*", "", line) for line in block.splitlines() if line.strip()]


def _stable(*parts: object) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


# --------------------------------------------------------------------------- the judge


@dataclass
class Judge:
    """Answers every pipeline request as a consistent judge following ``rules``."""

    rules: Sequence[Rule]
    noise: Sequence[str] = NOISE
    # Statement texts that carry values: a keyword of a rule -> that rule.
    statement_rules: Sequence[Rule] = ()

    def rule_for(self, text: str) -> Rule | None:
        words = _words(text)
        for rule in [*self.rules, *self.statement_rules]:
            if rule.key in words or rule.principle.lower() in text.lower():
                return rule
        return None

    def _explain(self, chosen: str, other: str) -> list[Rule]:
        return [r for r in self.rules if r.decide(chosen, other) == "A"]

    def generate(self, request: ChatRequest) -> Any:
        text = user_text(request)
        chosen, other = tags(text, "selected_response"), tags(text, "other_response")
        explained = [r for c, o in zip(chosen, other, strict=True) for r in self._explain(c, o)]
        out = []
        for rule, _ in Counter(explained).most_common():
            wordings = (rule.principle, *rule.variants)
            out.append(wordings[_stable(text, rule.key) % len(wordings)])
        # Every explanation also offers a plausible, wrong one.
        out.append(self.noise[_stable(text) % len(self.noise)])
        return {"principles": out}

    def vote(self, request: ChatRequest) -> Any:
        text = user_text(request)
        a, b = tag(text, "response_a") or "", tag(text, "response_b") or ""
        answers = {}
        for i, principle in enumerate(numbered_rules(request)):
            rule = self.rule_for(principle)
            if rule is not None:
                answers[str(i)] = rule.decide(a, b)
            elif "longer" in principle:
                answers[str(i)] = "A" if len(a) > len(b) else "B"
            elif "english" in principle.lower():
                answers[str(i)] = "both"
            else:
                answers[str(i)] = "neither"
        return answers

    def summarise(self, request: ChatRequest) -> Any:
        block = tag(user_text(request), "principles") or ""
        members = [line.removeprefix("- ") for line in block.splitlines() if line.strip()]
        rules = Counter(r.key for m in members if (r := self.rule_for(m)) is not None)
        if rules:
            key = rules.most_common(1)[0][0]
            rule = next(r for r in [*self.rules, *self.statement_rules] if r.key == key)
            return {"principle": rule.principle}
        return {"principle": members[0]}

    def contextual(self, request: ChatRequest) -> Any:
        reason = tag(user_text(request), "reason") or ""
        rule = self.rule_for(reason)
        if rule is None:
            return {"principles": ["Select the response the person liked more."]}
        return {"principles": [rule.variants[_stable(reason) % len(rule.variants)]]}

    def general(self, request: ChatRequest) -> Any:
        statement = tag(user_text(request), "statement") or ""
        rule = self.rule_for(statement)
        if rule is None:
            return {"has_values": False, "reason": "no value about AI stated", "principles": []}
        return {"has_values": True, "reason": "states a value", "principles": [rule.principle]}

    def same(self, request: ChatRequest) -> Any:
        text = user_text(request)
        first = self.rule_for(tag(text, "principle_1") or "")
        second = self.rule_for(tag(text, "principle_2") or "")
        return {"same": first is not None and first == second}

    def answer(self, request: ChatRequest) -> Any:
        handler = {
            "icai.generate": self.generate,
            "vote": self.vote,
            "cluster.summary": self.summarise,
            "gcai.contextual": self.contextual,
            "gcai.general": self.general,
            "gcai.merge": self.same,
        }[request.purpose]
        return handler(request)


# --------------------------------------------------------------------------- the model


def request_key(request: ChatRequest) -> str:
    """A full hash of what a response cache would key on."""
    payload = {
        "messages": [(m.role, m.content) for m in request.messages],
        "schema": request.schema,
        "temperature": request.temperature,
        "seed": request.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class ScriptedModel:
    """A ChatModel answering from ``answer(request)`` (a Python object, or raw text).

    Objects are serialised and raw text is parsed with the production parser against
    the request's schema, so a malformed answer becomes an ``LLMOutputError`` just as it
    would from a server. ``tamper(request)`` may return raw text (malformed output) or
    an ``LLMError`` (transport failure) to inject faults. Every request is logged.
    """

    answer: Callable[[ChatRequest], Any]
    tamper: Callable[[ChatRequest], str | LLMError | None] | None = None
    name: str = "scripted"
    requests: list[ChatRequest] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)

    def complete(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        fault = self.tamper(request) if self.tamper else None
        if isinstance(fault, LLMError):
            raise fault
        text = fault if isinstance(fault, str) else json.dumps(self.answer(request))
        usage = Usage(prompt_tokens=sum(len(m.content) for m in request.messages), calls=1)
        parsed = parse_output(text, request.schema) if request.schema else None
        return ChatResult(text=text, parsed=parsed, usage=usage)

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        self.batches.append(len(requests))
        out = []
        for request in requests:
            try:
                out.append(self.complete(request))
            except LLMError as exc:
                out.append(ChatResult(text=getattr(exc, "raw", ""), error=exc))
        return out

    def count(self, purpose: str) -> int:
        return sum(1 for r in self.requests if r.purpose == purpose)

    def keys(self) -> list[str]:
        return [request_key(r) for r in self.requests]


def judge_model(rules: Sequence[Rule], **kwargs: Any) -> ScriptedModel:
    """A :class:`ScriptedModel` backed by a :class:`Judge` following ``rules``."""
    judge = Judge(
        rules,
        noise=kwargs.pop("noise", NOISE),
        statement_rules=kwargs.pop("statement_rules", ()),
    )
    return ScriptedModel(judge.answer, **kwargs)


def transport_error(message: str = "server kept failing") -> LLMError:
    return LLMTransportError(message)


def output_error(raw: str) -> LLMError:
    return LLMOutputError("unusable answer", raw=raw)


# --------------------------------------------------------------------------- the embedder

_STOP = {
    "select", "the", "response", "that", "a", "an", "is", "and", "or", "to", "of", "as",
    "where", "about", "more", "it", "be", "in", "on", "for", "with", "i", "this",
}  # fmt: skip


class HashEmbedder:
    """Bag of words hashed into ``dim`` signed buckets, L2-normalised: deterministic and fast.

    Texts sharing content words land close together, which is all clustering needs.
    """

    def __init__(self, dim: int = 256, name: str = "hash-bow") -> None:
        self.dim = dim
        self.name = name
        self.calls: list[int] = []

    def _token_vector(self, token: str) -> tuple[int, float]:
        h = _stable("embed", token)
        return h % self.dim, 1.0 if (h >> 20) % 2 else -1.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            tokens = [w for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOP]
            for token in tokens or ["<empty>"]:
                j, sign = self._token_vector(token.rstrip("s") or token)
                out[i, j] += sign
            out[i] /= np.linalg.norm(out[i]) or 1.0
        return out
