"""Drive the scripted judge of tests/core/scripted.py through the fake OpenAI server.

The pipeline under test talks HTTP to the fake server through the real openai SDK; this
adapter turns each HTTP request back into a ChatRequest, infers what the pipeline asked
for from the prompt's tagged blocks, and lets the rule-following Judge answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gcai.core.llm.base import ChatRequest
from gcai.core.types import Message
from tests.core.scripted import Judge, tag


def purpose_of(user: str) -> str:
    if "<response_a>" in user and "<rules>" not in user:
        return "evaluate.judge"
    if "<selected_response>" in user or "<sample>" in user:
        return "icai.generate"
    if "<rules>" in user:
        return "vote"
    if "<reason>" in user:
        return "gcai.contextual"
    if "<statement>" in user:
        return "gcai.general"
    if "<principle_1>" in user:
        return "gcai.merge"
    if "<principles>" in user:
        return "cluster.summary"
    raise AssertionError(f"unexpected request: {user[:200]!r}")


def judge_responder(judge: Judge, tamper: Callable[[str, dict], Any] | None = None):
    """A fake-server responder answering as ``judge``; ``tamper(purpose, request)`` may
    return a Fault or raw text to inject instead."""

    def respond(request: dict) -> Any:
        # A repair retry appends the bad answer and a correction request; the task is
        # still the one in the first user message.
        messages: list[Message] = []
        for m in request["messages"]:
            messages.append(Message(m["role"], str(m.get("content", ""))))
            if m["role"] == "user":
                break
        purpose = purpose_of(messages[-1].content)
        if tamper is not None:
            fault = tamper(purpose, request)
            if fault is not None:
                return fault
        if purpose == "evaluate.judge":
            return evaluation_answer(judge, messages[-1].content, request)
        return judge.answer(ChatRequest(messages=messages, purpose=purpose))

    return respond


def evaluation_answer(judge: Judge, user: str, request: dict) -> Any:
    """A judge told a constitution follows the first of its principles that decides;
    without a constitution it follows its own first deciding rule."""
    a, b = tag(user, "response_a") or "", tag(user, "response_b") or ""
    schema = (request.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if "applicable" in str(schema):
        return {"applicable": [], "decisive": 0}
    constitution = tag(user, "constitution")
    rules = judge.rules
    if constitution is not None:
        rules = [r for line in constitution.splitlines() if (r := judge.rule_for(line)) is not None]
    for rule in rules:
        verdict = rule.decide(a, b)
        if verdict in ("A", "B"):
            return {"choice": verdict}
    return {"choice": "none"}
