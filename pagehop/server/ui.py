"""The chat web UI (Gradio, mounted at /ui): stages stream in as collapsible thoughts, cited pages
show as images, graph paths as arrows; a Documents tab uploads, lists and deletes documents.

Each browser session is one conversation thread (Gradio's session hash is the thread id).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from pagehop.agents.state import Answer
from pagehop.config import Settings
from pagehop.engine import AgentEvent
from pagehop.server.app import UPLOADS_DIR, ServerState
from pagehop.server.security import ApiError, key_matches

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr

STAGE_TITLES = {
    "decompose": "Decompose the question",
    "retrieve": "Retrieve evidence",
    "ground": "Ground sub-queries",
    "refine": "Refine the evidence",
    "draft": "Draft an answer",
    "verify": "Verify the draft",
    "expand": "Expand with new sub-queries",
}
UI_PATH = "/ui"
MAX_PAGE_IMAGES = 4
DOC_COLUMNS = ["doc_id", "title", "kind", "pages"]


def mount_ui(app: FastAPI, settings: Settings, api_key: str | None) -> None:
    """Mount the UI at /ui; with an API key configured, the UI asks for it as the login password."""

    def state() -> ServerState:
        current: ServerState = app.state.pagehop
        return current

    blocks = build_blocks(state)
    pages_dir = settings.workspace.expanduser().resolve() / "pages"

    def login(_user: str, password: str) -> bool:
        return api_key is not None and key_matches(password, api_key)

    gr.mount_gradio_app(
        app,
        blocks,
        path=UI_PATH,
        allowed_paths=[str(pages_dir)],
        max_file_size=int(settings.server.max_upload_mb * 2**20),
        auth=login if api_key else None,
        footer_links=[],
    )


def build_blocks(state: Any) -> gr.Blocks:
    """``state`` is a callable returning the live ServerState (it exists only once the app started)."""

    async def chat(message: str, _history: list[Any], request: gr.Request) -> AsyncIterator[list[gr.ChatMessage]]:
        shown: list[gr.ChatMessage] = []
        try:
            events = await state().stream(message, request.session_hash)
            async for event in events:
                if event.answer is not None:
                    shown = [_done(m) for m in shown] + answer_messages(state(), event.answer)
                else:
                    shown = [_done(m) for m in shown] + [_thought(event)]
                yield shown
        except ApiError as exc:
            yield [*(_done(m) for m in shown), gr.ChatMessage(content=f"Error: {exc.message}")]

    with gr.Blocks(title="pagehop") as blocks:
        gr.Markdown("# pagehop\nDeep search over your documents and their knowledge graph.")
        with gr.Tab("Chat"):
            gr.ChatInterface(chat, chatbot=gr.Chatbot(height=560, elem_id="pagehop-chat"), fill_height=False)
        with gr.Tab("Documents"):
            _documents_tab(state)
    return blocks


def _documents_tab(state: Any) -> None:
    files = gr.File(label="Upload documents", file_count="multiple", elem_id="pagehop-upload")
    ingest_button = gr.Button("Ingest", variant="primary", elem_id="pagehop-ingest")
    summary = gr.Textbox(label="Ingestion summary", lines=4, interactive=False, elem_id="pagehop-summary")
    table = gr.Dataframe(headers=DOC_COLUMNS, label="Documents", interactive=False)
    with gr.Row():
        doc_id = gr.Textbox(label="doc_id to delete", scale=3)
        delete_button = gr.Button("Delete", variant="stop", scale=1)

    def rows() -> list[list[Any]]:
        return [[d.doc_id, d.title, d.kind, d.num_pages] for d in state().workspace.list_documents()]

    def ingest_files(paths: list[str] | None) -> tuple[str, Any]:
        if not paths:
            return "Choose one or more files first.", rows()
        try:
            report = ingest_uploaded(state(), [Path(p) for p in paths])
        except ApiError as exc:
            return f"Error: {exc.message}", rows()
        return report, rows()

    def delete_doc(target: str) -> tuple[str, Any]:
        from pagehop.server.api import _delete_locked

        doc = state().workspace.get_document(target.strip())
        if doc is None:
            return f"No document {target.strip()!r}.", rows()
        _delete_locked(state(), doc)
        return f"Deleted {doc.title} ({doc.doc_id}).", rows()

    ingest_button.click(ingest_files, files, [summary, table])
    delete_button.click(delete_doc, doc_id, [summary, table])
    table.attach_load_event(rows, None)


def ingest_uploaded(state: ServerState, paths: list[Path]) -> str:
    """Copy Gradio's temporary files into uploads/ under generated names, ingest them, return the summary."""
    from pagehop.server.api import _extension, _ingest_locked

    suffixes = [_extension(path.name) for path in paths]  # refuse before copying anything
    copies = []
    for path, suffix in zip(paths, suffixes, strict=True):
        target = state.workspace.root / UPLOADS_DIR / f"{uuid.uuid4().hex}{suffix}"
        shutil.copyfile(path, target)
        copies.append(target)
    report = _ingest_locked(state, copies)
    kept = {doc.path for doc in report.ingested}
    for copy in copies:
        if str(copy) not in kept:
            copy.unlink(missing_ok=True)
    summary: str = report.summary()
    for copy, path in zip(copies, paths, strict=True):  # the user knows their names, not ours
        summary = summary.replace(str(copy), path.name)
    return summary


def answer_messages(state: ServerState, answer: Answer) -> list[gr.ChatMessage]:
    """The answer with its sources, the graph paths as arrows, then images of the cited pages."""
    from pagehop.server.openai_api import render_content

    messages = [gr.ChatMessage(content=render_content(answer).split("\n\nGraph paths:")[0])]
    if answer.graph_paths:
        diagram = "\n".join(path.replace(" -", "\n  -") for path in answer.graph_paths)
        messages.append(gr.ChatMessage(content=f"```text\n{diagram}\n```", metadata={"title": "Graph paths"}))
    for citation_page in _cited_pages(state, answer)[:MAX_PAGE_IMAGES]:
        messages.append(gr.ChatMessage(content=gr.Image(value=str(citation_page), label=citation_page.stem)))
    return messages


def _cited_pages(state: ServerState, answer: Answer) -> list[Path]:
    pages: list[Path] = []
    for citation in answer.citations:
        page = state.workspace.get_page(citation.doc_id, citation.page) if citation.page else None
        if page is not None and page.image_path:
            path = state.workspace.absolute(page.image_path)
            if path.is_file() and path not in pages:
                pages.append(path)
    return pages


def _thought(event: AgentEvent) -> gr.ChatMessage:
    body = "\n".join(f"- r{t.round} {t.summary}" for t in event.trace) or event.kind
    title = STAGE_TITLES.get(event.stage, event.stage)
    return gr.ChatMessage(content=body, metadata={"title": title, "status": "pending"})


def _done(message: gr.ChatMessage) -> gr.ChatMessage:
    metadata = message.metadata
    if isinstance(metadata, dict) and metadata.get("status") == "pending":
        return gr.ChatMessage(content=message.content, metadata={**metadata, "status": "done"})
    return message
