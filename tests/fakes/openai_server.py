"""A fake OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

The real ``openai`` SDK talks to it over real sockets, so retries, timeouts and
structured-output fallbacks are exercised exactly as in production::

    def answer(req):                       # req is the parsed JSON body
        return {"principles": ["Select the response that is honest."]}

    with FakeOpenAIServer(responder=answer) as server:
        model = OpenAIChatModel(model="fake", base_url=server.base_url)
        server.inject(Fault.rate_limit(retry_after=0.01), Fault.server_error())
        ...
        assert server.chat_calls == 3

A responder returns a ``str`` (the message content), a ``dict``/``list`` (JSON-encoded
for you) or a :class:`Fault`. Faults queued with :meth:`FakeOpenAIServer.inject` are
one-shot and served before the responder, in order.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import math
import re
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], Any]

TRUNCATED_JSON = '{"principles": ["Select the response that is more hon'


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour. Build with the class methods, e.g. ``Fault.rate_limit()``."""

    kind: str
    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    content: str | None = None
    message: str = ""
    endpoint: str = "chat"  # "chat", "embeddings" or "any"

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = 0.0, endpoint: str = "chat") -> Fault:
        """HTTP 429 with ``Retry-After`` (seconds, or an HTTP date string; None omits it)."""
        header = None if retry_after is None else _fmt_retry_after(retry_after)
        return cls(
            "rate_limit",
            status=429,
            retry_after=header,
            endpoint=endpoint,
            message="Rate limit reached",
        )

    @classmethod
    def server_error(cls, status: int = 500, endpoint: str = "chat") -> Fault:
        """An HTTP 5xx with an OpenAI-style error body."""
        return cls("server_error", status=status, endpoint=endpoint, message="Internal error")

    @classmethod
    def slow(cls, delay: float, endpoint: str = "chat") -> Fault:
        """Answer normally, but only after ``delay`` seconds (past the client timeout)."""
        return cls("slow", delay=delay, endpoint=endpoint)

    @classmethod
    def invalid_json(cls, content: str = "Sure! Here you go: {not valid json") -> Fault:
        """HTTP 200 whose message content is not parseable JSON."""
        return cls("invalid_json", content=content)

    @classmethod
    def truncated(cls, content: str = TRUNCATED_JSON) -> Fault:
        """HTTP 200 with JSON cut short and ``finish_reason="length"``."""
        return cls("truncated", content=content)

    @classmethod
    def empty_choices(cls) -> Fault:
        """HTTP 200 with ``"choices": []``."""
        return cls("empty_choices")

    @classmethod
    def bad_request(cls, message: str = "Invalid request", endpoint: str = "chat") -> Fault:
        """HTTP 400 (not retryable)."""
        return cls("bad_request", status=400, message=message, endpoint=endpoint)

    @classmethod
    def disconnect(cls, endpoint: str = "chat") -> Fault:
        """Close the connection without answering (a connection error for the client)."""
        return cls("disconnect", endpoint=endpoint)

    @classmethod
    def text(cls, content: str, finish_reason: str = "stop") -> Fault:
        """A normal answer with exactly this content (and optionally a finish reason)."""
        return cls("text", content=content, message=finish_reason)


def _fmt_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return repr(float(value)) if value != int(value) else str(int(value))


def http_date(seconds_from_now: float) -> str:
    """An HTTP date ``seconds_from_now`` in the future (for ``Retry-After`` tests)."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# -- helpers for writing responders ----------------------------------------------------


def last_user_message(request: dict[str, Any]) -> str:
    """Content of the last user message of a chat request."""
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def system_message(request: dict[str, Any]) -> str:
    """Content of the first system message (empty string if none)."""
    for message in request.get("messages", []):
        if message.get("role") == "system":
            return str(message.get("content", ""))
    return ""


def request_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the client asked for, whichever structured-output mode it used.

    Looks at ``response_format.json_schema.schema``, then at the schema the client
    embeds in the system message when the server does not support json_schema.
    """
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    if isinstance(fmt.get("schema"), dict):
        return fmt["schema"]
    marker = "conform to this JSON schema:\n"
    for message in request.get("messages", []):
        content = str(message.get("content", ""))
        if marker in content:
            tail = content.split(marker, 1)[1]
            try:
                value, _ = json.JSONDecoder().raw_decode(tail)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def example_for(schema: dict[str, Any]) -> Any:
    """A small deterministic value that satisfies ``schema`` (the subset GCAI uses)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "anyOf" in schema:
        return example_for(schema["anyOf"][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        keys = schema.get("required", list(props))
        return {k: example_for(props.get(k, {"type": "string"})) for k in keys}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        count = min(count, int(schema.get("maxItems", count)))
        return [example_for(schema.get("items", {"type": "string"})) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "x" * max(int(schema.get("minLength", 1)), 1) if "minLength" in schema else "example"


def default_responder(request: dict[str, Any]) -> Any:
    """Schema-valid example JSON when a schema was requested, else a short text."""
    schema = request_schema(request)
    if schema is not None:
        return example_for(schema)
    return "ok"


def fake_embedding(text: str, dim: int = 64) -> list[float]:
    """Deterministic unit vector from hashed words: texts sharing words are closer."""
    vec = [0.0] * dim
    words = re.findall(r"\w+", text.lower()) or [""]
    for word in words:
        digest = hashlib.sha256(word.encode("utf-8")).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vec[index] += 1.0 if digest[4] % 2 == 0 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _count_tokens(text: str) -> int:
    # Roughly what a BPE tokenizer gives for English: deterministic, which is what matters.
    return max(1, (len(text) + 3) // 4)


# -- the server ----------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float
    fault: str | None = None


@dataclass
class _State:
    responder: Responder
    latency: float
    structured_output: bool
    json_mode: bool
    embedding_dim: int
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: the SDK pools connections, as against a real server.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms), which would swamp latency measurements.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._send_json(404, _error("not found", "not_found"))

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, _error("request body is not JSON", "invalid_request_error"))
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        endpoint = (
            "chat"
            if path.endswith("/chat/completions")
            else "embeddings"
            if path.endswith("/embeddings")
            else None
        )
        record = RecordedRequest(path, body, dict(self.headers.items()), time.time())
        with state.lock:
            state.requests.append(record)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            fault = self._pop_fault(state, endpoint)
        record.fault = fault.kind if fault else None
        try:
            if state.latency:
                time.sleep(state.latency)
            if endpoint is None:
                self._send_json(404, _error(f"unknown path {path}", "not_found"))
            elif endpoint == "embeddings":
                self._embeddings(body, fault)
            else:
                self._chat(body, fault)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test); nothing to answer
        except Exception as exc:
            # A bug in a test's responder: keep it visible instead of a bare dropped
            # connection, and let the test inspect it through `server.errors`.
            traceback.print_exc()
            with state.lock:
                state.errors.append(exc)
            self._send_json(500, _error(f"responder raised {exc!r}", "server_error"))
        finally:
            with state.lock:
                state.in_flight -= 1

    @staticmethod
    def _pop_fault(state: _State, endpoint: str | None) -> Fault | None:
        for i, fault in enumerate(state.faults):
            if fault.endpoint in ("any", endpoint):
                del state.faults[i]
                return fault
        return None

    # -- endpoints --

    def _common_fault(self, fault: Fault | None) -> bool:
        """Serve transport-level faults; return True if the request has been answered."""
        if fault is None:
            return False
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "disconnect":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault.kind in ("rate_limit", "server_error", "bad_request"):
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            code = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(
                fault.status, "server_error"
            )
            self._send_json(fault.status, _error(fault.message, code), headers)
            return True
        return False

    def _chat(self, body: dict[str, Any], fault: Fault | None) -> None:
        state = self.server.state
        if self._common_fault(fault):
            return
        fmt = (body.get("response_format") or {}).get("type")
        if (fmt == "json_schema" and not state.structured_output) or (
            fmt == "json_object" and not state.json_mode
        ):
            self._send_json(
                400,
                _error(f"response_format type {fmt!r} is not supported", "invalid_request_error"),
            )
            return
        if fault is None or fault.kind == "slow":
            answer = state.responder(body)
            if isinstance(answer, Fault):
                # A responder may misbehave on chosen requests; a slow answer from a
                # responder still needs content, which the default responder supplies.
                if self._common_fault(answer):
                    return
                fault = answer
                if fault.kind == "slow":
                    answer = default_responder(body)
            if not isinstance(answer, Fault):
                fault = None
                content = answer if isinstance(answer, str) else json.dumps(answer)
        finish = "stop"
        choices_empty = False
        if fault is not None:
            content = fault.content or ""
            if fault.kind == "truncated":
                finish = "length"
            elif fault.kind == "text":
                finish = fault.message or "stop"
            elif fault.kind == "empty_choices":
                choices_empty = True
        prompt_tokens = sum(
            _count_tokens(str(m.get("content", ""))) + 4 for m in body.get("messages", [])
        )
        completion_tokens = _count_tokens(content)
        state_n = len(state.requests)
        self._send_json(
            200,
            {
                "id": f"chatcmpl-fake-{state_n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": []
                if choices_empty
                else [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _embeddings(self, body: dict[str, Any], fault: Fault | None) -> None:
        if self._common_fault(fault):
            return
        dim = int(body.get("dimensions") or self.server.state.embedding_dim)
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        data = []
        for i, text in enumerate(inputs):
            vector = fake_embedding(str(text), dim)
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(_count_tokens(str(t)) for t in inputs)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake-embedding"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        blob = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(blob)


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 refuses connections when 16+ clients connect at once.
    request_queue_size = 256
    state: _State


class FakeOpenAIServer:
    """OpenAI-compatible server on an ephemeral 127.0.0.1 port, run in a background thread.

    Args:
        responder: ``fn(request_dict) -> str | dict | list | Fault``; defaults to
            :func:`default_responder` (schema-valid example JSON, or ``"ok"``).
        latency: seconds every request waits before being answered (benchmarks).
        structured_output: if False, ``response_format`` json_schema gets a 400,
            like servers without structured output.
        json_mode: if False, ``response_format`` json_object gets a 400 too.
        embedding_dim: dimension of the deterministic embeddings.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        structured_output: bool = True,
        json_mode: bool = True,
        embedding_dim: int = 64,
    ) -> None:
        self._state = _State(
            responder=responder or default_responder,
            latency=latency,
            structured_output=structured_output,
            json_mode=json_mode,
            embedding_dim=embedding_dim,
        )
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> FakeOpenAIServer:
        """Bind and serve in a daemon thread; idempotent."""
        if self._httpd is None:
            httpd = _Server(("127.0.0.1", 0), _Handler)
            httpd.state = self._state
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-openai",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses --

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """Pass this as ``base_url`` to the openai SDK / OpenAIChatModel."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting --

    @property
    def responder(self) -> Responder:
        return self._state.responder

    @responder.setter
    def responder(self, fn: Responder) -> None:
        self._state.responder = fn

    @property
    def latency(self) -> float:
        return self._state.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._state.latency = seconds

    @property
    def structured_output(self) -> bool:
        return self._state.structured_output

    @structured_output.setter
    def structured_output(self, value: bool) -> None:
        self._state.structured_output = value

    def inject(self, *faults: Fault) -> None:
        """Queue one-shot faults; each is served to the next matching request, in order."""
        with self._state.lock:
            self._state.faults.extend(faults)

    @property
    def pending_faults(self) -> int:
        """Faults queued but not served yet."""
        with self._state.lock:
            return len(self._state.faults)

    # -- inspection --

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    def bodies(self, endpoint: str = "chat") -> list[dict[str, Any]]:
        """JSON bodies of the requests to ``"chat"`` or ``"embeddings"``."""
        suffix = "/chat/completions" if endpoint == "chat" else "/embeddings"
        return [r.body for r in self.requests if r.path.rstrip("/").endswith(suffix)]

    @property
    def chat_calls(self) -> int:
        """Number of POST /v1/chat/completions received."""
        return len(self.bodies("chat"))

    @property
    def embedding_calls(self) -> int:
        """Number of POST /v1/embeddings received."""
        return len(self.bodies("embeddings"))

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by the responder (each was answered with HTTP 500)."""
        with self._state.lock:
            return list(self._state.errors)

    @property
    def max_in_flight(self) -> int:
        """Most requests the server was handling at the same moment."""
        return self._state.max_in_flight

    def reset(self) -> None:
        """Forget recorded requests, queued faults and the in-flight high-water mark."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.faults.clear()
            self._state.errors.clear()
            self._state.max_in_flight = self._state.in_flight


def serve(**kwargs: Any) -> Iterator[FakeOpenAIServer]:
    """Generator form for pytest fixtures: ``yield from serve(responder=...)``."""
    with FakeOpenAIServer(**kwargs) as server:
        yield server
