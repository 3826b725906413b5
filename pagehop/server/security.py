"""Errors as OpenAI-style JSON, the API key check, and the bounded queue of questions answered at once."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import threading
from collections import deque
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("pagehop.server")

# Paths a caller may reach without the API key: liveness, and the schema (it holds no data).
OPEN_PATHS = frozenset({"/api/health", "/openapi.json", "/docs", "/redoc"})
PROTECTED_PREFIXES = ("/api/", "/v1/")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """An error the client caused or must retry; rendered as ``{"error": {"message", "type"}}``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error, ours, FastAPI's validation and Starlette's 404/405, leaves as the same JSON shape."""

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, exc.headers)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return error_response(422, f"invalid request: {problems}")

    async def unexpected_error(_: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        return error_response(500, f"internal error: {type(exc).__name__}")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, unexpected_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def key_matches(given: str | None, expected: str) -> bool:
    # Constant-time comparison: the key must not leak through response timing.
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` (what the openai client sends) or ``X-API-Key``."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


class ApiKeyMiddleware:
    """With a key configured, /api and /v1 answer 401 unless the request carries it.

    Plain ASGI (not BaseHTTPMiddleware): it never wraps ``receive``, so a long stream sees the
    client's real disconnect and nothing else.
    """

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            protected = path.startswith(PROTECTED_PREFIXES) and path not in OPEN_PATHS
            if protected and not key_matches(presented_key(Request(scope)), self.api_key):
                response = error_response(401, "missing or wrong API key (send 'Authorization: Bearer <key>')")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class UploadSizeMiddleware:
    """Refuse a request body over ``max_bytes`` with 413 before it is read: at once from its
    Content-Length, or, for a body sent without one, as soon as the bytes received pass the limit
    (the handler then sees a disconnect and its own reply is replaced by the 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        refusal = error_response(413, f"upload larger than the {self.max_bytes / 2**20:g} MB limit")
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await refusal(scope, receive, send)
            return
        received = 0
        too_large = started = False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the app's answer to a cut-off body; the 413 below replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await refusal(scope, receive, send)


class AskQueue:
    """At most ``limit`` questions answered at once; up to ``max_queue`` more wait their turn, first come
    first served, each for at most ``wait_s``. Only a caller who finds the queue full is turned away,
    at once, with 429 and ``Retry-After``; one that waited too long gets 503.

    Slots are taken on the event loop and released from worker threads, so the state sits behind
    a threading lock and a waiter is woken through its own loop.
    """

    RETRY_AFTER_S = 5

    def __init__(self, limit: int, max_queue: int, wait_s: float) -> None:
        self.limit = limit
        self.max_queue = max_queue
        self.wait_s = wait_s
        self.busy = 0
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Condition(threading.RLock())

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def admit(self) -> AskTicket:
        """A slot now, or a place in the queue (call :meth:`AskTicket.wait`); ApiError 429 when it is full."""
        with self._lock:
            if self.busy < self.limit and not self._waiters:
                self.busy += 1
                return AskTicket(self, None, ahead=0)
            if len(self._waiters) >= self.max_queue:
                raise ApiError(
                    429,
                    f"{self.limit} questions are being answered and {len(self._waiters)} are waiting; retry shortly",
                    headers={"Retry-After": str(self.RETRY_AFTER_S)},
                )
            waiter = _Waiter(asyncio.get_running_loop().create_future())
            self._waiters.append(waiter)
            return AskTicket(self, waiter, ahead=len(self._waiters))

    def release(self) -> None:
        """Free a slot: it passes straight to the longest waiter, if any."""
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                waiter.future.get_loop().call_soon_threadsafe(_wake, waiter.future)
                return
            self.busy -= 1
            self._lock.notify_all()

    def _leave(self, waiter: _Waiter) -> bool:
        """Take ``waiter`` out of the queue; False when a slot was already handed to it."""
        with self._lock:
            if waiter.granted:
                return False
            self._waiters.remove(waiter)
            return True

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no question is in flight (a timed-out one may still be running); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self.busy == 0 and not self._waiters, timeout_s)


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[None]
    granted: bool = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AskTicket:
    """One admitted question: :meth:`wait` for its slot, :meth:`release` it when the answer is done.

    A ticket dropped without either (a client that went away before its stream started) gives its
    place back when it is garbage-collected, so an abandoned request never holds a slot.
    """

    def __init__(self, queue: AskQueue, waiter: _Waiter | None, ahead: int) -> None:
        self.queue = queue
        self.ahead = ahead  # questions waiting before this one when it was admitted (0: it runs at once)
        self._waiter = waiter
        self._holding = waiter is None
        self._finished = False

    async def wait(self) -> None:
        """Until this ticket holds a slot; ApiError 503 after ``wait_s``."""
        waiter = self._waiter
        if waiter is None or self._holding:
            return
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), self.queue.wait_s)
        except TimeoutError:
            if self.queue._leave(waiter):
                self._finished = True
                raise ApiError(
                    503,
                    f"waited {self.queue.wait_s:g} s for one of {self.queue.limit} answer slots; retry later",
                    headers={"Retry-After": str(AskQueue.RETRY_AFTER_S)},
                ) from None
        except BaseException:  # cancelled or closed: the client went away while queued
            self.abandon()
            raise
        self._holding = True

    def release(self) -> None:
        if not self._finished:
            self._finished = True
            if self._holding or (self._waiter is not None and self._waiter.granted):
                self.queue.release()

    def abandon(self) -> None:
        """Give up the place or the slot, whichever this ticket has."""
        if self._finished:
            return
        if self._waiter is not None and not self._holding and self.queue._leave(self._waiter):
            self._finished = True
            return
        self.release()

    def __del__(self) -> None:
        self.abandon()


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; a name we cannot judge counts as reachable from outside."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
