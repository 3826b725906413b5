"""A real OpenAI-compatible HTTP server on loopback that answers from a script.

Tests point `OpenAICompatibleLLM` (or the openai client) at it to exercise the real network
path with injected faults: scripted replies, malformed or empty JSON, reasoning output, slow
replies that trip client timeouts, 429 with ``Retry-After``, 5xx bursts, a connection reset
before any reply, and a body cut off mid-way. Every request body is recorded so tests can check
what was sent.

    with ScriptedOpenAIServer([Reply(status=503), Reply(content='{"answer": "x"}')]) as server:
        llm = OpenAICompatibleLLM(server.base_url, "test-model")
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer. ``raw_body`` (if set) is sent verbatim instead of a chat completion.

    Faults: ``headers`` (e.g. ``{"Retry-After": "0.05"}``), ``reset`` (close the connection with a
    TCP reset instead of answering), ``cut_after`` (announce the whole body, send this many bytes,
    then close: a reply cut mid-way).
    """

    content: str | None = "{}"
    status: int = 200
    delay_s: float = 0.0
    raw_body: str | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    reasoning_content: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    cut_after: int | None = None


Responder = Callable[[dict[str, Any]], Reply]


class ScriptedOpenAIServer:
    """Serves ``/v1/chat/completions`` (and ``/v1/models``) on 127.0.0.1 in a background thread.

    ``script`` is either a list of replies used in order (a request past the end gets HTTP 500)
    or a function from the request body to a reply.
    """

    def __init__(self, script: Sequence[Reply] | Responder, model: str = "scripted-model") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        if callable(script):
            self._responder: Responder = script
        else:
            queue = list(script)
            queue_lock = threading.Lock()

            def next_reply(_: dict[str, Any]) -> Reply:
                with queue_lock:
                    return queue.pop(0) if queue else Reply(status=500, raw_body='{"error": "script exhausted"}')

            self._responder = next_reply
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _reply_for(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
        # Outside the lock: a slow scripted reply must not hold up concurrent requests.
        return self._responder(body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": [{"id": server.model}]}))
                else:
                    self._send(404, '{"error": "not found"}')

            def do_POST(self) -> None:
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, '{"error": "not found"}')
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = server._reply_for(body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.reset:  # SO_LINGER 0: close() sends RST, the client sees "connection reset"
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                text = reply.raw_body if reply.raw_body is not None else _completion(reply)
                self._send(reply.status, text, reply.headers, reply.cut_after)

            def _send(
                self, status: int, text: str, headers: dict[str, str] | None = None, cut_after: int | None = None
            ) -> None:
                data = text.encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data if cut_after is None else data[:cut_after])
                    if cut_after is not None:
                        self.wfile.flush()
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        return Handler


def _completion(reply: Reply) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "scripted-model",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": reply.content,
                        **({"reasoning_content": reply.reasoning_content} if reply.reasoning_content else {}),
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
    )
