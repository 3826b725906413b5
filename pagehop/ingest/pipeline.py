"""Ingest files into a workspace: pages, images, text (with OCR), chunks, and every registered channel.

One document at a time, in this order (see ``pagehop.workspace`` for why it is crash safe):

1. check the file (type by magic bytes, size, encryption, page count) — nothing written yet;
2. catalog row ``pending``;
3. per page: render, save image + thumbnail, text layer or OCR, page vectors in batches;
4. chunks; derived-data hooks (graph extraction, ...);
5. one transaction: pages + chunks + ``ready`` (+ the replaced old version marked ``deleting``);
6. the replaced old version purged; chunks embedded into the text index in batches across documents,
   the index saved every ``TEXT_SAVE_SECONDS`` (what a crash loses is re-embedded from the catalog's
   chunks at the next open).

Any failure in 2–5 purges what was written, and the batch goes on with the next file.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image
from tqdm import tqdm

from pagehop.ingest.files import IngestError, SourceFile, expand_paths, inspect_file
from pagehop.ingest.layout import CharBoxes, line_boxes
from pagehop.ingest.loaders import RawPage, open_source
from pagehop.ingest.ocr import OcrMode, OcrUnavailable, ocr_image_file, wants_ocr
from pagehop.retrieval.chunking import chunk_pages
from pagehop.schema import Chunk, Document, Page, TextSource
from pagehop.workspace import PageVectorStats, Workspace

log = logging.getLogger(__name__)

ENCODE_BATCH = 8  # pages per page-encoder call: amortises model overhead, bounds memory
TEXT_BATCH = 256  # chunks embedded per text-index call; the index catches up on the catalog after a crash
TEXT_SAVE_SECONDS = 120.0  # a long ingest saves the text index this often, so a crash re-embeds little
THUMBNAIL_QUALITY = 80


@dataclass
class IngestedDocument:
    doc_id: str
    path: str
    title: str
    pages: int
    ocr_pages: int
    chunks: int
    replaced: list[str] = field(default_factory=list)  # doc_ids of the older versions it replaced


SKIPPED_LISTED = 10


@dataclass
class IngestReport:
    ingested: list[IngestedDocument] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error message)
    warnings: list[str] = field(default_factory=list)
    pages: int = 0
    ocr_pages: int = 0
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
            f"{len(self.ingested)} documents ingested ({self.pages} pages, {self.ocr_pages} OCR'd), "
            f"{len(self.skipped)} skipped, {len(self.failed)} failed in {self.seconds:.1f} s",
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
        lines += [f"failed {path}: {error}" for path, error in self.failed]
        lines += self.notes
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


@runtime_checkable
class ReportsToIngest(Protocol):
    """A hook with something to add to the ingest summary (e.g. the graph indexer's LLM calls)."""

    def take_summary(self) -> str | None: ...


@dataclass
class _Options:
    dpi: int
    ocr: OcrMode
    ocr_lang: str
    thumbnail_px: int
    max_image_pixels: int
    chunk_chars: int
    chunk_overlap: int


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
    )
    report = IngestReport(channels=workspace.live_channels)
    files = _unique(expand_paths(Path(p) for p in paths))
    show = sys.stderr.isatty() if progress is None else progress
    with workspace.writer_lock():  # another process ingesting here waits instead of racing
        workspace.recover()
        text_index = workspace.text_index
        unindexed: list[Chunk] = []  # chunks of committed documents, embedded in batches
        saved_at = time.monotonic()
        try:
            with tqdm(total=len(files), unit="file", desc="ingest", disable=not show) as bar:
                for path in files:
                    unindexed += _ingest_one(workspace, path, options, report)
                    if len(unindexed) >= TEXT_BATCH:
                        text_index.add(unindexed)
                        unindexed = []
                        if time.monotonic() - saved_at >= TEXT_SAVE_SECONDS:
                            text_index.save()
                            saved_at = time.monotonic()
                    bar.set_postfix(pages=report.pages, failed=len(report.failed))
                    bar.update()
        finally:
            text_index.add(unindexed)
            text_index.save()
            report.notes += [n for h in workspace.hooks if isinstance(h, ReportsToIngest) and (n := h.take_summary())]
            report.seconds = time.perf_counter() - started
    return report


def delete(workspace: Workspace, doc_id_or_path: str | Path) -> Document | None:
    """Remove a document and everything derived from it; the removed document, or None if not found."""
    doc = workspace.find_document(doc_id_or_path)
    if doc is not None:
        workspace.delete_document(doc.doc_id)
    return doc


def _unique(paths: Iterable[Path]) -> list[Path]:
    """Each file once, even when named directly and also found in a named folder."""
    return list(dict.fromkeys(path.expanduser().resolve() for path in paths))


def _ingest_one(workspace: Workspace, path: Path, options: _Options, report: IngestReport) -> list[Chunk]:
    """Ingest one file and return the chunks it committed (for the text index); errors go to ``report``."""
    try:
        source = inspect_file(path, workspace.settings.ingest.max_file_mb)
    except IngestError as exc:
        report.failed.append((str(path), str(exc)))
        return []
    older = [d.doc_id for d in workspace.ready_docs_at(source.path) if d.doc_id != source.doc_id]
    if workspace.status_of(source.doc_id) == "ready":
        report.skipped.append((str(path), f"unchanged: already ingested as {source.doc_id}"))
        for old_id in older:  # the path now holds content that is already ingested elsewhere
            workspace.delete_document(old_id)
        return []
    try:
        result, chunks = _build_document(workspace, source, options, report, older)
    except IngestError as exc:
        report.failed.append((str(path), str(exc)))
        return []
    except Exception as exc:  # a bug or a hook's failure must not stop the batch
        log.exception("ingesting %s failed", path)
        report.failed.append((str(path), f"{type(exc).__name__}: {exc}"))
        return []
    report.ingested.append(result)
    return chunks


def _build_document(
    workspace: Workspace, source: SourceFile, options: _Options, report: IngestReport, older: list[str]
) -> tuple[IngestedDocument, list[Chunk]]:
    loader = open_source(source, options.dpi, options.max_image_pixels)  # validates before anything is written
    doc = Document(
        doc_id=source.doc_id,
        source_path=str(source.path),
        title=loader.title,
        kind=source.kind,
        num_pages=loader.num_pages,
        size_bytes=source.size_bytes,
        ingested_at=time.time(),
    )
    with closing(loader):
        workspace.begin_document(doc)  # before the try: if this fails, nothing was written
        try:
            builder = _PageBuilder(workspace, doc.doc_id, options, report)
            for raw in loader.pages():
                builder.add(raw)
            builder.flush_vectors()
            chunks = chunk_pages(
                doc.doc_id,
                doc.title,
                [(page.page, page.text) for page in builder.pages],
                chunk_chars=options.chunk_chars,
                chunk_overlap=options.chunk_overlap,
            )
            texts = {page.page: page.text for page in builder.pages}
            for chunk in chunks:  # chunk offsets index the page text, and so its character boxes
                page_boxes = builder.char_boxes.get(chunk.page_start)
                if page_boxes:
                    span = slice(chunk.char_start, chunk.char_end)
                    chunk.boxes = line_boxes(page_boxes[span], texts[chunk.page_start][span])
            for hook in workspace.hooks:
                hook.add_document(doc, builder.pages, chunks)
            workspace.commit_document(doc, builder.pages, chunks, builder.vector_stats, replaces=older)
        except BaseException:
            # Nothing partial stays: images, page vectors and hook data go with the pending row.
            workspace.delete_document(doc.doc_id)
            raise
    for old_id in older:
        workspace.delete_document(old_id)
    report.pages += len(builder.pages)
    report.ocr_pages += builder.ocr_pages
    report.vectors_kept += builder.vectors_kept
    report.vectors_pruned += builder.vectors_pruned
    result = IngestedDocument(
        doc_id=doc.doc_id,
        path=doc.source_path,
        title=doc.title,
        pages=len(builder.pages),
        ocr_pages=builder.ocr_pages,
        chunks=len(chunks),
        replaced=older,
    )
    return result, chunks


class _PageBuilder:
    """Turns raw pages into stored images, text (OCR'd when needed) and page vectors."""

    def __init__(self, workspace: Workspace, doc_id: str, options: _Options, report: IngestReport) -> None:
        self.workspace = workspace
        self.doc_id = doc_id
        self.options = options
        self.report = report
        self.folder = workspace.doc_pages_dir(doc_id)
        self.pages: list[Page] = []
        self.vector_stats: dict[int, PageVectorStats] = {}
        self.char_boxes: dict[int, CharBoxes] = {}  # per page, aligned with its text (for chunk boxes)
        self.ocr_pages = 0
        self.vectors_kept = 0
        self.vectors_pruned = 0
        self._batch: list[tuple[int, Image.Image]] = []
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, raw: RawPage) -> None:
        if raw.image is None:
            self.pages.append(Page(doc_id=self.doc_id, page=raw.number, text=raw.text, text_source="text"))
            return
        image_file = self.folder / f"{raw.number}.png"
        thumb_file = self.folder / f"{raw.number}.thumb.jpg"
        raw.image.save(image_file, compress_level=1)  # fast; page PNGs are a cache, not an archive
        thumbnail = raw.image.copy()
        thumbnail.thumbnail((self.options.thumbnail_px, self.options.thumbnail_px))
        thumbnail.save(thumb_file, quality=THUMBNAIL_QUALITY)
        text, source, boxes = self._text(raw, image_file)
        if boxes is not None:
            self.char_boxes[raw.number] = boxes
        self.pages.append(
            Page(
                doc_id=self.doc_id,
                page=raw.number,
                text=text,
                text_source=source,
                image_path=self.workspace.relative(image_file),
                thumbnail_path=self.workspace.relative(thumb_file),
                width=raw.image.width,
                height=raw.image.height,
            )
        )
        if self.workspace.page_encoder is not None and self.workspace.page_index is not None:
            self._batch.append((raw.number, raw.image))
            if len(self._batch) >= ENCODE_BATCH:
                self.flush_vectors()

    def _text(self, raw: RawPage, image_file: Path) -> tuple[str, TextSource, CharBoxes | None]:
        layer: tuple[str, TextSource, CharBoxes | None] = (
            raw.text,
            "pdf" if raw.text.strip() else "none",
            raw.char_boxes,
        )
        if not wants_ocr(self.options.ocr, raw.text, raw.image_area, has_image=True):
            return layer
        try:
            recognised = ocr_image_file(image_file, lang=self.options.ocr_lang)
        except OcrUnavailable as exc:
            self._warn_once(f"{exc}")
            return layer
        except (RuntimeError, OSError) as exc:  # one unreadable page must not fail the document
            self._warn_once(f"OCR failed on {self.doc_id} page {raw.number}: {exc}")
            return layer
        self.ocr_pages += 1
        return (recognised.text, "ocr", recognised.char_boxes) if recognised.text.strip() else layer

    def _warn_once(self, message: str) -> None:
        if message not in self.report.warnings:
            log.warning(message)
            self.report.warnings.append(message)

    def flush_vectors(self) -> None:
        encoder, index = self.workspace.page_encoder, self.workspace.page_index
        if not self._batch or encoder is None or index is None:
            return
        numbers = [number for number, _ in self._batch]
        embeddings = encoder.encode_pages([image for _, image in self._batch])
        self._batch = []
        for number, embedding in zip(numbers, embeddings, strict=True):
            index.add(self.doc_id, number, embedding.vectors)
            kept = int(embedding.vectors.shape[0])
            self.vector_stats[number] = PageVectorStats(
                embedding.stats, num_patches=embedding.num_patches, vectors_kept=kept
            )
            self.vectors_kept += kept
            self.vectors_pruned += max(0, embedding.num_patches - kept)
