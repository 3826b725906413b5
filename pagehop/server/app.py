"""`pagehop serve`: one FastAPI app with the JSON API (/api), the OpenAI-compatible API (/v1) and the chat UI (/ui).

    app = create_app(settings)          # for uvicorn, tests, or mounting elsewhere
    serve(settings, host, port)         # what the CLI calls

The workspace and the engine are opened once at startup and closed at shutdown. Questions run
on worker threads, at most ``server.max_concurrent_requests`` at once, each bounded by
``server.request_timeout_s``; more wait in a queue of ``server.max_queue`` (each at most
``server.queue_timeout_s``), and only a caller who finds it full is refused (429). A stream's
response starts at once, so its client sees the question accepted while it waits. Ingestion and
deletion are serialised by one lock, because the workspace has a single writer.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

from pagehop.agents.state import Answer
from pagehop.config import Settings
from pagehop.engine import AgentEvent, Pagehop
from pagehop.server.security import (
    ApiError,
    ApiKeyMiddleware,
    AskQueue,
    AskTicket,
    UploadSizeMiddleware,
    install_error_handlers,
    is_loopback,
)
from pagehop.workspace import Workspace

# A product must not phone home: set before anything imports gradio.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

UPLOADS_DIR = "uploads"


@dataclass
class ServerState:
    """What every request handler shares: the open workspace, the engine and the limits."""

    settings: Settings
    workspace: Workspace
    engine: Pagehop
    slots: AskQueue
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def timeout_s(self) -> float:
        return self.settings.server.request_timeout_s

    async def ask(self, question: str, thread_id: str | None) -> Answer:
        """The engine's answer, or ApiError 429 (queue full), 503 (waited too long), 400 (bad question), 504."""
        ticket = self.slots.admit()
        await ticket.wait()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(None, self.engine.ask, question, thread_id)
        except BaseException:
            ticket.release()
            raise
        # The slot stays taken until the worker really finishes, even after a timeout answered 504.
        future.add_done_callback(lambda _: ticket.release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            raise ApiError(504, f"no answer within {self.timeout_s:g} s") from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    async def stream(self, question: str, thread_id: str | None) -> QueuedEvents:
        """Stage events as they happen. Admission happens here, so a full queue is a 429 status;
        the wait for a slot happens while iterating, after the response has started."""
        return QueuedEvents(self, self.slots.admit(), question, thread_id)


class QueuedEvents:
    """A question's stage events: first the wait for a slot, then the engine's stream on a worker thread."""

    def __init__(self, state: ServerState, ticket: AskTicket, question: str, thread_id: str | None) -> None:
        self.state = state
        self.ticket = ticket
        self.question = question
        self.thread_id = thread_id

    @property
    def ahead(self) -> int:
        """Questions that were waiting before this one when it was accepted."""
        return self.ticket.ahead

    def __aiter__(self) -> AsyncIterator[AgentEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[AgentEvent]:
        ticket, state = self.ticket, self.state
        await ticket.wait()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[AgentEvent | BaseException | None] = asyncio.Queue()

        def produce() -> None:
            try:
                for event in state.engine.stream(self.question, self.thread_id):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except BaseException as exc:  # handed to the consumer, which reports it
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)
                ticket.release()

        try:
            threading.Thread(target=produce, name="pagehop-stream", daemon=True).start()
        except BaseException:
            ticket.release()
            raise
        async for event in _drain(queue, loop.time() + state.timeout_s, state.timeout_s):
            yield event


async def _drain(
    queue: asyncio.Queue[AgentEvent | BaseException | None], deadline: float, timeout_s: float
) -> AsyncIterator[AgentEvent]:
    loop = asyncio.get_running_loop()
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), max(deadline - loop.time(), 0.001))
        except TimeoutError:
            raise ApiError(504, f"no answer within {timeout_s:g} s") from None
        if item is None:
            return
        if isinstance(item, ValueError):
            raise ApiError(400, str(item))
        if isinstance(item, BaseException):
            raise item
        yield item


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.pagehop
    return state


def create_app(settings: Settings, *, ui: bool = True) -> FastAPI:
    """The whole server as an ASGI app; the workspace opens when the app starts (lifespan)."""
    from pagehop.server.api import router as api_router
    from pagehop.server.openai_api import router as openai_router

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = open_state(settings)
        app.state.pagehop = state
        try:
            yield
        finally:
            await asyncio.to_thread(close_state, state)

    app = FastAPI(
        title="pagehop",
        summary="Agentic deep search over documents and a knowledge graph",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(UploadSizeMiddleware, max_bytes=int(settings.server.max_upload_mb * 2**20))
    api_key = settings.server.api_key.get_secret_value() if settings.server.api_key else None
    if api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=api_key)
    app.include_router(api_router)
    app.include_router(openai_router)
    if ui:
        from pagehop.server.ui import UI_PATH, mount_ui

        mount_ui(app, settings, api_key)
    home = f"{UI_PATH}/" if ui else "/docs"

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """A browser pointed at the printed address lands on the chat (or the API docs without a UI)."""
        return RedirectResponse(home)

    return app


def open_state(settings: Settings, warn: Any = None) -> ServerState:
    from pagehop.assemble import open_engine, open_workspace

    workspace = open_workspace(settings, warn=warn or _log_warning)
    try:
        engine = open_engine(workspace)
    except BaseException:
        workspace.close()
        raise
    (workspace.root / UPLOADS_DIR).mkdir(parents=True, exist_ok=True)
    server = settings.server
    slots = AskQueue(server.max_concurrent_requests, server.max_queue, server.queue_timeout_s)
    return ServerState(settings, workspace, engine, slots)


SHUTDOWN_GRACE_S = 120.0


def close_state(state: ServerState) -> None:
    """Close the engine and workspace once in-flight work is done: a question that timed out (504)
    still runs on its worker thread, and closing its SQLite connection under it would crash the process."""
    if not state.slots.wait_idle(SHUTDOWN_GRACE_S):
        _log_warning(f"{state.slots.busy} question(s) still running at shutdown; leaving the workspace open")
        return
    with state.ingest_lock:
        state.engine.close()
        state.workspace.close()


def _log_warning(message: str) -> None:
    import logging

    logging.getLogger("pagehop.server").warning(message)


class UnsafeBind(ValueError):
    """Binding beyond loopback without an API key would open the workspace to the network."""


def check_bind(settings: Settings, host: str) -> None:
    if not is_loopback(host) and settings.server.api_key is None:
        raise UnsafeBind(
            f"refusing to serve on {host!r} without an API key: anyone on the network could read and delete "
            "your documents. Set PAGEHOP_SERVER__API_KEY (or server.api_key in pagehop.toml), "
            "or bind 127.0.0.1."
        )


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the server with uvicorn until interrupted; raises UnsafeBind for an open non-loopback bind."""
    import uvicorn

    host = host or settings.server.host
    port = port or settings.server.port
    check_bind(settings, host)
    print(addresses_banner(host, port), flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def addresses(host: str, port: int) -> dict[str, str]:
    """Where each part of the server answers, as a user would type it into a browser or client."""
    shown = f"[{host}]" if ":" in host else host  # an IPv6 literal needs brackets in a URL
    base = f"http://{shown}:{port}"
    return {"chat UI": f"{base}/", "JSON API": f"{base}/api (docs: {base}/docs)", "OpenAI-compatible API": f"{base}/v1"}


def addresses_banner(host: str, port: int) -> str:
    return "\n".join(f"pagehop {name}: {url}" for name, url in addresses(host, port).items())
