"""A real uvicorn server on loopback over a workspace holding the demo documents."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from pagehop.config import ServerSettings, Settings
from pagehop.demo import DEMO_DIR, DEMO_FILES
from pagehop.server.app import create_app


class LiveServer:
    def __init__(self, settings: Settings, *, ui: bool = False) -> None:
        self.settings = settings
        self.app = create_app(settings, ui=ui)
        with socket.socket() as probe:  # a free port on loopback
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.app.state.pagehop

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo documents ingested once (text channel + knowledge graph); modules copy it."""
    from pagehop.assemble import open_workspace
    from pagehop.ingest import ingest

    root = tmp_path_factory.mktemp("demo") / "ws"
    with open_workspace(Settings(workspace=root)) as workspace:
        report = ingest(workspace, [DEMO_DIR / name for name in DEMO_FILES], progress=False)
    assert report.ok and len(report.ingested) == 3, report.summary()
    return root


@pytest.fixture(scope="session")
def live_server() -> object:
    """``with live_server(demo_workspace, target, ui=False, **server_settings) as live: ...``"""
    return _live_server


@contextmanager
def _live_server(demo_workspace: Path, target: Path, *, ui: bool = False, **server: object) -> Iterator[LiveServer]:
    shutil.copytree(demo_workspace, target)
    live = LiveServer(Settings(workspace=target, server=ServerSettings(**server)), ui=ui)  # type: ignore[arg-type]
    live.start()
    try:
        yield live
    finally:
        live.stop()
