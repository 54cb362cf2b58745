"""One ``openai`` SDK client and one concurrency budget per process and server.

Building a client creates an HTTP connection pool and loads the CA bundle into a TLS
context: about 30 ms of CPU, several times that on a busy machine. A worker builds a
ChatModel for every batch, so a fresh client each time cost more CPU than the batch's
calls, and threw away warm keep-alive connections. The client is thread-safe; the key
holds the process id so a forked worker process never reuses its parent's sockets.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_clients: dict[tuple[int, str | None, str, float], Any] = {}
_slots: dict[tuple[int, str | None, int], threading.BoundedSemaphore] = {}
_lock = threading.Lock()


def shared_openai_client(*, base_url: str | None, api_key: str | None, timeout: float) -> Any:
    """The process's ``openai.OpenAI`` client for this server, key and timeout."""
    key = (os.getpid(), base_url, api_key or "not-needed", float(timeout))
    with _lock:
        client = _clients.get(key)
        if client is None:
            import openai  # lazy: keeps `import gcai.core` cheap

            client = openai.OpenAI(
                base_url=base_url,
                # Local servers ignore the key but the SDK insists on one.
                api_key=key[2],
                timeout=timeout,
                max_retries=0,  # our own loop counts, backs off and checks cancellation
            )
            _clients[key] = client
    return client


def shared_slots(*, base_url: str | None, concurrency: int) -> threading.BoundedSemaphore:
    """The process's semaphore bounding in-flight calls to this server at ``concurrency``."""
    key = (os.getpid(), base_url, concurrency)
    with _lock:
        slots = _slots.get(key)
        if slots is None:
            slots = _slots[key] = threading.BoundedSemaphore(concurrency)
    return slots
