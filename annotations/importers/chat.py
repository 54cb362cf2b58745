"""Chat transcripts: message lists and HH-RLHF "\\n\\nHuman:/\\n\\nAssistant:" strings."""

from __future__ import annotations

import re
from typing import Any

ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System"}
_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")


def render_messages(messages: list[dict[str, str]]) -> str:
    """One text for a prompt: a lone user turn is just its words, longer chats keep roles."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(
        f"{ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages
    )


def messages_from(value: Any, *, error) -> list[dict[str, str]]:
    """Validate a list of {"role", "content"} messages."""
    if not isinstance(value, list) or not value:
        raise error("expected a non-empty list of {role, content} messages")
    messages = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise error(f"message {index + 1} is not an object with role and content")
        role, content = item.get("role"), item.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise error(f"message {index + 1} needs text 'role' and 'content'")
        role = {"human": "user", "gpt": "assistant", "bot": "assistant"}.get(role, role)
        messages.append({"role": role, "content": content})
    return messages


def hh_turns(transcript: str) -> list[dict[str, str]]:
    """Split an Anthropic HH-RLHF transcript into messages (empty list when it has no turns)."""
    matches = list(_HH_TURN.finditer(transcript))
    turns = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(transcript)
        role = "user" if match.group(1) == "Human" else "assistant"
        turns.append({"role": role, "content": transcript[match.end() : end].strip()})
    return turns


def shared_prefix(
    a: list[dict[str, str]], b: list[dict[str, str]]
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """Split two message lists into (shared turns, rest of a, rest of b).

    The final turn is never shared, so two identical transcripts still leave each side a
    response to compare.
    """
    n = 0
    limit = min(len(a), len(b)) - 1
    while n < limit and a[n] == b[n]:
        n += 1
    return a[:n], a[n:], b[n:]


def response_text(turns: list[dict[str, str]]) -> str:
    """The response side of a split transcript: the assistant's words, roles kept when the
    sides diverge over several turns."""
    if len(turns) == 1 and turns[0]["role"] == "assistant":
        return turns[0]["content"]
    return render_messages(turns) if turns else ""
