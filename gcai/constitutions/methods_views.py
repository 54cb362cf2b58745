"""The methods page: docs/methods.md, where every preset's settings meet their sources."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils.safestring import SafeString

from annotations.markdown import render_markdown


@cache
def _methods_html() -> SafeString | None:
    path = settings.BASE_DIR / "docs" / "methods.md"
    if not path.is_file():
        return None
    return render_markdown(path.read_text(encoding="utf-8"))


@login_required
def methods(request):
    """The same document for every signed-in user: it describes code, not study data."""
    html = _methods_html()
    if html is None:
        raise Http404("docs/methods.md is not part of this installation.")
    return render(request, "constitutions/methods.html", {"html": html})
