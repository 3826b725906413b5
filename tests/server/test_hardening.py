"""Security checks on a real server: upload names cannot leave the workspace, oversize and wrong-type
uploads are refused before their bodies are stored, and every /api and /v1 route wants the key."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

API_KEY = "hardening-key-0123456789"
MAX_UPLOAD_MB = 0.05
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def server(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory, live_server: Any) -> Iterator[Any]:
    target = tmp_path_factory.mktemp("hardening") / "ws"
    with live_server(demo_workspace, target, api_key=API_KEY, max_upload_mb=MAX_UPLOAD_MB) as live:
        yield live


def read_response(sock: socket.socket) -> str:
    """One whole HTTP response: the headers and the body may arrive in separate packets."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode("latin-1")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "name",
    [
        "..%2f..%2fetc%2fpasswd.txt",
        "../../../../tmp/pagehop-escape.txt",
        "..\\..\\windows\\evil.txt",
        "/etc/cron.d/x.txt",
    ],
)
def test_upload_names_cannot_leave_the_workspace(server: Any, name: str) -> None:
    root = server.state.workspace.root
    outside_before = files_under(root.parent)
    body = f"A note uploaded under the name {name!r}: the quartermaster counts barrels.".encode()
    with server.client(headers=AUTH) as http:
        response = http.post("/api/documents", files=[("files", (name, body, "text/plain"))])
        assert response.status_code == 201, response.text
        (doc,) = response.json()["ingested"]
        stored = Path(doc["source_path"]).resolve()
        assert stored.is_relative_to((root / "uploads").resolve()) and stored.read_bytes() == body
        assert ".." not in stored.relative_to(root).parts
        assert http.delete(f"/api/documents/{doc['doc_id']}").status_code in (200, 204)
    new_files = files_under(root.parent) - outside_before
    assert all(path.resolve().is_relative_to(root) for path in new_files), new_files
    assert not Path("/tmp/pagehop-escape.txt").exists()


def test_a_declared_oversize_upload_is_refused_before_its_body_is_sent(server: Any) -> None:
    """Only the headers go out; the 413 comes back without the server waiting for a byte of body."""
    request = (
        f"POST /api/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 10737418240\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request.encode())
        reply = read_response(sock)
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "MB limit" in reply


def test_an_oversize_upload_without_a_length_is_cut_off(server: Any) -> None:
    uploads = server.state.workspace.root / "uploads"
    before = files_under(uploads)
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()

    def chunked() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        yield head
        for _ in range(int(MAX_UPLOAD_MB * 2**20 / 4096) * 4):
            yield b"w" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    with server.client(headers=headers) as http:
        response = http.post("/api/documents", content=chunked())
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "request_too_large"
    assert files_under(uploads) == before


def test_a_wrong_type_upload_is_refused_and_nothing_is_kept(server: Any) -> None:
    uploads = server.state.workspace.root / "uploads"
    before = files_under(uploads)
    with server.client(headers=AUTH) as http:
        for name, mime in (("payload.exe", "application/octet-stream"), ("page.html", "text/html"), ("noext", "")):
            response = http.post("/api/documents", files=[("files", (name, b"MZ\x90\x00" * 100, mime))])
            assert response.status_code == 415, response.text
            assert response.json()["error"]["type"] == "unsupported_media_type"
    assert files_under(uploads) == before


def protected_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path with dummy parameters) of every /api and /v1 route but the health check, from the schema."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith(("/api/", "/v1/")) or path == "/api/health":
            continue
        found += [(method.upper(), re.sub(r"\{[^}]+\}", "1", path)) for method in sorted(operations)]
    return found


def test_every_route_but_health_wants_the_key(server: Any) -> None:
    routes = protected_routes(server.app)
    assert len(routes) >= 10 and ("POST", "/v1/chat/completions") in routes and ("POST", "/api/documents") in routes
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": API_KEY + "x"}, {"Authorization": ""}):
                response = http.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.status_code)
        assert http.get("/api/health").status_code == 200
        assert http.get("/api/documents", headers=AUTH).status_code == 200
        assert http.get("/v1/models", headers={"X-API-Key": API_KEY}).status_code == 200
