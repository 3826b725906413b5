"""Ingest files into a workspace: pages, images, text (with OCR), chunks, and every registered channel.

Each document in this order (see ``pagehop.workspace`` for why it is crash safe); steps 4–5 run for a
group of prepared documents together (``_Group``):

1. check the file (type by magic bytes, size, encryption, page count) — nothing written yet;
2. catalog row ``pending``;
3. a PDF's copy kept in the workspace; per page: text layer, the page drawn only when OCR or the page
   encoder needs its pixels (any other page is drawn from the kept copy when first asked for:
   ``Workspace.page_image``), OCR (in a process pool, reading the page PNG written for it), page vectors
   (streamed to the page encoder on a thread); an image file's pages stored with thumbnails (on a thread);
4. chunks and their text embeddings, beside the derived-data hooks (graph extraction, ...); a group's
   model work (its chunk embedding on a thread, graph parsing in spawned processes, two groups side by side:
   ``StartsAhead``) starts when it closes, up to ``AHEAD_GROUPS`` groups ahead of the one being resolved,
   stored and committed, so both cores stay busy (a process is spawned as soon as the files promise a full
   group);
5. one transaction: pages + chunks + ``ready`` (+ the replaced old version marked ``deleting``);
6. the replaced old version purged; the chunks (embedded in step 4, inside the file's time budget)
   added to the text index in batches across documents, the index saved every ``TEXT_SAVE_SECONDS``
   (what a crash loses is re-embedded from the catalog's chunks at the next open).

Any failure in 2–5 purges what was written, and the batch goes on with the next file.

Bounds per file: ``ingest.max_pages`` (refused, or truncated and said in the summary),
``ingest.max_seconds_per_file`` (checked between pages, OCR results and extracted chunks; the
file then fails with "took longer than N s"), plus the size and pixel limits checked on open.
Pages that need OCR go to a pool of single-threaded tesseract processes, one per core, while
the next pages render; pages without ink skip OCR.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

import numpy as np
from PIL import Image
from tqdm import tqdm

from pagehop.graph.base import GRAPH_UNAVAILABLE, GraphUnavailable
from pagehop.ingest.files import IngestError, SourceFile, expand_paths, inspect_file
from pagehop.ingest.layout import CharBoxes, PageText, line_boxes
from pagehop.ingest.loaders import RawPage, open_source
from pagehop.ingest.ocr import OcrMode, OcrPool, OcrUnavailable, is_blank, ocr_workers, wants_ocr
from pagehop.ingest.page_images import save_page_image, save_thumbnail, stored_form
from pagehop.limits import Deadline, DeadlineExceeded, check_deadline, deadline, remaining_seconds, resumed
from pagehop.retrieval.chunking import chunk_pages
from pagehop.schema import Chunk, Document, Page
from pagehop.workspace import BatchedDerivedDataHook, PageVectorStats, Workspace

if TYPE_CHECKING:
    from pagehop.retrieval.base import PageEmbedding, PageEncoder, PageIndex
    from pagehop.retrieval.text_index import HybridTextIndex

log = logging.getLogger(__name__)

PAGES_AHEAD_OF_ENCODER = 16  # rendered pages waiting for the page encoder: bounds memory, keeps it fed
TEXT_BATCH = 256  # chunks embedded per text-index call; the index catches up on the catalog after a crash
TEXT_SAVE_SECONDS = 120.0  # a long ingest saves the text index this often, so a crash re-embeds little
# A group of prepared documents is closed once its oldest member has waited this long, before the next
# file is prepared: small files become searchable soon even when slow files (OCR, huge PDFs) follow them.
GROUP_MAX_WAIT_S = 10.0
# Groups whose model work runs while ingest reads the next files: two keep the parsing processes fed while one
# group is resolved and stored and the next one fills; more would only hold more documents pending.
AHEAD_GROUPS = 2
OCR_TIMEOUT_S = 300.0  # one page; a tesseract stuck longer than this is killed and the page keeps its text layer
IMAGE_WRITES_QUEUED = 8  # rendered pages waiting for the image writer, per document: bounds memory
OCR_QUEUE_PER_WORKER = 2  # pages waiting for OCR per tesseract process: keeps every core busy, bounds disk use


@dataclass
class IngestedDocument:
    doc_id: str
    path: str
    title: str
    pages: int
    ocr_pages: int
    chunks: int
    replaced: list[str] = field(default_factory=list)  # doc_ids of the older versions it replaced
    truncated_from: int | None = None  # the page count before ingest.max_pages cut it


SKIPPED_LISTED = 10


@dataclass
class IngestReport:
    ingested: list[IngestedDocument] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error message)
    warnings: list[str] = field(default_factory=list)
    pages: int = 0
    ocr_pages: int = 0
    blank_pages: int = 0  # pages without ink: never OCR'd, stored as 1-bit images
    vectors_kept: int = 0
    vectors_pruned: int = 0
    seconds: float = 0.0
    channels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what derived-data hooks report (LLM extraction cost)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [
            f"{len(self.ingested)} documents ingested ({self.pages} pages, {self.ocr_pages} OCR'd"
            + (f", {self.blank_pages} blank" if self.blank_pages else "")
            + f"), {len(self.skipped)} skipped, {len(self.failed)} failed in {self.seconds:.1f} s",
            f"channels live: {', '.join(self.channels)}",
        ]
        if self.vectors_kept or self.vectors_pruned:
            total = self.vectors_kept + self.vectors_pruned
            lines.append(
                f"page vectors: {self.vectors_kept} kept, {self.vectors_pruned} pruned "
                f"({100 * self.vectors_pruned / total:.0f}% pruned)"
            )
        # Re-ingesting a large corpus skips thousands of unchanged files: name them only when few.
        if len(self.skipped) <= SKIPPED_LISTED:
            lines += [f"skipped {path}: {why}" for path, why in self.skipped]
        lines += [
            f"truncated {d.path}: only its first {d.pages} of {d.truncated_from} pages were ingested (ingest.max_pages)"
            for d in self.ingested
            if d.truncated_from is not None
        ]
        lines += [f"failed {path}: {error}" for path, error in self.failed]
        lines += self.notes
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


@runtime_checkable
class ReportsToIngest(Protocol):
    """A hook with something to add to the ingest summary (e.g. the graph indexer's LLM calls)."""

    def take_summary(self) -> str | None: ...


@runtime_checkable
class StartedWork(Protocol):
    """A group's model work started by a ``StartsAhead`` hook."""

    def ready(self) -> bool:
        """Whether ``finish`` would not wait for the model work."""
        ...

    def finish(self) -> None:
        """Complete ``add_documents``' work (resolve and store); waits for the model work first."""
        ...


@runtime_checkable
class StartsAhead(Protocol):
    """A batching hook whose model work can start before its documents' turn to be stored (the graph indexer
    parses in another process while ingest resolves and stores earlier groups)."""

    def prepare_ahead(self) -> None:
        """Load what started work needs (a process and its model) now: ingest calls this once it expects a
        full group, so that loading overlaps reading the first files."""
        ...

    def start_documents(
        self, documents: Sequence[tuple[Document, Sequence[Page], Sequence[Chunk]]]
    ) -> StartedWork | None:
        """Start ``add_documents``' work; finishes are called in start order.
        None: nothing can start early (``add_documents`` does it all when the group's turn comes)."""
        ...

    def stop_ahead(self) -> None:
        """Release what the started work held (a process); called when an ingest ends."""
        ...


@dataclass
class _Options:
    dpi: int
    ocr: OcrMode
    ocr_lang: str
    thumbnail_px: int
    max_image_pixels: int
    chunk_chars: int
    chunk_overlap: int
    heading_context: bool
    max_pages: int
    page_limit: str
    max_seconds_per_file: float | None


def ingest(
    workspace: Workspace,
    paths: Iterable[Path | str],
    *,
    dpi: int | None = None,
    ocr: OcrMode | None = None,
    progress: bool | None = None,
) -> IngestReport:
    """Ingest files and folders (recursively) into ``workspace``; ``dpi``/``ocr`` override the settings.

    A file whose content is already ingested is skipped; a changed file at an ingested path
    replaces the old version. Per-file errors are collected in the report, never raised.
    ``progress`` None shows a bar only when stderr is a terminal.
    """
    started = time.perf_counter()
    settings = workspace.settings.ingest
    options = _Options(
        dpi=dpi or settings.dpi,
        ocr=ocr or settings.ocr,
        ocr_lang=settings.ocr_lang,
        thumbnail_px=settings.thumbnail_px,
        max_image_pixels=settings.max_image_pixels,
        chunk_chars=settings.chunk_chars,
        chunk_overlap=settings.chunk_overlap,
        heading_context=settings.heading_context,
        max_pages=settings.max_pages,
        page_limit=settings.page_limit,
        max_seconds_per_file=settings.max_seconds_per_file,
    )
    report = IngestReport(channels=workspace.live_channels)
    files = _unique(expand_paths(Path(p) for p in paths))
    show = sys.stderr.isatty() if progress is None else progress
    ocr_pool = OcrPool(ocr_workers(settings.ocr_workers), options.ocr_lang)
    # Page PNGs and thumbnails drawn at ingest are written by a thread (PIL's encoders release the GIL) while the
    # next pages render and the group's models run; a document waits for its images only before its commit.
    image_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagehop-images")
    # Chunk embeddings run on this thread beside the hooks (spaCy), in group order.
    chunk_embedder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagehop-embed")
    with workspace.writer_lock(), closing(ocr_pool), image_writer, chunk_embedder:  # another ingesting process waits
        workspace.recover()
        text_index = workspace.text_index
        if files:
            _ = text_index.dim  # loads the embedder now, so no file's time budget pays for it
        unindexed = _Unindexed()  # chunks of committed documents, added to the index in batches
        group = _Group(workspace, options, report, image_writer, chunk_embedder)
        forecast = _GroupForecast(files)
        saved_at = time.monotonic()
        try:
            with tqdm(total=len(files), unit="file", desc="ingest", disable=not show) as bar:
                for path in files:
                    unindexed.extend(*group.finish_ready())
                    if group.members and group.waited() >= GROUP_MAX_WAIT_S:
                        unindexed.extend(*group.close())
                    prepared = _prepare_one(workspace, path, options, ocr_pool, report, group)
                    if forecast.add(path, prepared):
                        group.prepare_ahead()
                    if prepared is not None and len(prepared.chunks) >= TEXT_BATCH and group.members:
                        # a large document goes alone: the small ones before it are not held back by its models
                        unindexed.extend(*group.close())
                    group.add(prepared)
                    if group.full():
                        unindexed.extend(*group.close())
                    if len(unindexed.chunks) >= TEXT_BATCH:
                        unindexed.flush_into(text_index)
                        if time.monotonic() - saved_at >= TEXT_SAVE_SECONDS:
                            text_index.save()
                            saved_at = time.monotonic()
                    bar.set_postfix(pages=report.pages, failed=len(report.failed))
                    bar.update()
                unindexed.extend(*group.close())
                unindexed.extend(*group.finish_all())
        finally:
            group.abandon()  # interrupted: nothing of the unfinished groups stays
            for hook in workspace.hooks:
                if isinstance(hook, StartsAhead):
                    hook.stop_ahead()
            unindexed.flush_into(text_index)
            text_index.save()
            report.notes += [n for h in workspace.hooks if isinstance(h, ReportsToIngest) and (n := h.take_summary())]
            report.seconds = time.perf_counter() - started
    return report


class _GroupForecast:
    """Whether the files being ingested will fill a group (``TEXT_BATCH`` chunks), judged from the chunks of
    the files prepared so far per byte read, times the bytes of all the files (a stat each, at the start):
    the parsing process is worth spawning early only then, and a small ingest never spawns it."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.sizes = {path: _size(path) for path in files}
        self.total_bytes = sum(self.sizes.values())
        self.bytes_seen = 0
        self.chunks_seen = 0
        self.said = False

    def add(self, path: Path, prepared: _Prepared | None) -> bool:
        """Count a prepared (or skipped) file; True once, when a full group is expected."""
        self.bytes_seen += self.sizes.get(path, 0)
        self.chunks_seen += len(prepared.chunks) if prepared is not None else 0
        if self.said or not self.bytes_seen:
            return False
        self.said = self.chunks_seen * self.total_bytes >= TEXT_BATCH * self.bytes_seen
        return self.said


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # reported when the file is prepared
        return 0


@dataclass
class _Unindexed:
    """Committed chunks with their embeddings, waiting to be added to the text index together."""

    chunks: list[Chunk] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)

    def extend(self, chunks: list[Chunk], vectors: np.ndarray | None) -> None:
        if chunks and vectors is not None:
            self.chunks += chunks
            self.vectors.append(vectors)

    def flush_into(self, index: HybridTextIndex) -> None:
        if self.chunks:
            index.add(self.chunks, np.concatenate(self.vectors))
        self.chunks, self.vectors = [], []


def delete(workspace: Workspace, doc_id_or_path: str | Path) -> Document | None:
    """Remove a document and everything derived from it; the removed document, or None if not found."""
    doc = workspace.find_document(doc_id_or_path)
    if doc is not None:
        workspace.delete_document(doc.doc_id)
    return doc


def _unique(paths: Iterable[Path]) -> list[Path]:
    """Each file once, even when named directly and also found in a named folder."""
    return list(dict.fromkeys(path.expanduser().resolve() for path in paths))


@dataclass
class _Prepared:
    """A document rendered, read and chunked, its catalog row ``pending``: what is left is embedding its
    chunks, the derived-data hooks and the commit, done together for a group of documents."""

    doc: Document
    builder: _PageBuilder
    chunks: list[Chunk]
    older: list[str]
    truncated_from: int | None
    budget: Deadline | None  # the file's ingest.max_seconds_per_file, started when it was opened


class _Group:
    """Documents finished together: one embedding call sorted by length over all their chunks, one call of each
    batching hook (``BatchedDerivedDataHook``: one spaCy pass, one entity resolution, one graph write) and one
    catalog transaction. A crash leaves every document of the group ``pending``, so recovery purges them all.

    The open group closes at ``TEXT_BATCH`` chunks, when its oldest member has waited ``GROUP_MAX_WAIT_S``
    (checked before the next file is prepared), or after every document when a hook takes documents one at a
    time (it gains nothing from a group, and each document is then committed before the next one starts).
    When the group fails as a whole, each document is finished alone, so one bad file fails alone.

    When every hook ``StartsAhead``, a closing group is *started* instead of finished — if it is full, or the
    hooks' process is already running (``prepare_ahead``), so a partial group costs no spawn it would not
    otherwise pay: its chunk embedding and its hooks' model work begin, and it is finished (resolved, stored,
    committed) as soon as that work is done (checked before each file), or when more than ``AHEAD_GROUPS``
    are started (the oldest then waits). So the next files are read, and earlier groups stored, while a
    group's models run, and the parsing processes always have the next group. Groups are finished one at
    a time and in order; a crash leaves a started group ``pending`` like any other.
    """

    def __init__(
        self,
        workspace: Workspace,
        options: _Options,
        report: IngestReport,
        image_writer: ThreadPoolExecutor,
        chunk_embedder: ThreadPoolExecutor,
    ) -> None:
        self.workspace = workspace
        self.options = options
        self.report = report
        self.image_writer = image_writer
        self.chunk_embedder = chunk_embedder
        self.members: list[_Prepared] = []
        self.batching = all(isinstance(hook, BatchedDerivedDataHook) for hook in workspace.hooks)
        self.ahead = bool(workspace.hooks) and all(isinstance(hook, StartsAhead) for hook in workspace.hooks)
        self.prepared_ahead = False  # the hooks' process runs: any closing group is started there
        self.opened_at = 0.0  # monotonic time its first member was added
        self.started: deque[_Started] = deque()  # groups whose model work runs, oldest first

    def add(self, prepared: _Prepared | None) -> None:
        if prepared is not None:
            if not self.members:
                self.opened_at = time.monotonic()
            self.members.append(prepared)

    def waited(self) -> float:
        """Seconds since the open group's oldest member was added."""
        return time.monotonic() - self.opened_at if self.members else 0.0

    def holds(self, doc_id: str) -> bool:
        return any(
            p.doc.doc_id == doc_id for members in [self.members, *(g.members for g in self.started)] for p in members
        )

    def full(self) -> bool:
        return not self.batching or _chunk_count(self.members) >= TEXT_BATCH

    def prepare_ahead(self) -> None:
        """A full group is coming: the hooks load their process now (see ``StartsAhead.prepare_ahead``)."""
        if self.ahead and not self.prepared_ahead:
            try:
                for hook in self.workspace.hooks:
                    cast(StartsAhead, hook).prepare_ahead()
            except Exception:  # e.g. the process cannot start: groups are then finished here, as without one
                log.warning(
                    "starting the hooks' process early failed; groups are finished in this process", exc_info=True
                )
                return
            self.prepared_ahead = True

    def close(self) -> tuple[list[Chunk], np.ndarray | None]:
        """Start the open group (see the class), or finish it here after the started ones; the chunks committed
        meanwhile and their embeddings (for the text index), in order."""
        members, self.members = self.members, []
        startable = self.ahead and (self.prepared_ahead or _chunk_count(members) >= TEXT_BATCH)
        started = self._start(members) if members and startable else None
        if started is None:
            done = self.finish_all()
            return _joined([done, self._finish_members(members)]) if members else done
        self.prepared_ahead = True  # the first start spawned the process
        self.started.append(started)
        finished = []
        while len(self.started) > AHEAD_GROUPS:
            finished.append(self._finish_oldest())
        return _joined(finished)

    def finish_ready(self) -> tuple[list[Chunk], np.ndarray | None]:
        """Finish the started groups, oldest first, whose model work is done (nothing waits)."""
        finished = []
        while self.started and self.started[0].ready():
            finished.append(self._finish_oldest())
        return _joined(finished)

    def finish_all(self) -> tuple[list[Chunk], np.ndarray | None]:
        """Finish every started group, in order (waits for their model work)."""
        return _joined([self._finish_oldest() for _ in range(len(self.started))])

    def _finish_oldest(self) -> tuple[list[Chunk], np.ndarray | None]:
        started = self.started.popleft()
        return self._finish_members(started.members, started)

    def _start(self, members: list[_Prepared]) -> _Started | None:
        """Members' chunk embedding and hooks' model work started (None: the hooks refused; finish as usual)."""
        budgets = [p.budget for p in members if p.budget is not None]
        documents = [(p.doc, p.builder.pages, p.chunks) for p in members]
        try:
            with resumed(min(budgets, key=lambda b: b.ends_at) if budgets else None):
                started = [cast(StartsAhead, hook).start_documents(documents) for hook in self.workspace.hooks]
                if all(work is None for work in started):
                    return None  # nothing runs early (an LLM extractor): finish the group when it closes
                works = [
                    work or _Deferred(functools.partial(cast(BatchedDerivedDataHook, hook).add_documents, documents))
                    for hook, work in zip(self.workspace.hooks, started, strict=True)
                ]
                chunks = [chunk for prepared in members for chunk in prepared.chunks]
                # The copied context carries the files' time budget into the embedding thread.
                embedding = self.chunk_embedder.submit(
                    contextvars.copy_context().run, self.workspace.text_index.embed_chunks, chunks
                )
        except Exception:  # e.g. a document's chunks refused: finish the group the usual way, to find which
            log.info("starting a group of %d documents failed; finishing it the usual way", len(members))
            return None
        return _Started(members, embedding, works)

    def _finish_members(
        self, members: list[_Prepared], started: _Started | None = None
    ) -> tuple[list[Chunk], np.ndarray | None]:
        if len(members) > 1 or started is not None:
            try:
                return self._finish_together(members, started)
            except GraphUnavailable as exc:
                for prepared in members:
                    self._fail(prepared, f"{GRAPH_UNAVAILABLE}, the file was not ingested (run again later): {exc}")
                return [], None
            except Exception:  # a deadline or a bad file: find out which one, document by document
                log.info("a group of %d documents failed together; finishing them one by one", len(members))
        chunks: list[Chunk] = []
        vectors: list[np.ndarray] = []
        for prepared in members:
            done = self._finish_alone(prepared)
            if done is not None:
                chunks += prepared.chunks
                vectors.append(done)
        return chunks, np.concatenate(vectors) if vectors else None

    def abandon(self) -> None:
        """Purge the unfinished documents (an interrupted ingest); a crash leaves them to recovery instead."""
        started = [p for group in self.started for p in group.members]
        members, self.members = [*started, *self.members], []
        self.started.clear()
        for prepared in members:
            _purge(self.workspace, prepared)

    def _finish_together(
        self, members: list[_Prepared], started: _Started | None = None
    ) -> tuple[list[Chunk], np.ndarray]:
        budgets = [p.budget for p in members if p.budget is not None]
        with resumed(min(budgets, key=lambda b: b.ends_at) if budgets else None):
            chunks = [chunk for prepared in members for chunk in prepared.chunks]
            if started is None:
                # The embedder and the hooks (spaCy runs on one core) overlap: the second core is not left idle.
                # The copied context carries the file's time budget into the embedding thread.
                embedding = self.chunk_embedder.submit(
                    contextvars.copy_context().run, self.workspace.text_index.embed_chunks, chunks
                )
                for hook in self.workspace.hooks:
                    cast(BatchedDerivedDataHook, hook).add_documents(
                        [(p.doc, p.builder.pages, p.chunks) for p in members]
                    )
            else:
                embedding = started.embedding
                for work in started.works:
                    work.finish()
            vectors = embedding.result()
            check_deadline()
            for prepared in members:
                prepared.builder.wait_for_images()
            self.workspace.commit_documents(
                [(p.doc, p.builder.pages, p.chunks, p.builder.vector_stats, p.older) for p in members]
            )
        for prepared in members:
            self._done(prepared)
        return chunks, vectors

    def _finish_alone(self, prepared: _Prepared) -> np.ndarray | None:
        path = prepared.doc.source_path
        try:
            with resumed(prepared.budget):
                check_deadline()
                vectors = self.workspace.text_index.embed_chunks(prepared.chunks)
                for hook in self.workspace.hooks:
                    hook.add_document(prepared.doc, prepared.builder.pages, prepared.chunks)
                check_deadline()  # a hook that ignored the budget still fails the file, not the batch
                prepared.builder.wait_for_images()
                self.workspace.commit_documents(
                    [
                        (
                            prepared.doc,
                            prepared.builder.pages,
                            prepared.chunks,
                            prepared.builder.vector_stats,
                            prepared.older,
                        )
                    ]
                )
        except DeadlineExceeded as exc:
            self._fail(prepared, str(exc))
            return None
        except GraphUnavailable as exc:  # nothing of the file was kept; the next run ingests it
            self._fail(prepared, f"{GRAPH_UNAVAILABLE}, the file was not ingested (run again later): {exc}")
            return None
        except Exception as exc:  # a bug or a hook's failure must not stop the batch
            log.exception("ingesting %s failed", path)
            self._fail(prepared, f"{type(exc).__name__}: {exc}")
            return None
        except BaseException:
            _purge(self.workspace, prepared)
            raise
        self._done(prepared)
        return vectors

    def _fail(self, prepared: _Prepared, why: str) -> None:
        _purge(self.workspace, prepared)
        self.report.failed.append((prepared.doc.source_path, why))

    def _done(self, prepared: _Prepared) -> None:
        for old_id in prepared.older:
            self.workspace.delete_document(old_id)
        builder, report = prepared.builder, self.report
        report.pages += len(builder.pages)
        report.ocr_pages += builder.ocr_pages
        report.blank_pages += builder.blank_pages
        report.vectors_kept += builder.vectors_kept
        report.vectors_pruned += builder.vectors_pruned
        report.ingested.append(
            IngestedDocument(
                doc_id=prepared.doc.doc_id,
                path=prepared.doc.source_path,
                title=prepared.doc.title,
                pages=len(builder.pages),
                ocr_pages=builder.ocr_pages,
                chunks=len(prepared.chunks),
                replaced=prepared.older,
                truncated_from=prepared.truncated_from,
            )
        )


@dataclass
class _Started:
    """A group whose chunk embedding and hooks' model work run; ``works`` complete each hook's part, in order."""

    members: list[_Prepared]
    embedding: Future[np.ndarray]
    works: list[StartedWork]

    def ready(self) -> bool:
        return self.embedding.done() and all(work.ready() for work in self.works)


@dataclass
class _Deferred:
    """A hook's part of a started group that could not start early: all of it runs at finish."""

    call: Callable[[], None]

    def ready(self) -> bool:
        return True

    def finish(self) -> None:
        self.call()


def _chunk_count(members: Sequence[_Prepared]) -> int:
    return sum(len(p.chunks) for p in members)


def _joined(done: Sequence[tuple[list[Chunk], np.ndarray | None]]) -> tuple[list[Chunk], np.ndarray | None]:
    """Several finishes' committed chunks and embeddings as one, in order."""
    chunks = [chunk for group_chunks, _ in done for chunk in group_chunks]
    vectors = [group_vectors for _, group_vectors in done if group_vectors is not None]
    return chunks, np.concatenate(vectors) if vectors else None


def _purge(workspace: Workspace, prepared: _Prepared) -> None:
    """Nothing partial stays: images, page vectors and hook data go with the pending row."""
    prepared.builder.abandon()
    try:
        workspace.delete_document(prepared.doc.doc_id)
    except GraphUnavailable:  # the graph is down too: the row stays 'deleting', the next open purges it
        log.warning("%s stays marked for deletion until the graph store answers again", prepared.doc.doc_id)


def _prepare_one(
    workspace: Workspace, path: Path, options: _Options, ocr_pool: OcrPool, report: IngestReport, group: _Group
) -> _Prepared | None:
    """Check, render, read and chunk one file (its row ``pending``); None when skipped or failed (see ``report``)."""
    try:
        source = inspect_file(path, workspace.settings.ingest.max_file_mb)
    except IngestError as exc:
        report.failed.append((str(path), str(exc)))
        return None
    older = [d.doc_id for d in workspace.ready_docs_at(source.path) if d.doc_id != source.doc_id]
    if workspace.status_of(source.doc_id) == "ready" or group.holds(source.doc_id):
        report.skipped.append((str(path), f"unchanged: already ingested as {source.doc_id}"))
        for old_id in older:  # the path now holds content that is already ingested elsewhere
            workspace.delete_document(old_id)
        return None
    try:
        with deadline(options.max_seconds_per_file, "ingest.max_seconds_per_file") as budget:
            return _build_document(workspace, source, options, ocr_pool, group.image_writer, report, older, budget)
    except (IngestError, DeadlineExceeded) as exc:
        report.failed.append((str(path), str(exc)))
    except Exception as exc:  # a bug must not stop the batch
        log.exception("ingesting %s failed", path)
        report.failed.append((str(path), f"{type(exc).__name__}: {exc}"))
    return None


def _build_document(
    workspace: Workspace,
    source: SourceFile,
    options: _Options,
    ocr_pool: OcrPool,
    image_writer: ThreadPoolExecutor,
    report: IngestReport,
    older: list[str],
    budget: Deadline | None,
) -> _Prepared:
    loader = open_source(source, options.dpi, options.max_image_pixels)  # validates before anything is written
    num_pages = loader.num_pages
    if num_pages > options.max_pages:
        if options.page_limit == "refuse":
            loader.close()
            raise IngestError(
                f"{source.path}: {num_pages} pages is over the {options.max_pages}-page limit (ingest.max_pages); "
                "raise it, or set ingest.page_limit = 'truncate' to keep the first pages"
            )
        num_pages = options.max_pages
    doc = Document(
        doc_id=source.doc_id,
        source_path=str(source.path),
        title=loader.title,
        kind=source.kind,
        num_pages=num_pages,
        size_bytes=source.size_bytes,
        ingested_at=time.time(),
    )
    with closing(loader):
        workspace.begin_document(doc)  # before the try: if this fails, nothing was written
        builder = _PageBuilder(workspace, doc.doc_id, options, ocr_pool, image_writer, report)
        prepared = _Prepared(
            doc, builder, [], older, loader.num_pages if num_pages < loader.num_pages else None, budget
        )
        try:
            if source.kind == "pdf":  # its pages are drawn from this copy when asked for, even if the file goes
                try:
                    workspace.keep_source(doc.doc_id, source.path)
                except ValueError as exc:
                    raise IngestError(str(exc)) from None
            for raw in loader.pages():
                if raw.number > num_pages:
                    break
                check_deadline()
                builder.add(raw)
            builder.finish()
            check_deadline()
            chunks = chunk_pages(
                doc.doc_id,
                doc.title,
                [(page.page, page.text) for page in builder.pages],
                chunk_chars=options.chunk_chars,
                chunk_overlap=options.chunk_overlap,
                with_context=options.heading_context,
            )
            texts = {page.page: page.text for page in builder.pages}
            for chunk in chunks:  # chunk offsets index the page text, and so its character boxes
                page_boxes = builder.char_boxes.get(chunk.page_start)
                if page_boxes:
                    span = slice(chunk.char_start, chunk.char_end)
                    chunk.boxes = line_boxes(page_boxes[span], texts[chunk.page_start][span])
        except BaseException:
            _purge(workspace, prepared)
            raise
    prepared.chunks = chunks
    return prepared


def _write_page_images(image: Image.Image, blank: bool, image_file: Path, thumb_file: Path, thumbnail_px: int) -> None:
    stored = stored_form(image, blank)
    save_page_image(stored, image_file)
    save_thumbnail(stored, thumb_file, thumbnail_px)


class _PageBuilder:
    """Turns raw pages into page records, text (OCR'd when needed), page vectors, and the images drawn for them.

    OCR runs in ``ocr_pool`` while later pages render; :meth:`finish` collects it, so
    ``pages`` is complete only after that.
    """

    def __init__(
        self,
        workspace: Workspace,
        doc_id: str,
        options: _Options,
        ocr_pool: OcrPool,
        image_writer: ThreadPoolExecutor,
        report: IngestReport,
    ) -> None:
        self.workspace = workspace
        self.doc_id = doc_id
        self.options = options
        self.ocr_pool = ocr_pool
        self.image_writer = image_writer
        self._image_writes: list[Future[None]] = []
        self.report = report
        self.folder = workspace.doc_pages_dir(doc_id)
        self.pages: list[Page] = []
        self.vector_stats: dict[int, PageVectorStats] = {}
        self.char_boxes: dict[int, CharBoxes] = {}  # per page, aligned with its text (for chunk boxes)
        self.ocr_pages = 0
        self.blank_pages = 0
        self.vectors_kept = 0
        self.vectors_pruned = 0
        self._vectors: _PageVectorStream | None = None  # started with the first page image
        self._ocr: dict[int, Future[PageText]] = {}  # index into pages -> tesseract's text and boxes
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, raw: RawPage) -> None:
        if raw.size is None:  # a text file's page, or a PDF page with nothing on it
            source = "none" if raw.blank else "text"
            self.pages.append(Page(doc_id=self.doc_id, page=raw.number, text=raw.text, text_source=source))
            self.blank_pages += raw.blank
            return
        image_file = self.folder / f"{raw.number}.png"
        thumb_file = self.folder / f"{raw.number}.thumb.jpg"
        if raw.char_boxes is not None:
            self.char_boxes[raw.number] = raw.char_boxes
        self.pages.append(
            Page(
                doc_id=self.doc_id,
                page=raw.number,
                text=raw.text,
                text_source="pdf" if raw.text.strip() else "none",
                image_path=self.workspace.relative(image_file),  # written now, or when first asked for
                thumbnail_path=self.workspace.relative(thumb_file),
                width=raw.size[0],
                height=raw.size[1],
            )
        )
        encoder, index = self.workspace.page_encoder, self.workspace.page_index
        encode = encoder is not None and index is not None
        ocr = wants_ocr(self.options.ocr, raw.text, raw.image_area, has_image=True)
        # An image file's pages are stored now (no copy of it is kept); a PDF page is drawn only for a reader of its
        # pixels here, and stored only for tesseract, which reads a file.
        store = raw.image is not None
        if not (store or ocr or encode):
            return
        image = raw.pixels()
        blank = is_blank(image)
        self.blank_pages += blank
        ocr = ocr and not blank  # nothing for tesseract to read
        if store or ocr:
            while len(self._image_writes) >= IMAGE_WRITES_QUEUED:  # bounds the rendered pages held in memory
                self._image_writes.pop(0).result()
            write = self.image_writer.submit(
                _write_page_images, image, blank, image_file, thumb_file, self.options.thumbnail_px
            )
            self._image_writes.append(write)
            if ocr:
                write.result()  # tesseract reads the file
                self._start_ocr(len(self.pages) - 1, image_file)
        if encoder is not None and index is not None:
            if self._vectors is None:
                self._vectors = _PageVectorStream(encoder, index, self.doc_id)
            self._vectors.put(raw.number, image)

    def finish(self) -> None:
        """Wait for the document's OCR and for the vectors of its last pages."""
        self._collect_ocr(keep=0)
        if self._vectors is not None:
            stream, self._vectors = self._vectors, None
            for number, embedding in stream.finish():
                kept = int(embedding.vectors.shape[0])
                self.vector_stats[number] = PageVectorStats(
                    embedding.stats, num_patches=embedding.num_patches, vectors_kept=kept
                )
                self.vectors_kept += kept
                self.vectors_pruned += max(0, embedding.num_patches - kept)

    def wait_for_images(self) -> None:
        """Every page image and thumbnail of the document on disk (a write's error is raised here)."""
        writes, self._image_writes = self._image_writes, []
        for write in writes:
            write.result()

    def abandon(self) -> None:
        """Drop queued OCR (the document failed); a tesseract already running ends within its timeout.
        Image writes in flight finish first, so the purge that follows removes every file."""
        for future in self._ocr.values():
            future.cancel()
        self._ocr.clear()
        if self._vectors is not None:  # stopped before the purge, so no vector is added after it
            self._vectors.abandon()
            self._vectors = None
        writes, self._image_writes = self._image_writes, []
        for write in writes:
            if not write.cancel():
                wait([write])

    def _start_ocr(self, index: int, image_file: Path) -> None:
        self._collect_ocr(keep=OCR_QUEUE_PER_WORKER * self.ocr_pool.workers - 1)
        self._ocr[index] = self.ocr_pool.submit(image_file, timeout_s=remaining_seconds(OCR_TIMEOUT_S))

    def _collect_ocr(self, keep: int) -> None:
        """Take finished OCR results in page order until at most ``keep`` are outstanding."""
        while len(self._ocr) > keep:
            index = min(self._ocr)
            future = self._ocr.pop(index)
            try:
                recognised = future.result(timeout=remaining_seconds(OCR_TIMEOUT_S) + 1.0)
            except FutureTimeout:
                check_deadline()
                raise
            except OcrUnavailable as exc:
                self._warn_once(f"{exc}")
                continue
            except subprocess.TimeoutExpired:
                check_deadline()  # the file's budget ran out: the file fails
                self._warn_once(
                    f"OCR took over {OCR_TIMEOUT_S:g} s on {self.doc_id} page {self.pages[index].page}; skipped"
                )
                continue
            except (RuntimeError, OSError) as exc:  # one unreadable page must not fail the document
                self._warn_once(f"OCR failed on {self.doc_id} page {self.pages[index].page}: {exc}")
                continue
            self.ocr_pages += 1
            if recognised.text.strip():
                page = self.pages[index] = self.pages[index].model_copy(
                    update={"text": recognised.text, "text_source": "ocr"}
                )
                if recognised.char_boxes is None:  # the layer's boxes no longer match the text
                    self.char_boxes.pop(page.page, None)
                else:
                    self.char_boxes[page.page] = recognised.char_boxes

    def _warn_once(self, message: str) -> None:
        if message not in self.report.warnings:
            log.warning(message)
            self.report.warnings.append(message)


class _PageVectorStream:
    """One document's page images encoded on a background thread through ``encode_page_stream`` while the
    next pages render and OCR (the encoder batches and preprocesses a continuous stream, so the model
    does not wait for the renderer); each page's vectors go to the page index on that thread, in order.
    """

    def __init__(self, encoder: PageEncoder, index: PageIndex, doc_id: str) -> None:
        self.encoder, self.index, self.doc_id = encoder, index, doc_id
        self._queue: queue.Queue[tuple[int, Image.Image] | None] = queue.Queue(maxsize=PAGES_AHEAD_OF_ENCODER)
        self._numbers: deque[int] = deque()  # pages handed to the encoder, not yet returned
        self._done: list[tuple[int, PageEmbedding]] = []
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pagehop-page-encoder", daemon=True)
        self._thread.start()

    def put(self, number: int, image: Image.Image) -> None:
        """Queue a page; waits while the encoder is ``PAGES_AHEAD_OF_ENCODER`` pages behind."""
        while True:
            self._raise_error()
            try:
                self._queue.put((number, image), timeout=0.5)
                return
            except queue.Full:
                check_deadline()  # the file's budget also bounds waiting for the model

    def finish(self) -> list[tuple[int, PageEmbedding]]:
        """Every queued page encoded and indexed: (page number, embedding) in page order."""
        self._end()
        self._raise_error()
        return self._done

    def abandon(self) -> None:
        """Stop after the batch in flight; pages not yet encoded are dropped."""
        self._stopping.set()
        while True:  # make room for the end marker
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._end()

    def _end(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.5)  # the end marker
                break
            except queue.Full:
                continue
        self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _images(self) -> Iterator[Image.Image]:
        while True:
            item = self._queue.get()
            if item is None or self._stopping.is_set():
                return
            number, image = item
            self._numbers.append(number)
            yield image

    def _run(self) -> None:
        try:
            for embedding in self.encoder.encode_page_stream(self._images()):
                number = self._numbers.popleft()
                if self._stopping.is_set():
                    break
                self.index.add(self.doc_id, number, embedding.vectors)
                self._done.append((number, embedding))
        except BaseException as exc:  # raised in the ingest thread by the next put() or finish()
            self._error = exc
            self._stopping.set()
            while True:  # unblock a put() waiting on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
