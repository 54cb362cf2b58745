"""Markdown from datasets is rendered, but never as live markup."""

from __future__ import annotations

from annotations.markdown import render_markdown, render_turns


def test_markdown_features_render():
    html = render_markdown(
        "# Title\n\n*em* **strong** `code`\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    for tag in ("<h1>", "<em>", "<strong>", "<code>", "<li>", "<table>"):
        assert tag in html


def test_code_blocks_keep_their_language_and_escape_their_content():
    html = render_markdown("```js\nif (a < b) { alert('<x>') }\n```")
    assert '<pre><code class="language-js">' in html
    assert "a &lt; b" in html
    assert "&lt;x&gt;" in html


def test_raw_html_and_dangerous_links_are_neutralised():
    html = render_markdown(
        "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
        "[a](javascript:alert(3)) [b](https://example.org) ![c](https://tracker.example/p.gif)"
    )
    assert "<script" not in html
    assert "<img" not in html
    assert 'href="javascript' not in html
    assert 'href="https://example.org" rel="noopener noreferrer nofollow"' in html


def test_empty_input():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""


def test_turns_keep_roles_and_tolerate_odd_shapes():
    turns = render_turns(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}, "bare"]
    )
    assert [t["label"] for t in turns] == ["User", "Assistant", "User"]
    assert turns[1]["content"] == ""
    assert render_turns("not a list") == []
