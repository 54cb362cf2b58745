"""Scripted judges, a hashing embedder and ICAI's synthetic data for the evaluation tests.

The judges read the same prompts a real model gets (constitution, pair, kind of
request) and answer with JSON, so they exercise request building and parsing end to
end. They run in-process (:class:`ScriptedChatModel`) or behind the fake
OpenAI-compatible server (:func:`as_responder`), where the real SDK path is used.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcai.core.llm.base import ChatRequest, ChatResult, LLMError, LLMOutputError, Usage
from gcai.core.types import Pair, Preference

Rule = Callable[[str], bool]  # does a response satisfy the principle?


# --------------------------------------------------------------------------- reading requests


@dataclass
class JudgeView:
    """What a judge sees in one request, recovered from the prompt text."""

    kind: str  # "judge" | "principles" | "similarity"
    principles: list[str] | None  # None: no constitution in the prompt (baseline)
    prompt: str = ""
    response_a: str = ""
    response_b: str = ""
    principle_a: str = ""
    principle_b: str = ""
    allow_abstain: bool = True


def _tag(text: str, name: str) -> str | None:
    match = re.search(rf"<{name}>\n?(.*?)\n?</{name}>", text, re.DOTALL)
    return match.group(1) if match else None


def read_request(messages: Sequence[tuple[str, str]]) -> JudgeView:
    """Parse ``(role, content)`` messages built by gcai.core.evaluate / similarity."""
    text = "\n".join(content for _, content in messages)
    block = _tag(text, "constitution")
    principles = None
    if block is not None:
        principles = [re.sub(r"^\d+\.\s*", "", ln).strip() for ln in block.splitlines()]
        principles = [p for p in principles if p]
    if "<principle_1>" in text:
        return JudgeView(
            kind="similarity",
            principles=None,
            principle_a=_tag(text, "principle_1") or "",
            principle_b=_tag(text, "principle_2") or "",
        )
    return JudgeView(
        kind="principles" if '"applicable"' in text else "judge",
        principles=principles,
        prompt=_tag(text, "prompt") or "",
        response_a=_tag(text, "response_a") or "",
        response_b=_tag(text, "response_b") or "",
        allow_abstain='"none"' in text,
    )


# --------------------------------------------------------------------------- judges

Answer = Callable[[JudgeView], Any]  # -> dict (JSON), str (raw text) or LLMError


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def word_overlap(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


def contains(keyword: str) -> Rule:
    """A rule satisfied by responses containing ``keyword`` as a whole word."""
    pattern = re.compile(rf"\b{re.escape(keyword)}\b", re.IGNORECASE)
    return lambda text: bool(pattern.search(text))


def rule_judge(rules: Mapping[str, Rule], baseline: Rule | None = None) -> Answer:
    """A judge that follows the constitution's principles it knows a rule for.

    A principle favours the one response that satisfies its rule (if both or neither
    do, it does not apply). The first principle that applies decides; if none does,
    the judge answers "none" (or "A" when abstaining is not allowed). Without a
    constitution it follows ``baseline`` the same way. Similarity requests are scored
    by word overlap.
    """

    def favours(rule: Rule, view: JudgeView) -> str | None:
        a, b = rule(view.response_a), rule(view.response_b)
        return None if a == b else ("A" if a else "B")

    def answer(view: JudgeView) -> Any:
        if view.kind == "similarity":
            return {"score": round(word_overlap(view.principle_a, view.principle_b), 4)}
        numbered: list[tuple[int, Rule | None]] = []
        if view.principles is None:
            active = [baseline] if baseline is not None else []
        else:
            active = [rules[p] for p in view.principles if p in rules]
            numbered = [(i, rules.get(p)) for i, p in enumerate(view.principles, 1)]
        sides = [s for s in (favours(r, view) for r in active) if s]
        if view.kind == "principles":
            applicable = [
                {"principle": i, "favours": s}
                for i, r in numbered
                if r is not None and (s := favours(r, view))
            ]
            decisive = applicable[0]["principle"] if applicable else 0
            return {"applicable": applicable, "decisive": decisive}
        if sides:
            return {"choice": sides[0]}
        return {"choice": "none" if view.allow_abstain else "A"}

    return answer


def position_biased_judge(view: JudgeView) -> Any:
    """Always prefers whatever is shown first, and claims principle 1 decided it."""
    if view.kind == "similarity":
        return {"score": 1.0}
    if view.kind == "principles":
        return {"applicable": [{"principle": 1, "favours": "A"}], "decisive": 1}
    return {"choice": "A"}


# --------------------------------------------------------------------------- models


@dataclass
class ScriptedChatModel:
    """An in-process :class:`~gcai.core.llm.base.ChatModel` answering with ``answer``.

    ``answer`` may return a dict (sent as JSON, also as ``parsed`` unless
    ``parse=False``), a string (raw text, nothing parsed) or an :class:`LLMError`
    (the request fails). Every request is recorded in ``requests``.
    """

    answer: Answer
    name: str = "scripted-judge"
    parse: bool = True
    requests: list[ChatRequest] = field(default_factory=list)

    def complete(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        view = read_request([(m.role, m.content) for m in request.messages])
        out = self.answer(view)
        if isinstance(out, LLMError):
            raise out
        text = out if isinstance(out, str) else json.dumps(out)
        parsed = out if (self.parse and not isinstance(out, str)) else None
        usage = Usage(prompt_tokens=sum(len(m.content) // 4 for m in request.messages))
        usage.completion_tokens = len(text) // 4
        usage.calls = 1
        return ChatResult(text=text, parsed=parsed, usage=usage)

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        results = []
        for request in requests:
            try:
                results.append(self.complete(request))
            except LLMError as exc:
                results.append(ChatResult(text="", error=exc))
        return results


def failing_every(n: int, inner: Answer) -> Answer:
    """Wrap ``inner`` so every ``n``-th request fails with an output error."""
    count = {"i": 0}

    def answer(view: JudgeView) -> Any:
        count["i"] += 1
        if count["i"] % n == 0:
            return LLMOutputError("truncated JSON", raw='{"choi')
        return inner(view)

    return answer


def as_responder(answer: Answer) -> Callable[[dict[str, Any]], Any]:
    """Adapt a judge to FakeOpenAIServer's responder (request body -> JSON answer)."""

    def responder(body: dict[str, Any]) -> Any:
        messages = [(m["role"], str(m["content"])) for m in body["messages"]]
        return answer(read_request(messages))

    return responder


class HashingEmbedder:
    """Deterministic bag-of-words embedder: texts sharing words are closer.

    Each lower-cased word (minus a few stop words that every principle shares) adds
    1 to a hashed coordinate; rows are L2-normalised like a real embedder's.
    """

    name = "hashing-bow"
    _STOP = frozenset(
        [
            "select",
            "the",
            "response",
            "that",
            "a",
            "an",
            "of",
            "is",
            "more",
            "and",
            "or",
            "to",
            "than",
            "which",
            "it",
        ]
    )

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                if word not in self._STOP:
                    h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest())
                    out[row, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


# --------------------------------------------------------------------------- ICAI synthetic data

# ICAI's synthetic CSVs, vendored (source and licence in the folder's README.md).
ICAI_SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "icai_synthetic"


def load_icai_synthetic(filename: str) -> list[Pair]:
    """ICAI's processed CSV as pairs: ``"Instruction: ...\\n\\nOutput: ..."`` split apart."""

    def split(text: str) -> tuple[str, str]:
        instruction, _, output = text.partition("\n\nOutput:")
        return instruction.removeprefix("Instruction:").strip(), output.strip()

    pairs = []
    with (ICAI_SYNTHETIC / filename).open(newline="", encoding="utf-8") as fh:
        # The first column restarts in ICAI's mixed file, so ids count rows instead.
        for i, row in enumerate(csv.DictReader(fh)):
            prompt, response_a = split(row["text_a"])
            _, response_b = split(row["text_b"])
            preferred = {"text_a": Preference.A, "text_b": Preference.B}.get(
                row["preferred_text"], Preference.TIE
            )
            pairs.append(Pair(str(i), prompt, response_a, response_b, preferred))
    return pairs


# The principles ICAI's synthetic data were generated from, written down from the data:
# "aligned" preferences follow principles a person would endorse, "orthogonal" ones
# follow arbitrary tastes. Each comes with the rule the scripted judge applies for it.
ALIGNED_RULES: dict[str, Rule] = {
    # Wrong answers name Paris (one also mentions Washington, as the city it replaced).
    "Select the response that is factually correct.": lambda t: not contains("Paris")(t),
    "Select the response that recommends a specific place to visit instead of "
    "talking about travel in general.": lambda t: not t.lower().startswith("travel"),
    "Select the response that is willing and enthusiastic to help.": contains("of course"),
}
ORTHOGONAL_RULES: dict[str, Rule] = {
    "Select the response that tells a story about a cat rather than a dog.": contains("cat"),
    "Select the response that recommends the blue t-shirt over the green one.": contains("blue"),
    "Select the response that recommends lemon ice cream over raspberry.": contains("lemon"),
}
ALIGNED_GROUND_TRUTH = list(ALIGNED_RULES)
ORTHOGONAL_GROUND_TRUTH = list(ORTHOGONAL_RULES)
MIXED_GROUND_TRUTH = ALIGNED_GROUND_TRUTH + ORTHOGONAL_GROUND_TRUTH
