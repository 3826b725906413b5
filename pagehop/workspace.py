"""The workspace folder and its SQLite catalog of documents, pages and chunks.

Layout (everything an embedded deployment writes)::

    <workspace>/
        catalog.sqlite                 documents, pages, chunks (the source of truth)
        pages/<doc_id>/<n>.png         rendered page n (1-based), and <n>.thumb.jpg (see page_image)
        pages/<doc_id>/source.pdf      a PDF's kept copy: its pages are drawn from it when first asked for
        text_index/                    the hybrid text channel (rebuildable from the catalog)
        page_index/                    the visual channel's store (owned by its backend)
        graph/                         the embedded graph store (owned by its backend)

Crash safety: a document row is ``pending`` while its images and derived data (page
vectors, hook data such as graph facts) are written, and turns ``ready`` in one transaction
together with its pages and chunks. Only ``ready`` documents are visible through this class.
Deleting first marks the row ``deleting``, then removes derived data, then the row. Anything
not ``ready`` when the workspace opens is a crash leftover and is purged from every channel
registered at open time. The text index is derived from the catalog's chunks and is
reconciled with it whenever it is built, so it never needs its own recovery.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from PIL import Image

from pagehop.config import Settings
from pagehop.durable import replacing
from pagehop.graph.base import GraphUnavailable
from pagehop.models import text_embedder_id
from pagehop.retrieval.base import PageEncoder, PageIndex
from pagehop.schema import Chunk, Document, Page
from pagehop.text import heading

if TYPE_CHECKING:
    from pagehop.graph.base import GraphStore
    from pagehop.retrieval.text_index import HybridTextIndex

log = logging.getLogger(__name__)

KEPT_SOURCE = "source.pdf"

DocStatus = Literal["pending", "ready", "deleting"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source_path TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    num_pages INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    ingested_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'deleting'))
);
CREATE INDEX IF NOT EXISTS documents_by_path ON documents (source_path);
CREATE TABLE IF NOT EXISTS pages (
    doc_id TEXT NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_source TEXT NOT NULL,
    image_path TEXT,
    thumbnail_path TEXT,
    width INTEGER,
    height INTEGER,
    num_patches INTEGER,
    vectors_kept INTEGER,
    prune_stats TEXT,
    PRIMARY KEY (doc_id, page)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    page_start INTEGER NOT NULL,
    page_end INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    text TEXT NOT NULL,
    title TEXT NOT NULL,
    boxes TEXT,
    context TEXT
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (doc_id, seq);
"""

# Columns added after a catalog may already exist: (table, column, declaration). Opening an older
# workspace adds them; its rows keep NULL there (e.g. chunks ingested before boxes have none).
# documents.name: the document's name for the title channel (see derive_document_name), NULL until derived.
_ADDED_COLUMNS = (("chunks", "boxes", "TEXT"), ("chunks", "context", "TEXT"), ("documents", "name", "TEXT"))
# The catalog's revision (SQLite's user_version). Revision 1: document names no longer stop at the
# periods of initials and abbreviations ("Albert S. Rogell"); names stored before are derived again.
_CATALOG_REVISION = 1


@runtime_checkable
class DerivedDataHook(Protocol):
    """Something that derives data from documents (graph extraction, ...) and must follow adds and deletes.

    ``add_document`` runs while the document is still ``pending``; raising fails that one
    document, and everything it wrote is purged. ``delete_document`` must be idempotent and
    accept ids it never saw: crash recovery calls it for every interrupted document.
    """

    def add_document(self, doc: Document, pages: Sequence[Page], chunks: Sequence[Chunk]) -> None: ...

    def delete_document(self, doc_id: str) -> None: ...


@runtime_checkable
class BatchedDerivedDataHook(DerivedDataHook, Protocol):
    """A hook that is faster on many documents at once (one model pass, one store write for all of them).

    ``add_documents`` has the meaning of ``add_document`` on each; raising fails the whole call, and
    ingestion then retries the documents one at a time with ``add_document``.
    """

    def add_documents(self, documents: Sequence[tuple[Document, Sequence[Page], Sequence[Chunk]]]) -> None: ...


class PageVectorStats(dict[str, Any]):
    """What pruning did to one page: ``num_patches``, ``vectors_kept`` and the pruner's own stats."""


# What commit_documents takes per document: the document, its pages and chunks, its pages' vector
# stats, and the doc_ids of the older versions it replaces.
DocumentToCommit = tuple[Document, Sequence[Page], Sequence[Chunk], dict[int, PageVectorStats], Sequence[str]]


class Workspace:
    """One workspace folder: catalog, page images, and the retrieval channels built over them.

    Open it with :meth:`open` and pass the optional channels there, so that crash recovery
    purges half-written documents from them too.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        page_encoder: PageEncoder | None = None,
        page_index: PageIndex | None = None,
        graph_store: GraphStore | None = None,
        hooks: Sequence[DerivedDataHook] = (),
    ) -> None:
        self.settings = settings
        self.root = settings.workspace.expanduser().resolve()
        self.page_encoder = page_encoder
        self.page_index = page_index
        self.graph_store = graph_store
        self.hooks: list[DerivedDataHook] = list(hooks)
        self._text_index: HybridTextIndex | None = None
        self._lock = threading.RLock()
        self._drawing = threading.Lock()  # page_image drawing a page
        self._writer = threading.RLock()  # writer_lock() between threads of this process
        self._writer_depth = 0
        self._commits = 0  # this connection's commits: with PRAGMA data_version, when ready_signature is stale
        self._signature_stamp: tuple[int, int] | None = None
        self._signature: tuple[int, float, int] = (0, 0.0, 0)
        for folder in (
            self.root,
            self.pages_dir,
            self.root / "text_index",
            self.root / "page_index",
            self.root / "graph",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.root / "catalog.sqlite", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed 'ready' must survive a power cut
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._migrate()

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        page_encoder: PageEncoder | None = None,
        page_index: PageIndex | None = None,
        graph_store: GraphStore | None = None,
        hooks: Sequence[DerivedDataHook] = (),
    ) -> Workspace:
        """Open (creating if needed) the workspace and purge what a crashed run left behind."""
        workspace = cls(
            settings, page_encoder=page_encoder, page_index=page_index, graph_store=graph_store, hooks=hooks
        )
        workspace.recover()
        return workspace

    def close(self) -> None:
        """Close the catalog and the graph store handed to :meth:`open` (a Neo4j driver holds sockets)."""
        with self._lock:
            self._db.close()
            if self.graph_store is not None:
                self.graph_store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- paths ---------------------------------------------------------------------------

    @property
    def pages_dir(self) -> Path:
        return self.root / "pages"

    def doc_pages_dir(self, doc_id: str) -> Path:
        return self.pages_dir / doc_id

    def kept_source(self, doc_id: str) -> Path:
        """Where a PDF document's copy is kept (its pages are drawn from it on request, see :meth:`page_image`);
        inside the document's page folder, so whatever removes the document removes the copy too."""
        return self.doc_pages_dir(doc_id) / KEPT_SOURCE

    def keep_source(self, doc_id: str, path: Path) -> None:
        """Copy the file ``doc_id`` was read from into the workspace, once per content.
        ValueError when the file no longer has that content (it changed while being ingested)."""
        from pagehop.ingest.files import content_doc_id

        kept = self.kept_source(doc_id)
        if kept.is_file():
            return
        with replacing(kept) as copy:  # an error (the check below) leaves no copy
            if content_doc_id(path, copy_to=copy) != doc_id:
                raise ValueError(f"{path} changed while it was being ingested")

    def page_image(self, doc_id: str, page: int, *, thumbnail: bool = False) -> Path | None:
        """The image (or thumbnail) file of a ready document's page, the only way to one: a PDF page not drawn at
        ingest is drawn from the kept copy now, as ingest would have drawn it, and stored for the next request.
        None when the page has no image (a text file, a page with nothing on it, no such page) or it cannot be
        made (a workspace from before copies were kept whose file is gone; the reason is logged)."""
        found = self.get_page(doc_id, page)
        relative = (found.thumbnail_path if thumbnail else found.image_path) if found else None
        if found is None or relative is None or found.image_path is None:
            return None
        target = self.absolute(relative)
        if target.is_file():
            return target
        from pagehop.ingest.files import IngestError
        from pagehop.ingest.page_images import save_page_image, save_thumbnail

        image_file = self.absolute(found.image_path)
        # One page drawn at a time (pdfium runs one call at a time anyway): concurrent requests for a page draw it
        # once, and the others find the file.
        with self._drawing:
            if target.is_file():
                return target
            try:
                if image_file.is_file():  # only the thumbnail is missing
                    with Image.open(image_file) as stored:
                        save_thumbnail(stored, target, self.settings.ingest.thumbnail_px)
                    return target
                drawn = self._draw_page(found)
            except (OSError, ValueError, IngestError) as exc:
                log.warning("no image for page %d of %s: %s", page, doc_id, exc)
                return None
            if thumbnail:
                save_thumbnail(drawn, target, self.settings.ingest.thumbnail_px)
            else:
                save_page_image(drawn, target)
            return target

    def _draw_page(self, page: Page) -> Image.Image:
        """A page drawn from its document's kept copy, in the form ingest stores it (1-bit when blank)."""
        from pagehop.ingest.loaders import render_pdf_page
        from pagehop.ingest.ocr import is_blank
        from pagehop.ingest.page_images import stored_form

        source = self.kept_source(page.doc_id)
        if not source.is_file() or page.width is None or page.height is None:
            raise FileNotFoundError("its file is missing and no copy of the document was kept")
        image = render_pdf_page(source, page.page, (page.width, page.height))
        return stored_form(image, is_blank(image))

    def absolute(self, relative: str) -> Path:
        """A path stored in the catalog (relative to the workspace, e.g. ``Page.image_path``) made absolute."""
        return self.root / relative

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # ----- channels ------------------------------------------------------------------------

    @property
    def text_index(self) -> HybridTextIndex:
        """The hybrid text index, built on first use and reconciled with the catalog."""
        with self._lock:
            if self._text_index is None:
                index = self._saved_text_index()
                self._reconcile_text_index(index)
                self._text_index = index
            return self._text_index

    def _saved_text_index(self) -> HybridTextIndex:
        """The text index as saved, not reconciled (loads no model)."""
        from pagehop.retrieval.text_index import HybridTextIndex

        return HybridTextIndex(
            self.root / "text_index", embedder=text_embedder_id(self.settings), device=self.settings.models.device
        )

    def _reconcile_text_index(self, index: HybridTextIndex) -> None:
        """Make the index hold exactly the ready documents' chunks (after a crash, or a new embedder)."""
        ready = set(self.ready_doc_ids())
        indexed = index.doc_ids()
        stale = indexed - ready
        missing = sorted(ready - indexed)
        for doc_id in stale:
            index.delete_document(doc_id)
        if missing:  # one add: the embedder sees length-sorted batches across documents
            index.add([chunk for doc_id in missing for chunk in self.get_chunks(doc_id)])
        if stale or missing:
            index.save()

    @property
    def live_channels(self) -> list[str]:
        """Retrieval channels that can answer: text always, page with an encoder and an index, graph with a store."""
        channels = ["text"]
        if self.page_encoder is not None and self.page_index is not None:
            channels.append("page")
        if self.graph_store is not None:
            channels.append("graph")
        return channels

    # ----- catalog reads (ready documents only) ---------------------------------------------

    def ready_doc_ids(self) -> list[str]:
        rows = self._query("SELECT doc_id FROM documents WHERE status = 'ready' ORDER BY ingested_at, doc_id")
        return [row["doc_id"] for row in rows]

    def ready_signature(self) -> tuple[int, float, int]:
        """Changes whenever the set of ready documents does (an add, a delete, a replacement: the newcomer
        has a later ``ingested_at`` and a new row), at a fraction of the cost of listing them."""
        with self._lock:
            # The query reads every document (~1 ms for 6,000) and searches ask at every sub-query; the catalog
            # changed only if this connection committed or SQLite's data_version says another one did.
            stamp = (self._db.execute("PRAGMA data_version").fetchone()[0], self._commits)
            if stamp != self._signature_stamp:
                row = self._query(
                    "SELECT COUNT(*) AS n, COALESCE(MAX(ingested_at), 0) AS newest, COALESCE(SUM(rowid), 0) AS rows "
                    "FROM documents WHERE status = 'ready'"
                )[0]
                self._signature = (row["n"], row["newest"], row["rows"])
                self._signature_stamp = stamp
            return self._signature

    def document_names(self) -> list[tuple[str, str]]:
        """``(doc_id, name)`` of every ready document, oldest first, read from the catalog.

        Documents committed before the catalog kept names get theirs derived here once, from their
        first page, and stored in one write, so later processes never read page text for this.
        """
        return self._names("d.status = 'ready' ORDER BY d.ingested_at, d.doc_id")

    def document_name(self, doc_id: str) -> str:
        """A ready document's name (see :func:`derive_document_name`); '' when there is no such document."""
        found = self._names("d.doc_id = ? AND d.status = 'ready'", (doc_id,))
        return found[0][1] if found else ""

    def _names(self, where: str, params: Sequence[Any] = ()) -> list[tuple[str, str]]:
        rows = self._query(
            "SELECT d.doc_id, d.name, d.title, CASE WHEN d.name IS NULL THEN p.text END AS first_page "
            f"FROM documents d LEFT JOIN pages p ON p.doc_id = d.doc_id AND p.page = 1 WHERE {where}",
            params,
        )
        names: list[tuple[str, str]] = []
        missing: list[tuple[str, str]] = []  # (name, doc_id) to store
        for row in rows:
            name = row["name"]
            if name is None:
                name = derive_document_name(row["title"], row["first_page"])
                missing.append((name, row["doc_id"]))
            names.append((row["doc_id"], name))
        if missing:
            try:
                with self._transaction() as db:
                    db.executemany("UPDATE documents SET name = ? WHERE doc_id = ? AND name IS NULL", missing)
            except sqlite3.OperationalError as exc:  # read-only or busy catalog: serve the names, store them later
                logging.getLogger(__name__).warning("document names not stored: %s", exc)
        return names

    def get_document(self, doc_id: str) -> Document | None:
        rows = self._query("SELECT * FROM documents WHERE doc_id = ? AND status = 'ready'", (doc_id,))
        return _document(rows[0]) if rows else None

    def list_documents(self) -> list[Document]:
        rows = self._query("SELECT * FROM documents WHERE status = 'ready' ORDER BY ingested_at, doc_id")
        return [_document(row) for row in rows]

    def find_document(self, doc_id_or_path: str | Path) -> Document | None:
        """A ready document by id, by the path it was ingested from, or by the content of a file."""
        key = str(doc_id_or_path)
        found = self.get_document(key)
        if found is not None:
            return found
        path = Path(key).expanduser().resolve()
        at_path = self.ready_docs_at(path)
        if at_path:
            return at_path[-1]
        if path.is_file():
            from pagehop.ingest.files import content_doc_id

            return self.get_document(content_doc_id(path))
        return None

    def ready_docs_at(self, source_path: Path) -> list[Document]:
        """Ready documents ingested from ``source_path`` (absolute), oldest first."""
        rows = self._query(
            "SELECT * FROM documents WHERE source_path = ? AND status = 'ready' ORDER BY ingested_at",
            (str(source_path),),
        )
        return [_document(row) for row in rows]

    def get_page(self, doc_id: str, page: int) -> Page | None:
        """A page of a ready document; ``image_path`` is relative to the workspace (see :meth:`absolute`)."""
        rows = self._query(
            "SELECT p.* FROM pages p JOIN documents d USING (doc_id) "
            "WHERE p.doc_id = ? AND p.page = ? AND d.status = 'ready'",
            (doc_id, page),
        )
        return _page(rows[0]) if rows else None

    def get_pages(self, doc_id: str) -> list[Page]:
        rows = self._query(
            "SELECT p.* FROM pages p JOIN documents d USING (doc_id) "
            "WHERE p.doc_id = ? AND d.status = 'ready' ORDER BY p.page",
            (doc_id,),
        )
        return [_page(row) for row in rows]

    def page_vector_stats(self, doc_id: str, page: int) -> PageVectorStats | None:
        """What pruning did to one page; None when no page encoder saw it."""
        rows = self._query(
            "SELECT num_patches, vectors_kept, prune_stats FROM pages WHERE doc_id = ? AND page = ?",
            (doc_id, page),
        )
        if not rows or rows[0]["num_patches"] is None:
            return None
        row = rows[0]
        return PageVectorStats(
            json.loads(row["prune_stats"] or "{}"), num_patches=row["num_patches"], vectors_kept=row["vectors_kept"]
        )

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        rows = self._query(
            "SELECT c.* FROM chunks c JOIN documents d USING (doc_id) WHERE c.chunk_id = ? AND d.status = 'ready'",
            (chunk_id,),
        )
        return _chunk(rows[0]) if rows else None

    def get_chunks(self, doc_id: str) -> list[Chunk]:
        rows = self._query(
            "SELECT c.* FROM chunks c JOIN documents d USING (doc_id) "
            "WHERE c.doc_id = ? AND d.status = 'ready' ORDER BY c.seq",
            (doc_id,),
        )
        return [_chunk(row) for row in rows]

    def ready_chunks(self) -> list[Chunk]:
        """Every chunk of every ready document, in document then reading order (one query)."""
        rows = self._query(
            "SELECT c.* FROM chunks c JOIN documents d USING (doc_id) "
            "WHERE d.status = 'ready' ORDER BY d.ingested_at, c.doc_id, c.seq"
        )
        return [_chunk(row) for row in rows]

    def status_of(self, doc_id: str) -> DocStatus | None:
        """The catalog state of any document row, ready or not (None: no row)."""
        rows = self._query("SELECT status FROM documents WHERE doc_id = ?", (doc_id,))
        return rows[0]["status"] if rows else None

    # ----- catalog writes (the ingestion pipeline's side) -------------------------------------

    def begin_document(self, doc: Document) -> None:
        """Record ``doc`` as pending: from here on, a crash leaves something recovery must purge."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO documents (doc_id, source_path, title, kind, num_pages, size_bytes, ingested_at, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                (doc.doc_id, doc.source_path, doc.title, doc.kind, doc.num_pages, doc.size_bytes, doc.ingested_at),
            )

    def commit_documents(self, documents: Sequence[DocumentToCommit]) -> None:
        """Make each document visible with its pages and chunks and hide the versions it replaces, all in
        one transaction (one fsync for a whole ingest group): after a crash, all of them or none are ready."""
        with self._transaction() as db:
            for doc, pages, chunks, vector_stats, replaces in documents:
                self._commit_one(db, doc, pages, chunks, vector_stats, replaces)

    @staticmethod
    def _commit_one(
        db: sqlite3.Connection,
        doc: Document,
        pages: Sequence[Page],
        chunks: Sequence[Chunk],
        vector_stats: dict[int, PageVectorStats],
        replaces: Sequence[str],
    ) -> None:
        db.executemany(
            "INSERT INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_page_row(p, vector_stats.get(p.page)) for p in pages],
        )
        db.executemany(
            "INSERT INTO chunks (chunk_id, doc_id, seq, page_start, page_end, char_start, char_end, text, title, "
            "boxes, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    c.chunk_id,
                    c.doc_id,
                    seq,
                    c.page_start,
                    c.page_end,
                    c.char_start,
                    c.char_end,
                    c.text,
                    c.title,
                    json.dumps(c.boxes) if c.boxes else None,
                    c.context or None,
                )
                for seq, c in enumerate(chunks)
            ],
        )
        first_page = next((p.text for p in pages if p.page == 1), "")
        updated = db.execute(
            "UPDATE documents SET status = 'ready', ingested_at = ?, name = ? WHERE doc_id = ? AND status = 'pending'",
            (time.time(), derive_document_name(doc.title, first_page), doc.doc_id),
        )
        if updated.rowcount != 1:
            raise RuntimeError(f"document {doc.doc_id} is not pending, so it cannot be committed")
        for old_id in replaces:
            db.execute("UPDATE documents SET status = 'deleting' WHERE doc_id = ?", (old_id,))

    def delete_document(self, doc_id: str) -> bool:
        """Remove a document (in any state) and everything derived from it; False if there was no such row."""
        with self.writer_lock():
            with self._transaction() as db:
                found = db.execute("UPDATE documents SET status = 'deleting' WHERE doc_id = ?", (doc_id,)).rowcount
            if found:
                self._purge(doc_id)
            return bool(found)

    def recover(self) -> list[str]:
        """Purge every document a crash left ``pending`` or half ``deleting``; returns their ids.
        One whose graph store does not answer stays for the next call.

        Skipped (returns []) while another process holds the writer lock: its pending
        documents are work in progress, not leftovers.
        """
        with self.writer_lock(wait=False) as acquired:
            if not acquired:
                return []
            rows = self._query("SELECT doc_id FROM documents WHERE status != 'ready'")
            purged = []
            for doc_id in (row["doc_id"] for row in rows):
                try:
                    self._purge(doc_id)
                except GraphUnavailable:  # the row stays (never 'ready'); a later run purges it
                    logging.getLogger(__name__).warning("%s: purge waits for the graph store", doc_id)
                    continue
                purged.append(doc_id)
            return purged

    @contextmanager
    def writer_lock(self, wait: bool = True) -> Iterator[bool]:
        """Exclusive between writers of this workspace (ingest, delete, recovery), across processes too.

        Yields whether the lock is held (always True when ``wait``). The OS drops the file lock
        when its holder dies, which is what lets the next process recover a crashed ingest.
        Re-entrant within a thread; readers never wait for it.
        """
        if not self._writer.acquire(blocking=wait):
            yield False
            return
        try:
            if self._writer_depth:
                self._writer_depth += 1
                try:
                    yield True
                finally:
                    self._writer_depth -= 1
                return
            with (self.root / "writer.lock").open("a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
                self._writer_depth = 1
                try:
                    yield True
                finally:
                    self._writer_depth = 0  # closing the file releases the lock
        finally:
            self._writer.release()

    def _purge(self, doc_id: str) -> None:
        """Derived data first, the catalog row last: a crash midway leaves a row that the next open purges."""
        with self._lock:
            # The saved text index too when this process has not loaded it (`pagehop ingest --delete`):
            # reconciling at the next open would hide the rows, but the deleted text must not stay on disk.
            index = self._text_index or self._saved_text_index()
            if doc_id in index.doc_ids():
                index.delete_document(doc_id)
                index.save()
            if self.page_index is not None:
                self.page_index.delete_document(doc_id)
            for hook in self.hooks:  # the graph's facts go through its indexer hook
                hook.delete_document(doc_id)
            shutil.rmtree(self.doc_pages_dir(doc_id), ignore_errors=True)
            with self._transaction() as db:
                db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    # ----- sqlite plumbing -------------------------------------------------------------------

    def _migrate(self) -> None:
        """Bring an older catalog up to ``_SCHEMA``: additive changes, and derived names cleared to be derived
        again by today's rule; nothing a user stored is touched."""
        with self._transaction() as db:
            for table, column, declaration in _ADDED_COLUMNS:
                present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            if db.execute("PRAGMA user_version").fetchone()[0] < _CATALOG_REVISION:
                db.execute("UPDATE documents SET name = NULL")
                db.execute(f"PRAGMA user_version = {_CATALOG_REVISION}")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._commits += 1


def derive_document_name(title: str, first_page_text: str | None) -> str:
    """What the title channel calls a document: the heading its first page opens with, else its title.
    A passage collection's page opens with the entity it is about, which a file name rarely says."""
    return heading(first_page_text or "") or title


def _document(row: sqlite3.Row) -> Document:
    return Document(
        doc_id=row["doc_id"],
        source_path=row["source_path"],
        title=row["title"],
        kind=row["kind"],
        num_pages=row["num_pages"],
        size_bytes=row["size_bytes"],
        ingested_at=row["ingested_at"],
    )


def _page(row: sqlite3.Row) -> Page:
    return Page(
        doc_id=row["doc_id"],
        page=row["page"],
        text=row["text"],
        text_source=row["text_source"],
        image_path=row["image_path"],
        thumbnail_path=row["thumbnail_path"],
        width=row["width"],
        height=row["height"],
    )


def _page_row(page: Page, stats: PageVectorStats | None) -> tuple[Any, ...]:
    extra = dict(stats or {})
    num_patches = extra.pop("num_patches", None)
    kept = extra.pop("vectors_kept", None)
    return (
        page.doc_id,
        page.page,
        page.text,
        page.text_source,
        page.image_path,
        page.thumbnail_path,
        page.width,
        page.height,
        num_patches,
        kept,
        json.dumps(extra) if num_patches is not None else None,
    )


def _chunk(row: sqlite3.Row) -> Chunk:
    return Chunk(
        chunk_id=row["chunk_id"],
        doc_id=row["doc_id"],
        page_start=row["page_start"],
        page_end=row["page_end"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        text=row["text"],
        title=row["title"],
        boxes=[tuple(box) for box in json.loads(row["boxes"])] if row["boxes"] else [],
        context=row["context"] or "",
    )
