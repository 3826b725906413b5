"""The chat web UI (Gradio, mounted at /ui): stages stream in as collapsible thoughts; an answer
carries inline [n] links that open the cited page with the cited lines highlighted, and graph paths
are drawn as diagrams; a Documents tab uploads (with progress per file), lists, shows page
thumbnails and deletes documents.

Each browser session is one conversation thread (Gradio's session hash is the thread id).
"""

from __future__ import annotations

import contextlib
import html
import os
import shutil
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from pagehop.agents.citations import render_marked
from pagehop.agents.state import Answer, Citation
from pagehop.config import Settings
from pagehop.engine import AgentEvent
from pagehop.server.app import UPLOADS_DIR, ServerState
from pagehop.server.security import ApiError, key_matches
from pagehop.workspace import Workspace

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
DOC_COLUMNS = ["doc_id", "title", "kind", "pages"]
SUMMARY_COLUMNS = ["file", "result", "pages", "OCR'd pages", "chunks", "reason"]
# A citation marker opens its source (the highlighted page) and scrolls to it. Delegated from the
# document, because chat messages are re-rendered as they stream.
CITE_SCRIPT = """<script>
document.addEventListener("click", (event) => {
  const cite = event.target.closest && event.target.closest("a.pagehop-cite");
  if (!cite) return;
  event.preventDefault();
  const source = document.getElementById((cite.getAttribute("href") || "").slice(1));
  if (source) { source.open = true; source.scrollIntoView({block: "nearest"}); }
}, true);
</script>"""
CSS = """
.pagehop-cite { font-size: 0.8em; vertical-align: super; text-decoration: none; margin-left: 1px; }
.pagehop-unverified { font-size: 0.75em; vertical-align: super; color: #b3261e; margin-left: 2px; }
.pagehop-status { color: #b3261e; font-size: 0.9em; }
.pagehop-source summary { cursor: pointer; }
.pagehop-source img.pagehop-page { width: min(100%, 720px) !important; max-width: 100%; border: 1px solid #ccc; }
.pagehop-graph svg { max-width: 100%; height: auto; display: block; margin: 4px 0; }
"""


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
        css=CSS,
        head=CITE_SCRIPT,
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
            gr.ChatInterface(chat, chatbot=gr.Chatbot(height=760, elem_id="pagehop-chat"), fill_height=False)
        with gr.Tab("Documents"):
            _documents_tab(state, blocks)
    return blocks


def _documents_tab(state: Any, blocks: gr.Blocks) -> None:
    # Gradio's file picker shows each file's upload progress; ingestion then reports per file.
    files = gr.File(label="Upload documents", file_count="multiple", elem_id="pagehop-upload")
    ingest_button = gr.Button("Ingest", variant="primary", elem_id="pagehop-ingest")
    summary = gr.Textbox(label="Ingestion summary", lines=4, interactive=False, elem_id="pagehop-summary")
    per_file = gr.Dataframe(
        headers=SUMMARY_COLUMNS, label="Per file", interactive=False, elem_id="pagehop-ingest-files"
    )
    table = gr.Dataframe(headers=DOC_COLUMNS, label="Documents", interactive=False, elem_id="pagehop-documents")
    with gr.Row():
        picked = gr.Dropdown(label="Document", choices=[], scale=3, elem_id="pagehop-doc-picker")
        delete_button = gr.Button("Delete", variant="stop", scale=1, elem_id="pagehop-delete")
    thumbnails = gr.Gallery(label="Pages", columns=6, height="auto", object_fit="contain", elem_id="pagehop-thumbnails")

    def rows() -> list[list[Any]]:
        return [[d.doc_id, d.title, d.kind, d.num_pages] for d in state().workspace.list_documents()]

    def picker(value: str | None = None) -> Any:
        choices = [(f"{d.title} ({d.doc_id})", d.doc_id) for d in state().workspace.list_documents()]
        return gr.Dropdown(choices=choices, value=value if value in {c[1] for c in choices} else None)

    def pages_of(doc_id: str | None) -> list[tuple[str, str]]:
        workspace = state().workspace
        pages = workspace.get_pages(doc_id) if doc_id else []
        # A thumbnail not drawn yet is drawn now (the first look at a long document waits for them).
        thumbnails = [(p, workspace.page_image(p.doc_id, p.page, thumbnail=True)) for p in pages]
        return [(str(path), f"p. {p.page} ({p.text_source})") for p, path in thumbnails if path is not None]

    # Gradio injects a live progress tracker where a parameter defaults to gr.Progress().
    def ingest_files(paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        if not paths:
            return "Choose one or more files first.", [], rows(), picker()
        try:
            text, per_file_rows = ingest_uploaded(state(), [Path(p) for p in paths], progress)
        except ApiError as exc:
            return f"Error: {exc.message}", [], rows(), picker()
        return text, per_file_rows, rows(), picker()

    def delete_doc(target: str | None) -> tuple[Any, ...]:
        from pagehop.server.api import _delete_locked

        doc = state().workspace.get_document(target) if target else None
        if doc is None:
            return "Pick a document to delete.", rows(), picker(), []
        _delete_locked(state(), doc)
        return f"Deleted {doc.title} ({doc.doc_id}).", rows(), picker(), []

    ingest_button.click(ingest_files, files, [summary, per_file, table, picked])
    delete_button.click(delete_doc, picked, [summary, table, picked, thumbnails])
    picked.change(pages_of, picked, thumbnails)
    blocks.load(lambda: (rows(), picker()), None, [table, picked])


def ingest_uploaded(state: ServerState, paths: list[Path], progress: Any = None) -> tuple[str, list[list[Any]]]:
    """Copy Gradio's temporary files into uploads/ under generated names and ingest them one at a
    time (``progress((done, total), desc=...)`` after each); the summary and one row per file."""
    from pagehop.ingest import IngestReport
    from pagehop.server.api import _extension, _ingest_locked, _remove_upload, _safe_name

    for path in paths:
        _extension(path.name)  # refuse before copying anything
    total = IngestReport(channels=state.workspace.live_channels)
    per_file: list[list[Any]] = []
    for done, path in enumerate(paths):
        if progress is not None:
            progress((done, len(paths)), desc=f"ingesting {path.name}")
        # A fresh folder per file, as the API does: the user's name titles the document, never picks a path.
        copy = state.workspace.root / UPLOADS_DIR / uuid.uuid4().hex / _safe_name(path.name)
        copy.parent.mkdir(parents=True)
        shutil.copyfile(path, copy)
        report = _ingest_locked(state, [copy])
        if str(copy) not in {doc.path for doc in report.ingested}:
            _remove_upload(copy)
        _rename(report, str(copy), path.name)  # the user knows their names, not ours
        per_file.append(_file_row(path.name, report))
        _merge(total, report)
    return total.summary(), per_file


def _rename(report: Any, copy: str, name: str) -> None:
    report.skipped = [(name if p == copy else p, why) for p, why in report.skipped]
    report.failed = [(name if p == copy else p, why) for p, why in report.failed]
    report.warnings = [warning.replace(copy, name) for warning in report.warnings]


def _file_row(name: str, report: Any) -> list[Any]:
    if report.ingested:
        doc = report.ingested[0]
        return [name, "ingested", doc.pages, doc.ocr_pages, doc.chunks, "; ".join(report.warnings)]
    if report.skipped:
        return [name, "skipped", 0, 0, 0, report.skipped[0][1]]
    return [name, "failed", 0, 0, 0, report.failed[0][1] if report.failed else "; ".join(report.warnings)]


def _merge(total: Any, report: Any) -> None:
    total.ingested += report.ingested
    total.skipped += report.skipped
    total.failed += report.failed
    total.warnings += [w for w in report.warnings if w not in total.warnings]
    for counter in ("pages", "ocr_pages", "vectors_kept", "vectors_pruned", "seconds"):
        setattr(total, counter, getattr(total, counter) + getattr(report, counter))


def answer_messages(state: ServerState, answer: Answer) -> list[gr.ChatMessage]:
    """One message: the answer with inline [n] citation links, the sources (each opens its page
    image with the cited lines highlighted) and the graph paths drawn as diagrams."""
    return [gr.ChatMessage(content=answer_html(state.workspace, answer))]


def answer_html(workspace: Workspace, answer: Answer) -> str:
    from pagehop.server.evidence import graph_path_svg

    tag = uuid.uuid4().hex[:8]  # ids stay unique across the answers of one chat

    def link(number: int) -> str:
        return f'<a class="pagehop-cite" href="#pagehop-{tag}-{number}">[{number}]</a>'

    unverified = (
        '<span class="pagehop-unverified" title="the verifier did not find this claim supported">[unverified]</span>'
    )
    body = render_marked(answer.answer, answer.claims, marker=link, unverified=unverified, text=html.escape)
    body = body or "I could not find an answer in the documents."
    parts = [f'<div class="pagehop-answer"><p class="pagehop-text">{body}</p>']
    if not answer.supported and answer.answer:
        why = html.escape(answer.stop_reason or "the evidence is incomplete")
        parts.append(f'<p class="pagehop-status">Not verified ({why}).</p>')
    parts += [f'<p class="pagehop-note">Note: {html.escape(note)}.</p>' for note in answer.notes]
    images = {number: _source_image(workspace, citation) for number, citation in enumerate(answer.citations, 1)}
    if answer.citations:
        parts.append('<div class="pagehop-sources"><b>Sources</b>')
        for number, citation in enumerate(answer.citations, start=1):
            where = html.escape(_where(workspace, citation))
            image = images[number]
            shown = f'<img class="pagehop-page" src="{image}" alt="{where}, cited lines highlighted">' if image else ""
            # One line: the chat renders Markdown, and newlines inside HTML would become paragraphs.
            quote = f"<blockquote>{html.escape(' '.join(citation.text.split()))}</blockquote>" if citation.text else ""
            parts.append(
                f'<details class="pagehop-source" id="pagehop-{tag}-{number}"><summary>[{number}] {where} '
                f"<code>{html.escape(citation.doc_id)}</code></summary>{quote}{shown}</details>"
            )
        parts.append("</div>")
    if answer.graph_paths:
        parts.append('<div class="pagehop-graph"><b>Graph paths</b>')
        for path in answer.graph_paths:
            links = [
                (f"[{n}] {_where(workspace, c)}", images[n] or f"#pagehop-{tag}-{n}")
                for n, c in enumerate(answer.citations, start=1)
                if c.graph_path == path
            ]
            parts.append(graph_path_svg(path, links))
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def _where(workspace: Workspace, citation: Citation) -> str:
    """Where a citation points, as people read it: title and page (a graph fact's title is looked up)."""
    doc = None if citation.title else workspace.get_document(citation.doc_id)
    title = citation.title or (doc.title if doc else citation.doc_id)
    return title + (f", p. {citation.page}" if citation.page else "")


def _source_image(workspace: Workspace, citation: Citation) -> str | None:
    """A URL the UI can load for the cited page, highlighted when the citation names its chunk."""
    from pagehop.server.evidence import highlighted_page_image

    page = citation.page
    path = workspace.page_image(citation.doc_id, page) if page else None
    if page is None or path is None:
        return None
    if citation.chunk_id:
        with contextlib.suppress(ApiError):  # a chunk from another page: show the page plainly
            path = highlighted_page_image(workspace, citation.doc_id, page, citation.chunk_id)
    return file_url(path)


def file_url(path: Path) -> str:
    """Gradio's route for a file under ``allowed_paths`` (the workspace's pages), relative to the UI."""
    return "gradio_api/file=" + urllib.parse.quote(str(path))


def _thought(event: AgentEvent) -> gr.ChatMessage:
    body = "\n".join(f"- r{t.round} {t.summary}" for t in event.trace) or event.kind
    title = STAGE_TITLES.get(event.stage, event.stage)
    return gr.ChatMessage(content=body, metadata={"title": title, "status": "pending"})


def _done(message: gr.ChatMessage) -> gr.ChatMessage:
    metadata = message.metadata
    if isinstance(metadata, dict) and metadata.get("status") == "pending":
        return gr.ChatMessage(content=message.content, metadata={**metadata, "status": "done"})
    return message
