"""A progress bar on stderr for the researcher commands: ``stage [####....] 3/8  12s``."""

from __future__ import annotations

import logging
import time
from typing import TextIO

from django.core.management.base import OutputWrapper


class StepBar:
    """Called with (what, done, total); redraws in place, a new line when ``what`` changes."""

    def __init__(self, stream: TextIO, *, width: int = 24) -> None:
        self.stream = stream
        self._plain = isinstance(stream, OutputWrapper)
        self.width = width
        self.started = time.monotonic()
        self._what = ""
        self._last = 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        final = total and done >= total
        if what == self._what and now - self._last < 0.1 and not final:
            return
        if self._what and what != self._what:
            self._write("\n")
        self._what, self._last = what, now
        total = max(total, 1)
        filled = int(min(1.0, done / total) * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self._write(f"\r{what} [{bar}] {done}/{total}  {now - self.started:.0f}s")

    def finish(self) -> None:
        if self._what:
            self._write("\n")
            self._what = ""

    def _write(self, text: str) -> None:
        if self._plain:
            self.stream.write(text, style_func=str, ending="")  # type: ignore[call-arg]
        else:
            self.stream.write(text)
        self.stream.flush()


def quiet_http_logs(verbosity: int) -> None:
    """One log line per LLM request would scroll the progress bar away; keep them for
    ``--verbosity 2`` and up."""
    if verbosity < 2:
        for name in ("httpx", "httpx2", "openai"):
            logging.getLogger(name).setLevel(logging.WARNING)
