"""The native JSON API against a real uvicorn server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pagehop.demo import DEMO_QUESTION

MAX_UPLOAD_MB = 0.05


@pytest.fixture(scope="module")
def server(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory, live_server: Any) -> Iterator[Any]:
    target = tmp_path_factory.mktemp("api") / "ws"
    with live_server(demo_workspace, target, max_upload_mb=MAX_UPLOAD_MB, max_concurrent_requests=2) as live:
        yield live


@pytest.fixture
def client(server: Any) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def assert_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert error["message"] and error["type"]
    return error


def test_health_and_schema(client: httpx.Client) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["documents"] == 3
    assert "text" in health["channels"] and health["llm"] is False
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/documents", "/v1/chat/completions"} <= set(paths)


def test_ask_answers_the_three_hop_question_with_citations(client: httpx.Client) -> None:
    answer = client.post("/api/ask", json={"question": DEMO_QUESTION}).json()
    assert answer["answer"] == "Tallinn"
    assert answer["supported"] is True
    assert {"Kestrel Optics", "Harbor Lane Robotics - Annual Review 2021"} <= {c["title"] for c in answer["citations"]}


def test_ask_stream_sends_stage_events_then_the_answer(client: httpx.Client) -> None:
    events = []
    with client.stream("POST", "/api/ask/stream", json={"question": DEMO_QUESTION}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["accepted", "sub_queries"] and "draft" in kinds and "verdict" in kinds
    assert kinds[-1] == "answer"
    assert events[-1][1]["answer"]["answer"] == "Tallinn"


def test_bad_questions_get_json_errors(client: httpx.Client) -> None:
    assert_error(client.post("/api/ask", json={"question": ""}), 422)
    assert_error(client.post("/api/ask", json={"question": "   "}), 400)
    assert_error(client.post("/api/ask", json={"question": " ?! "}), 400)
    assert_error(client.post("/api/ask", content=b"not json", headers={"content-type": "application/json"}), 422)
    assert_error(client.get("/api/no-such-route"), 404)


def test_documents_pages_and_images(client: httpx.Client) -> None:
    documents = client.get("/api/documents").json()
    by_title = {doc["title"]: doc for doc in documents}
    assert len(documents) == 3 and "Kestrel Optics" in by_title
    report = by_title["harbor-lane-review-2021"]
    detail = client.get(f"/api/documents/{report['doc_id']}").json()
    assert detail["num_pages"] == 2 and [p["page"] for p in detail["pages"]] == [1, 2]
    image = client.get(f"/api/pages/{report['doc_id']}/1/image")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    thumbnail = client.get(f"/api/pages/{report['doc_id']}/2/thumbnail")
    assert thumbnail.status_code == 200 and len(thumbnail.content) < len(image.content)
    assert_error(client.get(f"/api/pages/{report['doc_id']}/3/image"), 404)
    assert_error(client.get("/api/documents/0000000000000000"), 404)
    assert_error(client.get("/api/pages/0000000000000000/1/thumbnail"), 404)


def test_a_pdf_page_is_drawn_on_the_first_request_even_after_its_file_is_gone(
    client: httpx.Client, server: Any
) -> None:
    import io

    import numpy as np
    import pypdfium2 as pdfium
    from PIL import Image

    from pagehop.testing.pdf import pdf_bytes

    pdf = pdf_bytes(["Lantern Guild minutes, page one.", "The guild meets on Thursdays at the old mill."])
    response = client.post("/api/documents", files=[("files", ("minutes.pdf", pdf, "application/pdf"))])
    assert response.status_code == 201, response.text
    doc = response.json()["ingested"][0]
    workspace = server.state.workspace
    folder = workspace.doc_pages_dir(doc["doc_id"])
    assert not list(folder.glob("*.png")) and workspace.kept_source(doc["doc_id"]).read_bytes() == pdf
    Path(doc["source_path"]).unlink()  # the uploaded file is gone: the workspace's copy draws the page

    image = client.get(f"/api/pages/{doc['doc_id']}/2/image")
    thumbnail = client.get(f"/api/pages/{doc['doc_id']}/2/thumbnail")

    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\xff\xd8")
    document = pdfium.PdfDocument(pdf)
    eager = document[1].render(scale=server.settings.ingest.dpi / 72).to_pil().convert("RGB")  # as ingest drew it
    document.close()
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image.content)).convert("RGB")), np.asarray(eager))
    assert client.get(f"/api/pages/{doc['doc_id']}/2/image").content == image.content  # stored, served again
    assert_error(client.get(f"/api/pages/{doc['doc_id']}/3/image"), 404)
    assert_error(client.get(f"/api/pages/{doc['doc_id']}/0/thumbnail"), 404)
    assert client.delete(f"/api/documents/{doc['doc_id']}").status_code == 200
    assert not folder.exists()  # the kept copy went with the document


def test_graph_entities_and_neighbours(client: httpx.Client) -> None:
    entities = client.get("/api/graph/entities", params={"q": "Kestrel Optics"}).json()
    assert entities and entities[0]["name"] == "Kestrel Optics"
    paths = client.get(f"/api/graph/neighbours/{entities[0]['entity_id']}").json()
    assert any("Harbor Lane Robotics" in path["rendered"] for path in paths)
    assert_error(client.get("/api/graph/neighbours/no-such-entity"), 404)
    assert_error(client.get("/api/graph/entities"), 422)


def test_upload_ask_and_delete_a_document(client: httpx.Client, server: Any) -> None:
    uploads = server.state.workspace.root / "uploads"
    text = b"Zephyr Lab\n\nThe Zephyr Lab mascot is a heron named Odile, kept on the roof since 2019.\n"
    # A traversal name is harmless: only its plain base name is kept, in a fresh folder under uploads/.
    response = client.post("/api/documents", files=[("files", ("../../../../tmp/evil name.txt", text, "text/plain"))])
    assert response.status_code == 201, response.text
    body = response.json()
    assert len(body["ingested"]) == 1 and not body["failed"]
    doc = body["ingested"][0]
    stored = Path(doc["source_path"])
    assert stored.parent.parent == uploads and len(stored.parent.name) == 32 and stored.name == "evil name.txt"
    assert doc["title"] == "evil name"  # the client's file name titles it, as `pagehop ingest` does
    assert not Path("/tmp/evil name.txt").exists()

    answer = client.post("/api/ask", json={"question": "What is the name of the Zephyr Lab mascot?"}).json()
    assert any(c["doc_id"] == doc["doc_id"] for c in answer["citations"])

    # The same content again is skipped, and its copy is not kept.
    again = client.post("/api/documents", files=[("files", ("copy.txt", text, "text/plain"))]).json()
    assert again["ingested"] == [] and len(again["skipped"]) == 1
    assert list(uploads.iterdir()) == [stored.parent]

    assert client.delete(f"/api/documents/{doc['doc_id']}").json()["deleted"] == doc["doc_id"]
    assert not stored.parent.exists()
    assert_error(client.get(f"/api/documents/{doc['doc_id']}"), 404)
    assert_error(client.delete(f"/api/documents/{doc['doc_id']}"), 404)
    assert len(client.get("/api/documents").json()) == 3


def test_upload_limits(client: httpx.Client, server: Any) -> None:
    uploads = server.state.workspace.root / "uploads"
    before = set(uploads.iterdir())
    assert_error(client.post("/api/documents", files=[("files", ("run.exe", b"MZ", "application/octet-stream"))]), 415)
    too_big = b"x" * int(MAX_UPLOAD_MB * 2**20 + 1)
    assert_error(client.post("/api/documents", files=[("files", ("big.txt", too_big, "text/plain"))]), 413)
    # One bad file refuses the whole request before anything is written.
    mixed = [("files", ("ok.txt", b"fine", "text/plain")), ("files", ("bad.svg", b"<svg/>", "image/svg+xml"))]
    assert_error(client.post("/api/documents", files=mixed), 415)
    broken = client.post("/api/documents", files=[("files", ("broken.pdf", b"%PDF-garbage", "application/pdf"))])
    assert_error(broken, 422)
    assert set(uploads.iterdir()) == before
    assert len(client.get("/api/documents").json()) == 3
