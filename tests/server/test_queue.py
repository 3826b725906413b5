"""Questions beyond the concurrency limit wait in a bounded queue; only a full queue is refused (429)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pagehop.demo import DEMO_QUESTION

CHAT = {"messages": [{"role": "user", "content": DEMO_QUESTION}]}


@pytest.fixture(scope="module")
def server(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory, live_server: Any) -> Iterator[Any]:
    target = tmp_path_factory.mktemp("queue") / "ws"
    with live_server(demo_workspace, target, max_concurrent_requests=1, max_queue=2) as live:
        yield live


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Synchronise with the server's threads (not a timing assertion: it only bounds a hang)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def first_sse_data(lines: Iterator[str]) -> tuple[str | None, str]:
    """The next event of a stream. Keep reading from the same ``lines``: closing an httpx line
    iterator early closes the connection, which the server rightly takes as the client leaving."""
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            return kind, line.removeprefix("data: ")
    raise AssertionError("the stream ended without an event")


def test_busy_server_queues_streams_start_at_once_and_only_a_full_queue_is_refused(server: Any) -> None:
    slots = server.state.slots
    held = slots.admit()  # the only slot, taken as by a long-running question
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        with server.client() as http, server.client() as streaming:
            queued_ask = pool.submit(http.post, "/api/ask", json={"question": DEMO_QUESTION})
            wait_until(lambda: slots.waiting == 1, "the plain question to queue")

            with streaming.stream("POST", "/api/ask/stream", json={"question": DEMO_QUESTION}) as stream:
                assert stream.status_code == 200
                lines = stream.iter_lines()
                # The first event arrives while the question still waits for the held slot.
                kind, data = first_sse_data(lines)
                assert (kind, json.loads(data)) == ("accepted", {"queued_ahead": 2})
                assert slots.waiting == 2 and slots.busy == 1

                # The queue (max_queue=2) is full: now, and only now, callers are turned away.
                with server.client() as third:
                    refused = third.post("/api/ask", json={"question": DEMO_QUESTION})
                    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
                    assert refused.json()["error"]["type"] == "rate_limit_exceeded"
                    assert third.post("/v1/chat/completions", json={**CHAT, "stream": True}).status_code == 429
                    assert third.post("/api/ask/stream", json={"question": DEMO_QUESTION}).status_code == 429

                held.release()
                kinds = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
                assert kinds[-1] == "answer"
            answered = queued_ask.result(timeout=120)
            assert answered.status_code == 200 and answered.json()["answer"] == "Tallinn"
    finally:
        held.release()
        pool.shutdown(wait=True)
    wait_until(lambda: slots.busy == 0 and slots.waiting == 0, "the slots to drain")


def test_openai_stream_sends_its_first_chunk_while_queued(server: Any) -> None:
    slots = server.state.slots
    held = slots.admit()
    try:
        with server.client() as http, http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            _, data = first_sse_data(lines)
            first = json.loads(data)
            assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
            assert slots.waiting == 1  # still queued: the chunk came before any work
            held.release()
            rest = [line for line in lines if line.startswith("data: ")]
            assert rest[-1] == "data: [DONE]"
            assert any("Tallinn" in line for line in rest)
    finally:
        held.release()
    wait_until(lambda: slots.busy == 0 and slots.waiting == 0, "the slots to drain")


def test_a_question_that_waits_too_long_gets_503(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    slots = server.state.slots
    monkeypatch.setattr(slots, "wait_s", 0.2)
    held = slots.admit()
    try:
        with server.client() as http:
            response = http.post("/api/ask", json={"question": DEMO_QUESTION})
            assert response.status_code == 503 and response.headers["retry-after"]
            assert "waited 0.2 s" in response.json()["error"]["message"]
            with http.stream("POST", "/api/ask/stream", json={"question": DEMO_QUESTION}) as stream:
                events = [line for line in stream.iter_lines() if line.startswith("event: ")]
            assert events == ["event: accepted", "event: error"]
        assert slots.waiting == 0
    finally:
        held.release()
    wait_until(lambda: slots.busy == 0, "the slot to be free")


def test_many_concurrent_clients_all_get_answers(server: Any) -> None:
    """Twelve clients at once against one slot: with room in the queue, every one is answered."""
    slots = server.state.slots
    clients = 12
    slots.max_queue = clients
    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:

            def one(_: int) -> int:
                with server.client() as http:
                    return http.post("/v1/chat/completions", json=CHAT).status_code

            statuses = list(pool.map(one, range(clients)))
    finally:
        slots.max_queue = 2
    assert statuses == [200] * clients
    wait_until(lambda: slots.busy == 0 and slots.waiting == 0, "the slots to drain")


def test_a_client_that_leaves_while_queued_gives_its_place_back(server: Any) -> None:
    slots = server.state.slots
    held = slots.admit()
    try:
        with server.client() as http, http.stream("POST", "/api/ask/stream", json={"question": DEMO_QUESTION}) as r:
            first_sse_data(r.iter_lines())  # then the connection closes, as a client that gives up
            wait_until(lambda: slots.waiting == 0, "the abandoned place to be given back")
    finally:
        held.release()
    wait_until(lambda: slots.busy == 0, "the slot to be free")
    assert threading.active_count() < 100
