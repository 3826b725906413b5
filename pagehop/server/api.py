"""The native JSON API under /api: ask (plain and streamed), documents, page images, the graph, health."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from pagehop.agents.state import Answer
from pagehop.graph.base import GraphStore
from pagehop.schema import Document
from pagehop.server.app import UPLOADS_DIR, ServerState, state_of
from pagehop.server.security import ApiError

router = APIRouter(prefix="/api", tags=["pagehop"])

ALLOWED_EXTENSIONS = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".txt", ".md"})
COPY_CHUNK = 1 << 20


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    thread_id: str | None = Field(None, max_length=200, description="continue this conversation")


class UploadReport(BaseModel):
    ingested: list[Document]
    skipped: list[str]
    failed: list[str]
    summary: str


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    state = state_of(request)
    return {
        "status": "ok",
        "documents": len(state.workspace.ready_doc_ids()),
        "channels": state.workspace.live_channels,
        "llm": state.engine.llm is not None,
    }


@router.post("/ask")
async def ask(body: AskRequest, request: Request) -> Answer:
    return await state_of(request).ask(body.question, body.thread_id)


@router.post("/ask/stream", response_class=StreamingResponse)
async def ask_stream(body: AskRequest, request: Request) -> StreamingResponse:
    """Server-sent events: ``event: accepted`` at once, then one per finished stage (``event: <kind>``),
    the last one ``event: answer``."""
    events = await state_of(request).stream(body.question, body.thread_id)

    async def sse() -> AsyncIterator[str]:
        # At once, before any wait for a slot: the client knows its question was accepted.
        yield f"event: accepted\ndata: {json.dumps({'queued_ahead': events.ahead})}\n\n"
        try:
            async for event in events:
                yield f"event: {event.kind}\ndata: {event.model_dump_json()}\n\n"
        except ApiError as exc:  # the status line is already sent: report in-stream
            yield f"event: error\ndata: {json.dumps({'error': {'message': exc.message, 'code': exc.status}})}\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# -- documents -----------------------------------------------------------------------------------


@router.get("/documents")
def list_documents(request: Request) -> list[Document]:
    return state_of(request).workspace.list_documents()


@router.get("/documents/{doc_id}")
def get_document(doc_id: str, request: Request) -> dict[str, Any]:
    state = state_of(request)
    doc = _document_or_404(state, doc_id)
    pages = state.workspace.get_pages(doc_id)
    return {**doc.model_dump(), "pages": [page.model_dump(exclude={"text"}) for page in pages]}


@router.post("/documents", status_code=201)
async def upload_documents(
    request: Request, files: Annotated[list[UploadFile], File(description="one or more documents")]
) -> UploadReport:
    """Save each file in ``<workspace>/uploads`` (a fresh folder each) and ingest them all."""
    state = state_of(request)
    for upload in files:
        _extension(upload.filename)  # refuse the whole request before writing anything
    saved: list[Path] = []
    try:
        for upload in files:
            saved.append(await _save_upload(state, upload))
    except BaseException:
        for path in saved:
            _remove_upload(path)
        raise
    report = await run_in_threadpool(_ingest_locked, state, saved)
    names = {str(path): upload.filename or "" for path, upload in zip(saved, files, strict=True)}
    # A copy that did not become a document (a duplicate, or a failure) is not kept.
    kept = {doc.path for doc in report.ingested}
    for path in saved:
        if str(path) not in kept:
            _remove_upload(path)
    result = UploadReport(
        ingested=[doc for doc in (state.workspace.get_document(d.doc_id) for d in report.ingested) if doc],
        skipped=[f"{names.get(path, path)}: {why}" for path, why in report.skipped],
        failed=[f"{names.get(path, path)}: {error}" for path, error in report.failed],
        summary=report.summary(),
    )
    if report.failed and not report.ingested and not report.skipped:
        raise ApiError(422, "no document could be ingested: " + "; ".join(result.failed))
    return result


@router.delete("/documents/{doc_id}")
async def delete_document(doc_id: str, request: Request) -> dict[str, Any]:
    state = state_of(request)
    doc = _document_or_404(state, doc_id)
    await run_in_threadpool(_delete_locked, state, doc)
    return {"deleted": doc.doc_id, "title": doc.title}


PNG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "the page image (PNG)"},
    404: {"description": "no such page image, or the highlighted chunk is not on this page"},
}


@router.get("/pages/{doc_id}/{page}/image", response_class=FileResponse, responses=PNG_RESPONSE)
def page_image(
    doc_id: str,
    page: int,
    request: Request,
    highlight: Annotated[
        str | None,
        Query(
            max_length=300,
            description="a citation's `chunk_id`: its lines on this page are drawn over the image "
            "(translucent boxes, scaled to the image); a chunk without stored boxes gives the plain image",
        ),
    ] = None,
) -> FileResponse:
    """The rendered page, optionally with a cited chunk highlighted."""
    state = state_of(request)
    if highlight:
        from pagehop.server.evidence import highlighted_page_image

        return FileResponse(highlighted_page_image(state.workspace, doc_id, page, highlight), media_type="image/png")
    return _page_file(state, doc_id, page, thumbnail=False)


@router.get("/pages/{doc_id}/{page}/thumbnail", response_class=FileResponse)
def page_thumbnail(doc_id: str, page: int, request: Request) -> FileResponse:
    return _page_file(state_of(request), doc_id, page, thumbnail=True)


# -- knowledge graph -------------------------------------------------------------------------------


@router.get("/graph/entities")
def graph_entities(
    request: Request, q: Annotated[str, Query(min_length=1)], limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[dict[str, Any]]:
    store = _graph_or_404(state_of(request))
    return [entity.model_dump(exclude={"embedding"}) for entity in store.find_entities(q, limit=limit)]


@router.get("/graph/neighbours/{entity_id}")
def graph_neighbours(
    entity_id: str,
    request: Request,
    hops: Annotated[int, Query(ge=1, le=3)] = 1,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    store = _graph_or_404(state_of(request))
    if store.get_entity(entity_id) is None:
        raise ApiError(404, f"no entity {entity_id!r}")
    paths = store.neighbours(entity_id, hops=hops, limit=limit)
    return [{**path.model_dump(), "rendered": path.render()} for path in paths]


# -- helpers ---------------------------------------------------------------------------------------


def _extension(filename: str | None) -> str:
    """The lower-cased extension of an allowed type; ApiError 415 otherwise."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in ALLOWED_EXTENSIONS:
        allowed = ", ".join(sorted(ALLOWED_EXTENSIONS))
        raise ApiError(415, f"{filename!r} is not a supported type (allowed: {allowed})")
    return suffix


def _safe_name(filename: str | None) -> str:
    """The client's base name reduced to plain characters: it titles the document, never picks a folder."""
    stem = re.sub(r"[^\w .-]+", "_", Path(filename or "").stem).strip(" ._")[:120] or "upload"
    return stem + _extension(filename)


async def _save_upload(state: ServerState, upload: UploadFile) -> Path:
    """Copy into uploads/<random>/<safe name>: a fresh folder per upload, so names never collide or traverse."""
    limit = int(state.settings.server.max_upload_mb * 2**20)
    folder = state.workspace.root / UPLOADS_DIR / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / _safe_name(upload.filename)
    written = 0
    with target.open("xb") as out:
        while chunk := await upload.read(COPY_CHUNK):
            written += len(chunk)
            if written > limit:
                out.close()
                _remove_upload(target)
                raise ApiError(413, f"{upload.filename!r} is larger than the {limit / 2**20:g} MB limit")
            out.write(chunk)
    return target


def _remove_upload(path: Path) -> None:
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def _ingest_locked(state: ServerState, paths: list[Path]) -> Any:
    from pagehop.ingest import ingest

    with state.ingest_lock:
        return ingest(state.workspace, paths, progress=False)


def _delete_locked(state: ServerState, doc: Document) -> None:
    from pagehop.ingest import delete

    with state.ingest_lock:
        delete(state.workspace, doc.doc_id)
    source = Path(doc.source_path)
    # The server's own copy goes too; a file the user ingested from elsewhere is theirs.
    if source.parent.parent == state.workspace.root / UPLOADS_DIR:
        _remove_upload(source)


def _document_or_404(state: ServerState, doc_id: str) -> Document:
    doc = state.workspace.get_document(doc_id)
    if doc is None:
        raise ApiError(404, f"no document {doc_id!r}")
    return doc


def _page_file(state: ServerState, doc_id: str, page_number: int, *, thumbnail: bool) -> FileResponse:
    path = state.workspace.page_image(doc_id, page_number, thumbnail=thumbnail)  # drawn on the first request
    if path is None:
        raise ApiError(404, f"no {'thumbnail' if thumbnail else 'image'} for page {page_number} of {doc_id!r}")
    return FileResponse(path)


def _graph_or_404(state: ServerState) -> GraphStore:
    if state.workspace.graph_store is None:
        raise ApiError(404, "the knowledge graph is off in this workspace")
    return state.workspace.graph_store
