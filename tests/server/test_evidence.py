"""Checkable evidence over real HTTP: `/` lands somewhere useful, citations carry chunk ids, and the
page-image route draws the cited chunk's boxes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pagehop.demo import DEMO_QUESTION
from pagehop.server.app import addresses_banner
from pagehop.testing.images import highlight_fit


@pytest.fixture(scope="module")
def server(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory, live_server: Any) -> Iterator[Any]:
    target = tmp_path_factory.mktemp("evidence") / "ws"
    with live_server(demo_workspace, target) as live:
        yield live


@pytest.fixture
def client(server: Any) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_root_redirects_and_serve_prints_every_address(client: httpx.Client) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/docs"  # no UI mounted here
    banner = addresses_banner("127.0.0.1", 8123)
    assert "chat UI: http://127.0.0.1:8123/" in banner
    assert "JSON API: http://127.0.0.1:8123/api" in banner and "http://127.0.0.1:8123/v1" in banner
    assert "http://[::1]:8123/" in addresses_banner("::1", 8123)


def test_highlighted_page_image_draws_the_cited_chunk(client: httpx.Client, server: Any) -> None:
    answer = client.post("/api/ask", json={"question": DEMO_QUESTION}).json()
    # Inline markers: the same text for the JSON API and /v1.
    assert answer["marked_answer"].startswith("Tallinn[") and answer["claims"]
    assert all(set(c["citations"]) <= set(range(1, len(answer["citations"]) + 1)) for c in answer["claims"])
    completion = client.post(
        "/v1/chat/completions", json={"model": "pagehop", "messages": [{"role": "user", "content": DEMO_QUESTION}]}
    ).json()
    assert completion["choices"][0]["message"]["content"].startswith(answer["marked_answer"] + "\n")
    assert all("chunk_id" in c for c in completion["citations"])
    report = "Harbor Lane Robotics - Annual Review 2021"
    on_pdf = [c for c in answer["citations"] if c["chunk_id"] and c["title"] == report]
    assert on_pdf, answer["citations"]
    citation = on_pdf[0]
    chunk = server.state.workspace.get_chunk(citation["chunk_id"])
    assert chunk.boxes  # the PDF text layer gave the chunk its line boxes
    url = f"/api/pages/{citation['doc_id']}/{citation['page']}/image"
    plain = client.get(url)
    marked = client.get(url, params={"highlight": citation["chunk_id"]})
    assert marked.status_code == 200 and marked.headers["content-type"] == "image/png"
    covered, outside = highlight_fit(plain.content, marked.content, chunk.boxes)
    assert covered > 0.5  # the boxes are drawn over the chunk's lines ...
    assert outside == 0  # ... and nowhere else


def test_highlight_of_a_chunk_elsewhere_is_a_clear_404(client: httpx.Client, server: Any) -> None:
    workspace = server.state.workspace
    pdf = next(d for d in workspace.list_documents() if d.kind == "pdf")
    other = next(d for d in workspace.list_documents() if d.kind != "pdf")
    foreign = workspace.get_chunks(other.doc_id)[0].chunk_id
    for chunk_id in (foreign, "no-such-chunk"):
        response = client.get(f"/api/pages/{pdf.doc_id}/1/image", params={"highlight": chunk_id})
        assert response.status_code == 404
        assert f"chunk {chunk_id!r} is not on page 1" in response.json()["error"]["message"]


def test_highlight_is_in_the_openapi_schema(client: httpx.Client) -> None:
    route = client.get("/openapi.json").json()["paths"]["/api/pages/{doc_id}/{page}/image"]["get"]
    (highlight,) = [p for p in route["parameters"] if p["name"] == "highlight"]
    assert highlight["in"] == "query" and "chunk_id" in highlight["description"]
    assert "image/png" in route["responses"]["200"]["content"]
    assert "404" in route["responses"]
