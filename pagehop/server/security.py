"""Errors as OpenAI-style JSON, the API key check, and the bound on questions answered at once."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

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


class ApiKeyMiddleware(BaseHTTPMiddleware):
    """With a key configured, /api and /v1 answer 401 unless the request carries it."""

    def __init__(self, app: object, api_key: str) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.api_key = api_key

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        protected = path.startswith(PROTECTED_PREFIXES) and path not in OPEN_PATHS
        if protected and not key_matches(presented_key(request), self.api_key):
            return error_response(401, "missing or wrong API key (send 'Authorization: Bearer <key>')")
        return await call_next(request)


class UploadSizeMiddleware(BaseHTTPMiddleware):
    """Refuse an oversized upload from its Content-Length, before a byte of it is read."""

    def __init__(self, app: object, max_bytes: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if request.method == "POST" and length and length.isdigit() and int(length) > self.max_bytes:
            return error_response(413, f"upload larger than the {self.max_bytes / 2**20:g} MB limit")
        return await call_next(request)


class AskSlots:
    """At most ``limit`` questions in flight; one more is refused at once (429) instead of queueing."""

    RETRY_AFTER_S = 5

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0
        self._idle = threading.Condition()  # Gradio handlers and the event loop both take slots

    def acquire(self) -> None:
        with self._idle:
            if self.busy >= self.limit:
                raise ApiError(
                    429,
                    f"{self.limit} questions are already being answered; retry shortly",
                    headers={"Retry-After": str(self.RETRY_AFTER_S)},
                )
            self.busy += 1

    def release(self) -> None:
        with self._idle:
            self.busy -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no question is in flight (a timed-out one may still be running); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self.busy == 0, timeout_s)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; a name we cannot judge counts as reachable from outside."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
