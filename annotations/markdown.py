"""Safe Markdown for prompts and responses shown to annotators.

Prompts and responses come from imported datasets, so they are untrusted. Two layers:
markdown-it-py renders CommonMark with raw HTML disabled (``<script>`` in the source
comes out as text), then nh3 (the Rust ``ammonia`` sanitiser) keeps only an allow-list
of tags and attributes, so even a renderer bug cannot let markup through. Images are not
rendered (they would let a dataset make every annotator's browser fetch a remote URL).
"""

from __future__ import annotations

from typing import Any

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.enable(["table", "strikethrough"])
_md.disable("image")

_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},  # language-xxx from fenced code blocks
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}
_URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str | None) -> SafeString:
    """Render untrusted Markdown to sanitised HTML, safe to insert into a page."""
    if not text:
        return mark_safe("")
    html = _md.render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )
    return mark_safe(clean)  # sanitised by nh3 above


ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}


def render_turns(messages: Any) -> list[dict[str, Any]]:
    """Chat turns ([{"role", "content"}, ...]) ready for a template; malformed turns are
    shown as text rather than dropped, so the annotator sees what the dataset holds."""
    turns: list[dict[str, Any]] = []
    if not isinstance(messages, list):
        return turns
    for message in messages:
        if isinstance(message, dict):
            role = str(message.get("role") or "user")
            content = message.get("content")
            if not isinstance(content, str):
                content = "" if content is None else str(content)
        else:
            role, content = "user", str(message)
        turns.append(
            {
                "role": role,
                "label": ROLE_LABELS.get(role, escape(role).title()),
                "content": content,
                "html": render_markdown(content),
            }
        )
    return turns
