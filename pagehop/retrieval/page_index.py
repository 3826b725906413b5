"""Embedded multi-vector page index: float16 vectors on disk, exact MaxSim search, no server.

Layout of the index folder::

    manifest.json        the only source of truth: segments, their committed sizes, tombstones
    seg-000001.vec       float16 (vectors, dim), every page's vectors back to back
    seg-000001.end       int64 (pages,), each page's end offset into .vec
    seg-000001.sum       float16 (pages * summary_vectors, dim), the first-stage summaries
    seg-000001.keys      one JSON line [doc_id, page] per page
    codebook-000002.f16  float16 (centroids, dim), the first stage's shared codebook (large indexes)
    cells-000003.i32     int32 (pages * summary_vectors,), a segment's inverted lists: the nearest
                         codebook centroid of each of its summaries (large indexes)

Writes are append-only. ``add`` appends to the last segment's files, fsyncs them, then
replaces the manifest atomically (temp file + ``os.replace``) with the new committed
sizes. A crash mid-append leaves bytes past the committed sizes; they are never read and
are truncated before the next append, so the manifest only ever points at complete data.
Deletion writes tombstones into the manifest; once the dead fraction passes
``compact_threshold`` the live pages are rewritten into fresh segments and the manifest
swapped to them (old files are removed only after the swap, and unreferenced files are
swept on open). One process writes an index at a time; searches in other processes see
the state of the manifest they opened.

Search (``exact=True``, the reference) is exact MaxSim (sum over query tokens of the best
page-vector dot product), with float32 accumulation, over blocks of pages read with
``pread`` (not memory-mapped, so a scan of a 12 GB index does not grow the process's
resident memory) and ``np.maximum.reduceat``. ``search(..., exact=False)`` takes the fast
path the index has:

- with a ``device`` (CUDA when ``from_settings`` finds one): every page's vectors stay
  resident on the device in float16 (``pagehop.retrieval.resident``) and each query scores
  all of them there; the best ``max(4k, 64)`` are re-scored exactly on the CPU, so scores
  are the exact ones and the top ``k`` differs from exact search only if more than that
  many pages lie within float16 rounding (~1e-3) of the k-th score;
- without one, once the index holds more than ``4 * fast_candidates`` pages: the first
  stage ranks pages by MaxSim against a few summary vectors per page (centroids of a tiny
  per-page spherical k-means, computed once at ``add``, kept in memory as float16), then
  the best ``fast_candidates`` are re-ranked exactly. ``candidates=n`` asks for that
  explicitly. Once the index holds ``codebook_min_pages`` pages, a write trains a shared
  codebook over all pages' summaries (spherical k-means, ~``_SUMMARIES_PER_CENTROID``
  summaries per centroid) and the first stage scores only the pages with a summary in the
  codebook cell nearest to some query token (an inverted list per centroid). The
  codebook is retrained when the index has doubled since.

The inverted lists are stored like everything else: each segment's manifest entry names
its ``cells`` file, the codebook it was assigned with, the pages it covers and their
CRC-32. Every commit that adds pages, compacts or trains a codebook brings them up to date
in the same manifest swap (an append extends the file; a new codebook or a compaction
writes fresh files, and the old ones are swept like compacted segments). A reader whose
lists are missing, stale (another codebook, fewer pages) or damaged derives them in memory
from the summaries and logs it, so a bad file costs time, never a wrong answer; the next
write stores them again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pagehop.durable import is_temporary_of, replacing

if TYPE_CHECKING:
    from pagehop.config import Settings
    from pagehop.retrieval.base import PageIndex
    from pagehop.retrieval.resident import ResidentMaxSim

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
_SEGMENT_FILE = re.compile(r"^seg-\d{6}\.(vec|end|sum|keys)$")
_CODEBOOK_FILE = re.compile(r"^codebook-\d{6}\.f16$")
_CELLS_FILE = re.compile(r"^cells-\d{6}\.i32$")
_EXTENSIONS = ("vec", "end", "sum", "keys")
# Vectors scored per block in exact search: 64k x 128 float32 is 32 MiB of working memory.
_BLOCK_VECTORS = 65_536
# Pages re-scored exactly after the device's float16 pass: enough to absorb its rounding.
_DEVICE_SHORTLIST = 64
# Page summaries per codebook centroid: sets the inverted lists' length, hence how many
# pages the first stage scores (measured in docs/benchmarks.md, "Page search at 100k pages").
_SUMMARIES_PER_CENTROID = 400
_MAX_CENTROIDS = 4096
# Summaries the codebook's k-means trains on, per centroid (a strided sample of all of them).
_TRAIN_PER_CENTROID = 32
# The codebook is retrained once the index has grown this many times since it was trained.
_RETRAIN_GROWTH = 2

PageKey = tuple[str, int]


class PageIndexError(RuntimeError):
    """The index folder is unreadable or inconsistent."""


@dataclass
class _Codebook:
    """The shared first-stage codebook: unit centroids of page summaries, float32 in memory."""

    name: str
    centroids: np.ndarray  # (centroids, dim)
    trained_on: int  # live pages when it was trained


@dataclass(frozen=True)
class _StoredCells:
    """A segment's manifest entry for its stored inverted lists (file ``<name>.i32``)."""

    name: str
    codebook: str  # the codebook the summaries were assigned with
    pages: int  # the file's first ``pages * summary_vectors`` int32 are committed
    crc32: int  # of those bytes

    def to_manifest(self) -> dict[str, Any]:
        return {"name": self.name, "codebook": self.codebook, "pages": self.pages, "crc32": self.crc32}


@dataclass
class _SegmentCells:
    """A segment's summaries grouped by nearest codebook centroid (an inverted list per centroid)."""

    pages: int  # the segment's first ``pages`` pages are assigned
    cells: np.ndarray  # (pages * summary_vectors,) int32 nearest centroid of each summary
    order: np.ndarray  # summary rows sorted by cell
    bounds: np.ndarray  # (centroids + 1,) cell c's rows are order[bounds[c]:bounds[c + 1]]
    # The stored entry whose file was read back intact and holds ``cells``' first pages (None: derived).
    stored: _StoredCells | None = None


@dataclass
class _Segment:
    """One append-only group of pages; sizes are the committed ones from the manifest."""

    name: str
    num_pages: int = 0
    num_vectors: int = 0
    keys_bytes: int = 0
    dead: set[int] = field(default_factory=set)
    cells: _StoredCells | None = None  # its stored inverted lists, if any
    # Loaded lazily and dropped whenever the committed sizes change.
    _arrays: tuple[_VectorFile, np.ndarray, np.ndarray] | None = None
    _keys: list[PageKey] | None = None

    def to_manifest(self) -> dict[str, Any]:
        entry = {
            "name": self.name,
            "num_pages": self.num_pages,
            "num_vectors": self.num_vectors,
            "keys_bytes": self.keys_bytes,
            "dead": sorted(self.dead),
        }
        if self.cells is not None:
            entry["cells"] = self.cells.to_manifest()
        return entry


class LocalPageIndex:
    """A ``PageIndex`` persisted under ``folder``; reopening it gives the same results."""

    def __init__(
        self,
        folder: str | Path,
        *,
        dim: int = 128,
        summary_vectors: int = 8,
        compact_threshold: float = 0.25,
        max_segment_vectors: int = 4_000_000,
        device: str | None = None,
        fast_candidates: int = 256,
        codebook_min_pages: int = 2048,
    ) -> None:
        """Open the index in ``folder`` or create an empty one.

        ``dim`` and ``summary_vectors`` are fixed when the index is created; reopening with
        a different ``dim`` is an error. Segments roll over after ``max_segment_vectors``.
        ``device`` (a torch device such as ``"cuda"``) keeps the vectors resident there for
        ``search(..., exact=False)``; ``fast_candidates`` is the CPU fast path's re-rank depth.
        A write trains the first stage's codebook once the index holds ``codebook_min_pages``.
        """
        if not 0 < compact_threshold <= 1:
            raise ValueError("compact_threshold must be in (0, 1]")
        if summary_vectors < 1:
            raise ValueError("summary_vectors must be at least 1")
        if fast_candidates < 1:
            raise ValueError("fast_candidates must be at least 1")
        if codebook_min_pages < 1:
            raise ValueError("codebook_min_pages must be at least 1")
        self.fast_candidates = fast_candidates
        self.codebook_min_pages = codebook_min_pages
        self._resident: ResidentMaxSim | None = None
        if device is not None:
            from pagehop.retrieval.resident import ResidentMaxSim

            self._resident = ResidentMaxSim(device)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.compact_threshold = compact_threshold
        self.max_segment_vectors = max_segment_vectors
        self._lock = threading.RLock()
        self.dim = dim
        self.summary_vectors = summary_vectors
        self._segments: list[_Segment] = []
        self._next_segment = 1
        self._codebook: _Codebook | None = None
        # Derived from the summaries and the codebook; kept across manifest reloads (segments never change).
        self._cells: dict[str, _SegmentCells] = {}
        self._locations: dict[PageKey, tuple[int, int]] = {}
        self._signature: tuple[int, int] | None = None
        self._swept = False
        self._load_state()

    def refresh(self) -> None:
        """Pick up what another process committed since this one last read or wrote the manifest.

        ``search`` calls it, so a server sees pages a separate ingest process adds.
        """
        with self._lock:
            if self._manifest_signature() != self._signature:
                self._load_state()

    @classmethod
    def from_settings(cls, settings: Settings, *, dim: int = 128) -> LocalPageIndex:
        """The index under ``<workspace>/page_index``, resident on the GPU when the models run on CUDA."""
        from pagehop.models import torch_device

        device = torch_device(settings.models.device)
        return cls(
            Path(settings.workspace) / "page_index", dim=dim, device=device if device.startswith("cuda") else None
        )

    # -- PageIndex ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._locations)

    def add(self, doc_id: str, page: int, vectors: np.ndarray) -> None:
        """Store one page; a page already stored under (doc_id, page) is replaced."""
        self.add_many([(doc_id, page, vectors)])

    def add_many(self, pages: Iterable[tuple[str, int, np.ndarray]]) -> None:
        """Store many pages with one durable commit (much faster than one ``add`` each).

        Every page is validated before anything is written, so bad input stores nothing.
        """
        batch = [(doc_id, page, self._checked_vectors(doc_id, page, vectors)) for doc_id, page, vectors in pages]
        if not batch:
            return
        with self._lock:
            self._prepare_to_write()
            start = 0
            while start < len(batch):
                segment = self._writable_segment()
                end = self._batch_end_for(segment, batch, start)
                self._append(segment, batch[start:end])
                start = end
            self._train_codebook_if_due()

    def delete_document(self, doc_id: str) -> None:
        """Tombstone every page of ``doc_id``; compacts when enough of the index is dead."""
        with self._lock:
            self._prepare_to_write()
            doomed = [key for key in self._locations if key[0] == doc_id]
            if not doomed:
                return
            for key in doomed:
                seg_index, local = self._locations[key]
                self._segments[seg_index].dead.add(local)
            try:
                self._write_manifest()
            except BaseException:
                for key in doomed:
                    seg_index, local = self._locations[key]
                    self._segments[seg_index].dead.discard(local)
                raise
            for key in doomed:
                del self._locations[key]
            if self.dead_fraction() > self.compact_threshold:
                self.compact()

    def search(
        self, query: np.ndarray, k: int, candidates: int | None = None, *, exact: bool = True
    ) -> list[tuple[str, int, float]]:
        """Best ``k`` pages for one query's (tokens, dim) vectors, by MaxSim, highest first.

        ``exact=True`` scores every page exactly on the CPU (the reference). ``exact=False``
        uses the fast path (module docstring): the device when the index has one, else the
        first stage once the index is large. ``candidates=n`` forces the first stage with
        the best ``max(n, k)`` re-ranked exactly. Returned scores are always exact MaxSim;
        only pages outside a first stage's candidate set can be missed.
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        if candidates is not None and candidates < 1:
            raise ValueError("candidates must be at least 1")
        q = self._checked_query(query)
        with self._lock:
            self.refresh()
            try:
                return self._search(q, k, candidates, exact)
            except FileNotFoundError:
                # A writer compacted between our refresh and reading its old segment files.
                self._load_state()
                return self._search(q, k, candidates, exact)

    def _search(self, q: np.ndarray, k: int, candidates: int | None, exact: bool) -> list[tuple[str, int, float]]:
        if not self._locations:
            return []
        if candidates is None and not exact:
            if self._resident is not None and self._sync_resident():
                refs, approx = self._device_scores(q)
                refs = _best(refs, approx, max(4 * k, _DEVICE_SHORTLIST))
                return self._top_k(refs, self._exact_scores_of(q, refs), k)
            if len(self._locations) > 4 * self.fast_candidates:
                candidates = self.fast_candidates
        if candidates is None:
            refs, scores = self._exact_scores_all(q)
        else:
            refs = self._first_stage(q, max(candidates, k))
            scores = self._exact_scores_of(q, refs)
        return self._top_k(refs, scores, k)

    # -- extras -------------------------------------------------------------------

    def get_vectors(self, doc_id: str, page: int) -> np.ndarray:
        """The stored float16 vectors of one page (a copy)."""
        with self._lock:
            if (doc_id, page) not in self._locations:
                raise KeyError(f"page {page} of {doc_id!r} is not in the index")
            seg_index, local = self._locations[(doc_id, page)]
            vectors, ends, _ = self._arrays(self._segments[seg_index])
            start = int(ends[local - 1]) if local else 0
            return np.array(vectors[start : ends[local]])

    def pages(self) -> list[PageKey]:
        """Every live (doc_id, page), in insertion order."""
        with self._lock:
            return list(self._locations)

    def dead_fraction(self) -> float:
        total = sum(segment.num_pages for segment in self._segments)
        return 0.0 if total == 0 else sum(len(segment.dead) for segment in self._segments) / total

    def stats(self) -> dict[str, float]:
        with self._lock:
            live_vectors = 0
            for seg_index, local in self._locations.values():
                _, ends, _ = self._arrays(self._segments[seg_index])
                live_vectors += int(ends[local]) - (int(ends[local - 1]) if local else 0)
            return {
                "pages": float(len(self)),
                "vectors": float(live_vectors),
                "segments": float(len(self._segments)),
                "dead_fraction": self.dead_fraction(),
                "bytes_on_disk": float(sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())),
            }

    def compact(self) -> None:
        """Rewrite the live pages into fresh segments and drop the dead ones."""
        with self._lock:
            self._prepare_to_write()
            old_segments = self._segments
            live = list(self._locations.items())
            self._segments = []
            try:
                for chunk in _chunks(live, 4096):
                    rows = []
                    for (doc_id, page), (seg_index, local) in chunk:
                        vectors, ends, _ = self._arrays(old_segments[seg_index])
                        start = int(ends[local - 1]) if local else 0
                        rows.append((doc_id, page, np.asarray(vectors[start : ends[local]])))
                    start_row = 0
                    while start_row < len(rows):
                        segment = self._writable_segment()
                        end_row = self._batch_end_for(segment, rows, start_row)
                        self._write_segment_data(segment, rows[start_row:end_row])
                        start_row = end_row
                for segment in self._segments:
                    self._store_cells(segment, [])  # new files only; a failure sweeps them below
                self._write_manifest()
            except BaseException:
                # The manifest on disk still names the old segments: go back to them.
                self._segments = old_segments
                self._sweep_unreferenced_files()
                raise
            for segment in old_segments:
                segment._arrays = None
            self._sweep_unreferenced_files()
            self._rebuild_locations()
            self._train_codebook_if_due()

    def store_inverted_lists(self) -> None:
        """Store the first stage's inverted lists of every segment that lacks current ones.

        Every commit keeps them current; this upgrades an index written before they were
        stored (or replaces a damaged lists file) without adding pages: one manifest swap.
        """
        with self._lock:
            self._prepare_to_write()
            if self._codebook is None:
                return
            before = [segment.cells for segment in self._segments]
            with self._storing_cells() as created:
                for segment in self._segments:
                    self._store_cells(segment, created)
                if [segment.cells for segment in self._segments] != before:
                    self._write_manifest()
            self._sweep_unreferenced_files()

    # -- validation ---------------------------------------------------------------

    def _checked_vectors(self, doc_id: str, page: int, vectors: np.ndarray) -> np.ndarray:
        if not isinstance(doc_id, str) or not doc_id or "\n" in doc_id:
            raise ValueError(f"doc_id must be a non-empty single-line string, got {doc_id!r}")
        if isinstance(page, bool) or not isinstance(page, int | np.integer) or page < 1:
            raise ValueError(f"page must be an integer >= 1 (pages are 1-based), got {page!r}")
        array = np.asarray(vectors)
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != self.dim:
            raise ValueError(f"page vectors must have shape (n >= 1, {self.dim}), got {array.shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"page vectors must be floating point, got {array.dtype}")
        with np.errstate(over="ignore"):  # overflow becomes inf, rejected just below
            array = array.astype(np.float16, copy=False)
        if not np.isfinite(array).all():
            raise ValueError("page vectors contain NaN or infinity (or overflow float16)")
        return array

    def _checked_query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32)
        if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] != self.dim:
            raise ValueError(f"query must have shape (tokens >= 1, {self.dim}), got {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError("query contains NaN or infinity")
        return q

    # -- writing ------------------------------------------------------------------

    def _writable_segment(self) -> _Segment:
        """The last segment if it has room, else a new empty one (it reaches the manifest with its first pages)."""
        if self._segments and self._segments[-1].num_vectors < self.max_segment_vectors:
            return self._segments[-1]
        segment = _Segment(name=f"seg-{self._next_segment:06d}")
        self._next_segment += 1
        self._segments.append(segment)
        return segment

    def _batch_end_for(self, segment: _Segment, batch: list[tuple[str, int, np.ndarray]], start: int) -> int:
        """End of the slice of ``batch`` that fits the segment (always at least one page)."""
        room = self.max_segment_vectors - segment.num_vectors
        end = start
        while end < len(batch) and (end == start or room >= len(batch[end][2])):
            room -= len(batch[end][2])
            end += 1
        return end

    def _append(self, segment: _Segment, batch: list[tuple[str, int, np.ndarray]]) -> None:
        seg_index = self._segments.index(segment)
        before = (segment.num_pages, segment.num_vectors, segment.keys_bytes, set(segment.dead))
        replaced: list[PageKey] = []
        try:
            with self._storing_cells() as created:
                first_local = segment.num_pages
                self._write_segment_data(segment, batch)
                # Replacing a stored page tombstones its old copy in the same manifest commit.
                new_locations: dict[PageKey, tuple[int, int]] = {}
                for offset, (doc_id, page, _) in enumerate(batch):
                    key = (doc_id, int(page))
                    previous = new_locations.get(key) or self._locations.get(key)
                    if previous is not None:
                        self._segments[previous[0]].dead.add(previous[1])
                        replaced.append(key)
                    new_locations[key] = (seg_index, first_local + offset)
                # Every segment, not only this one: an index written before the lists were
                # stored (or with a damaged lists file) gets them with its next commit.
                for each in self._segments:
                    self._store_cells(each, created)
                self._write_manifest()
        except BaseException:
            segment.num_pages, segment.num_vectors, segment.keys_bytes, segment.dead = before
            for key in replaced:
                location = self._locations.get(key)
                if location is not None:
                    self._segments[location[0]].dead.discard(location[1])
            if segment.num_pages == 0:
                self._segments.remove(segment)
            segment._arrays = segment._keys = None
            raise
        for key in replaced:
            self._locations.pop(key, None)
        self._locations.update(new_locations)

    def _write_segment_data(self, segment: _Segment, batch: list[tuple[str, int, np.ndarray]]) -> None:
        """Append ``batch`` to the segment's files, fsync them, and advance its committed sizes."""
        paths = self._segment_paths(segment)
        ends = segment.num_vectors + np.cumsum([len(vectors) for _, _, vectors in batch], dtype=np.int64)
        keys_blob = "".join(json.dumps([doc_id, int(page)]) + "\n" for doc_id, page, _ in batch).encode()
        blobs = {
            "vec": b"".join(vectors.tobytes() for _, _, vectors in batch),
            "end": ends.tobytes(),
            "sum": self._summaries_blob([vectors for _, _, vectors in batch]),
            "keys": keys_blob,
        }
        committed = self._committed_bytes(segment)
        for ext in _EXTENSIONS:
            _append_durably(paths[ext], committed[ext], blobs[ext])
        segment.num_pages += len(batch)
        segment.num_vectors = int(ends[-1])
        segment.keys_bytes += len(keys_blob)
        segment._arrays = segment._keys = None

    @contextlib.contextmanager
    def _storing_cells(self) -> Iterator[list[Path]]:
        """Undo ``_store_cells`` (manifest entries, name counter, fresh files) if the commit inside fails."""
        before = [(segment, segment.cells) for segment in self._segments]
        next_before = self._next_segment
        created: list[Path] = []
        try:
            yield created
        except BaseException:
            self._next_segment = next_before
            for segment, cells in before:
                segment.cells = cells
                lists = self._cells.get(segment.name)
                if lists is not None and lists.stored != cells:
                    lists.stored = None  # its contents are right; the next commit writes a fresh file
            for path in created:
                path.unlink(missing_ok=True)
            raise
        # Committed: a lists file replaced by a fresh one (it was damaged or stale) is garbage now.
        current = {segment.cells.name for segment in self._segments if segment.cells is not None}
        for _, cells in before:
            if cells is not None and cells.name not in current:
                (self.folder / f"{cells.name}.i32").unlink(missing_ok=True)

    def _store_cells(self, segment: _Segment, created: list[Path]) -> None:
        """Point the segment's manifest entry at stored inverted lists covering all its pages.

        Extends the stored file when it was read back intact and made with the current
        codebook (only the new pages' rows are written), else writes a fresh file (appended
        to ``created``). The caller commits the manifest and undoes this if that fails.
        """
        codebook = self._codebook
        if codebook is None or segment.num_pages == 0:
            segment.cells = None
            return
        stored = segment.cells if segment.cells and segment.cells.codebook == codebook.name else None
        cached = self._cells.get(segment.name)
        if stored is not None and stored.pages == segment.num_pages and (cached is None or cached.stored == stored):
            return  # current (a file found damaged when a search read it is replaced below)
        lists = self._segment_cells(segment, quiet=True)
        if stored is not None and lists.stored == stored:
            blob = lists.cells[stored.pages * self.summary_vectors :].tobytes()
            name, crc = stored.name, zlib.crc32(blob, stored.crc32)
            keep = stored.pages * self.summary_vectors * 4
        else:
            blob = lists.cells.tobytes()
            name, crc = f"cells-{self._next_segment:06d}", zlib.crc32(blob)
            keep = 0
            self._next_segment += 1
            created.append(self.folder / f"{name}.i32")
        _append_durably(self.folder / f"{name}.i32", keep, blob)
        segment.cells = lists.stored = _StoredCells(name, codebook.name, segment.num_pages, crc)

    def _summaries_blob(self, pages: list[np.ndarray]) -> bytes:
        # Batches of similar size keep the padded k-means block small.
        blob = []
        for start in range(0, len(pages), 64):
            blob.extend(summarise_pages(pages[start : start + 64], self.summary_vectors))
        return b"".join(summary.tobytes() for summary in blob)

    def _committed_bytes(self, segment: _Segment) -> dict[str, int]:
        return {
            "vec": segment.num_vectors * self.dim * 2,
            "end": segment.num_pages * 8,
            "sum": segment.num_pages * self.summary_vectors * self.dim * 2,
            "keys": segment.keys_bytes,
        }

    def _write_manifest(self) -> None:
        manifest = {
            "format": FORMAT_VERSION,
            "dim": self.dim,
            "summary_vectors": self.summary_vectors,
            "next_segment": self._next_segment,
            "segments": [s.to_manifest() for s in self._segments if s.num_pages > 0],
        }
        if self._codebook is not None:
            manifest["codebook"] = {
                "name": self._codebook.name,
                "centroids": len(self._codebook.centroids),
                "trained_on": self._codebook.trained_on,
            }
        with replacing(self.folder / MANIFEST_NAME) as handle:
            handle.write(json.dumps(manifest).encode())
        self._signature = self._manifest_signature()

    def _manifest_signature(self) -> tuple[int, int] | None:
        """Changes whenever a manifest is replaced (a new inode each time), by any process."""
        try:
            stat = os.stat(self.folder / MANIFEST_NAME)
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns)

    # -- reading ------------------------------------------------------------------

    def _load_state(self) -> None:
        """(Re)read the manifest, or start empty when there is none."""
        manifest_path = self.folder / MANIFEST_NAME
        self._signature = self._manifest_signature()
        if manifest_path.is_file():
            self._load_manifest(manifest_path, self.dim)
        else:
            self._segments, self._next_segment = [], 1
            self._load_codebook(None)
        self._rebuild_locations()

    def _prepare_to_write(self) -> None:
        """Before this instance's first write, delete files no committed manifest names.

        Only a writer sweeps: a process that merely searches must never delete files a
        writer in another process is still appending to.
        """
        if not self._swept:
            self._sweep_unreferenced_files()
            self._swept = True

    def _load_manifest(self, path: Path, dim: int) -> None:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT_VERSION:
                raise PageIndexError(f"{path}: unsupported format {manifest.get('format')!r}")
            self.dim = int(manifest["dim"])
            self.summary_vectors = int(manifest["summary_vectors"])
            self._next_segment = int(manifest["next_segment"])
            self._segments = [
                _Segment(
                    name=entry["name"],
                    num_pages=int(entry["num_pages"]),
                    num_vectors=int(entry["num_vectors"]),
                    keys_bytes=int(entry["keys_bytes"]),
                    dead={int(i) for i in entry["dead"]},
                    cells=_stored_cells(entry.get("cells")),
                )
                for entry in manifest["segments"]
            ]
            codebook = manifest.get("codebook")
            codebook_entry = None
            if codebook is not None:
                codebook_entry = (str(codebook["name"]), int(codebook["centroids"]), int(codebook["trained_on"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise PageIndexError(f"{path} is not a valid page-index manifest: {exc}") from exc
        if self.dim != dim:
            raise PageIndexError(f"the index in {self.folder} stores {self.dim}-d vectors, not {dim}-d")
        for segment in self._segments:
            committed = self._committed_bytes(segment)
            for ext, path_ in self._segment_paths(segment).items():
                size = path_.stat().st_size if path_.is_file() else -1
                if size < committed[ext]:
                    raise PageIndexError(f"{path_} is shorter than the manifest says: the index is damaged")
        self._load_codebook(codebook_entry)

    def _load_codebook(self, entry: tuple[str, int, int] | None) -> None:
        if entry is None:
            self._codebook, self._cells = None, {}
            return
        name, count, trained_on = entry
        if self._codebook is not None and self._codebook.name == name:
            return  # unchanged: keep the inverted lists built so far
        path = self.folder / f"{name}.f16"
        centroids = np.fromfile(path, np.float16) if path.is_file() else np.empty(0, np.float16)
        if centroids.size != count * self.dim:
            raise PageIndexError(f"{path} is missing or shorter than the manifest says: the index is damaged")
        self._codebook = _Codebook(name, centroids.reshape(count, self.dim).astype(np.float32), trained_on)
        self._cells = {}

    def _segment_paths(self, segment: _Segment) -> dict[str, Path]:
        return {ext: self.folder / f"{segment.name}.{ext}" for ext in _EXTENSIONS}

    def referenced_files(self) -> set[str]:
        """Names of the files in the folder that the loaded manifest names, besides the manifest itself."""
        referenced = {f"{s.name}.{ext}" for s in self._segments if s.num_pages > 0 for ext in _EXTENSIONS}
        if self._codebook is not None:
            referenced.add(f"{self._codebook.name}.f16")
        referenced.update(f"{s.cells.name}.i32" for s in self._segments if s.num_pages > 0 and s.cells is not None)
        return referenced

    def _sweep_unreferenced_files(self) -> None:
        """Delete segment files no manifest entry names (left by a crash or a compaction)."""
        referenced = self.referenced_files()
        for path in self.folder.iterdir():
            ours = _SEGMENT_FILE.match(path.name) or _CODEBOOK_FILE.match(path.name) or _CELLS_FILE.match(path.name)
            orphan_segment = bool(ours) and path.name not in referenced
            stale_manifest = is_temporary_of(path, self.folder / MANIFEST_NAME)
            if orphan_segment or stale_manifest:
                path.unlink(missing_ok=True)
        self._segments = [s for s in self._segments if s.num_pages > 0]

    def _arrays(self, segment: _Segment) -> tuple[_VectorFile, np.ndarray, np.ndarray]:
        """(vectors, page end offsets, summaries) up to the committed sizes.

        Vectors are read on demand. Ends and the float16 (pages, summary_vectors, dim)
        summaries (2 KiB per page at 8 x 128-d) stay in memory.
        """
        if segment._arrays is None:
            paths = self._segment_paths(segment)
            vectors = _VectorFile(paths["vec"], segment.num_vectors, self.dim)
            ends = np.fromfile(paths["end"], np.int64, count=segment.num_pages)
            summaries = np.fromfile(
                paths["sum"], np.float16, count=segment.num_pages * self.summary_vectors * self.dim
            ).reshape(segment.num_pages, self.summary_vectors, self.dim)
            segment._arrays = (vectors, ends, summaries)
        return segment._arrays

    def _keys(self, segment: _Segment) -> list[PageKey]:
        if segment._keys is None:
            with open(self._segment_paths(segment)["keys"], "rb") as handle:
                lines = handle.read(segment.keys_bytes).decode("utf-8").splitlines()
            # One JSON array instead of one parse per line: ~3x faster, most of opening a large index.
            segment._keys = [(str(doc), int(page)) for doc, page in json.loads(f"[{','.join(lines)}]")]
            if len(segment._keys) != segment.num_pages:
                raise PageIndexError(f"{segment.name}.keys holds {len(segment._keys)} pages, expected more")
        return segment._keys

    def _rebuild_locations(self) -> None:
        names = {segment.name for segment in self._segments}
        self._cells = {name: cells for name, cells in self._cells.items() if name in names}
        self._locations = {}
        for seg_index, segment in enumerate(self._segments):
            for local, key in enumerate(self._keys(segment)):
                if local not in segment.dead:
                    self._locations[key] = (seg_index, local)

    # -- scoring ------------------------------------------------------------------

    def _live_refs(self, seg_index: int) -> tuple[np.ndarray, np.ndarray]:
        """(live mask over the segment's pages, (live pages, 2) array of (segment, local) refs)."""
        segment = self._segments[seg_index]
        live = np.ones(segment.num_pages, dtype=bool)
        live[list(segment.dead)] = False
        local = np.flatnonzero(live)
        return live, np.column_stack((np.full(len(local), seg_index), local))

    def _exact_scores_all(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        refs, parts = [], []
        for seg_index, segment in enumerate(self._segments):
            vectors, ends, _ = self._arrays(segment)
            live, seg_refs = self._live_refs(seg_index)
            refs.append(seg_refs)
            parts.append(_maxsim_contiguous(vectors, ends, q)[live])
        return np.concatenate(refs), np.concatenate(parts)

    def _first_stage(self, q: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` live pages with the best MaxSim against their summary vectors.

        With a codebook, only pages holding a summary in the cell nearest to some query
        token are scored (module docstring); without one (small indexes), all of them.
        """
        nearest = None
        if self._codebook is not None:
            nearest = np.unique((q @ self._codebook.centroids.T).argmax(axis=1))
        refs = []
        for seg_index, segment in enumerate(self._segments):
            live, seg_refs = self._live_refs(seg_index)
            if nearest is not None:
                cells = self._segment_cells(segment)
                rows = np.concatenate([cells.order[cells.bounds[c] : cells.bounds[c + 1]] for c in nearest])
                pages = np.unique(rows // self.summary_vectors)
                seg_refs = np.column_stack((np.full(len(pages), seg_index), pages))[live[pages]]
            refs.append(seg_refs)
        shortlist = np.concatenate(refs)
        scores = np.empty(len(shortlist), dtype=np.float32)
        for seg_index in np.unique(shortlist[:, 0]):
            rows = np.flatnonzero(shortlist[:, 0] == seg_index)
            _, _, summaries = self._arrays(self._segments[int(seg_index)])
            chosen = as_float32(summaries[shortlist[rows, 1]]).reshape(-1, self.dim)
            # (query tokens, summaries): the max runs along the contiguous axis.
            sims = (q @ chosen.T).reshape(len(q), len(rows), self.summary_vectors)
            scores[rows] = sims.max(axis=2).sum(axis=0)
        return _best(shortlist, scores, n)

    def _segment_cells(self, segment: _Segment, *, quiet: bool = False) -> _SegmentCells:
        """The segment's inverted lists for its committed pages: read from its stored file,
        and derived from the summaries for pages the file does not cover (appends assign
        only the new pages). ``quiet`` skips the log line for lists that are simply not stored."""
        assert self._codebook is not None
        cached = self._cells.get(segment.name)
        if cached is not None and cached.pages == segment.num_pages:
            return cached
        if cached is not None and cached.pages > segment.num_pages:
            cached = None  # only a rolled-back append shrinks a segment: assign it afresh
        if cached is None:
            cells, stored = self._read_stored_cells(segment, quiet)
        else:
            cells, stored = cached.cells, cached.stored
        done = len(cells) // self.summary_vectors
        if done < segment.num_pages:
            _, _, summaries = self._arrays(segment)
            new = _nearest_centroid(summaries[done:].reshape(-1, self.dim), self._codebook.centroids)
            cells = np.concatenate((cells, new))
        order = np.argsort(cells, kind="stable")
        bounds = np.searchsorted(cells[order], np.arange(len(self._codebook.centroids) + 1))
        self._cells[segment.name] = _SegmentCells(segment.num_pages, cells, order, bounds, stored)
        return self._cells[segment.name]

    def _read_stored_cells(self, segment: _Segment, quiet: bool) -> tuple[np.ndarray, _StoredCells | None]:
        """The segment's stored cells and their entry if intact and made with the current
        codebook; else no cells (the caller derives them all), with a log line saying why."""
        assert self._codebook is not None
        stored, none = segment.cells, (np.empty(0, np.int32), None)
        if stored is None or stored.codebook != self._codebook.name:
            if not quiet:
                log.info(
                    "%s: the inverted lists of %s are not stored for %s; deriving them from %d pages' summaries",
                    self.folder,
                    segment.name,
                    self._codebook.name,
                    segment.num_pages,
                )
            return none
        path = self.folder / f"{stored.name}.i32"
        size = stored.pages * self.summary_vectors * 4
        try:
            with open(path, "rb") as handle:
                blob = handle.read(size)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and self._manifest_signature() != self._signature:
                raise  # a writer replaced it after our refresh: ``search`` reloads the manifest and retries
            problem = f"unreadable: {exc}"
        else:
            cells = np.frombuffer(blob, np.int32)
            if stored.pages > segment.num_pages or len(blob) != size:
                problem = "shorter or longer than the manifest says"
            elif zlib.crc32(blob) != stored.crc32:
                problem = "checksum mismatch"
            elif len(cells) and (cells.min() < 0 or cells.max() >= len(self._codebook.centroids)):
                problem = "centroid numbers out of range"
            else:
                if stored.pages < segment.num_pages and not quiet:
                    log.info("%s covers %d of %d pages; deriving the rest", path, stored.pages, segment.num_pages)
                return cells.copy(), stored
        log.warning(
            "the page index's inverted lists %s are damaged (%s): deriving them from %s's summaries; "
            "the next write stores them again",
            path,
            problem,
            segment.name,
        )
        return none

    def _train_codebook_if_due(self) -> None:
        """Train (or retrain, once the index has grown ``_RETRAIN_GROWTH``-fold) the codebook and commit it."""
        pages = len(self._locations)
        if pages < self.codebook_min_pages:
            return
        if self._codebook is not None and pages < _RETRAIN_GROWTH * self._codebook.trained_on:
            return
        summaries = [self._arrays(self._segments[seg_index])[2][local] for seg_index, local in self._locations.values()]
        count = len(summaries) * self.summary_vectors
        centroids = min(_MAX_CENTROIDS, max(1, count // _SUMMARIES_PER_CENTROID))
        stride = max(1, len(summaries) * self.summary_vectors // (_TRAIN_PER_CENTROID * centroids))
        sample = np.concatenate(summaries)[::stride].astype(np.float32)
        stored = train_codebook(sample, centroids).astype(np.float16)
        previous = self._codebook
        try:
            with self._storing_cells() as created:
                name = f"codebook-{self._next_segment:06d}"
                path = self.folder / f"{name}.f16"
                self._next_segment += 1
                created.append(path)
                self._codebook = _Codebook(name, stored.astype(np.float32), pages)  # as a reader loads it
                self._cells = {}
                with open(path, "wb") as handle:
                    handle.write(stored.tobytes())
                    handle.flush()
                    os.fsync(handle.fileno())
                # Every segment's inverted lists for the new codebook, in the same commit.
                for segment in self._segments:
                    self._store_cells(segment, created)
                self._write_manifest()
        except BaseException as exc:
            # The pages are committed already; the first stage keeps the old codebook (or
            # scores every page) and the next write tries again.
            self._codebook, self._cells = previous, {}
            if not isinstance(exc, OSError):
                raise
            log.warning("could not store the page index's codebook (%s); will retry on the next write", exc)
            return
        self._sweep_unreferenced_files()

    def _sync_resident(self) -> bool:
        """Bring the device copy up to date; on failure (out of device memory) fall back to the CPU."""
        assert self._resident is not None
        readers = {segment.name: (segment.num_pages, self._page_reader(segment)) for segment in self._segments}
        try:
            self._resident.sync(readers)
        # torch.OutOfMemoryError is a RuntimeError; a torch without CUDA raises AssertionError.
        except (RuntimeError, MemoryError, AssertionError) as exc:
            log.warning("page vectors do not fit on %s (%s): searching on the CPU", self._resident.device, exc)
            self._resident = None
            return False
        return True

    def _page_reader(self, segment: _Segment) -> Any:
        def read(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            vectors, ends, _ = self._arrays(segment)
            v0 = int(ends[start - 1]) if start else 0
            return vectors[v0 : int(ends[stop - 1])], ends[start:stop] - v0

        return read

    def _device_scores(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every live page's MaxSim from the device copy (float16 inputs, float32 sums)."""
        assert self._resident is not None
        refs, parts = [], []
        for seg_index, segment in enumerate(self._segments):
            live, seg_refs = self._live_refs(seg_index)
            refs.append(seg_refs)
            parts.append(self._resident.scores(segment.name, q)[live])
        return np.concatenate(refs), np.concatenate(parts)

    def _exact_scores_of(self, q: np.ndarray, refs: np.ndarray) -> np.ndarray:
        """Exact MaxSim of scattered pages: read their vectors into one buffer, then score it as one block."""
        spans = []
        for seg_index, local in refs:
            vectors, ends, _ = self._arrays(self._segments[int(seg_index)])
            spans.append((vectors, int(ends[local - 1]) if local else 0, int(ends[local])))
        lengths = np.array([stop - start for _, start, stop in spans], dtype=np.int64)
        gathered = np.empty((int(lengths.sum()), self.dim), dtype=np.float16)
        row = 0
        for (vectors, start, stop), length in zip(spans, lengths, strict=True):
            vectors.read_into(start, stop, gathered[row : row + length])
            row += int(length)
        return _maxsim_contiguous(gathered, np.cumsum(lengths), q)

    def _top_k(self, refs: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[str, int, float]]:
        k = min(k, len(refs))
        best = np.argpartition(-scores, k - 1)[:k] if k < len(refs) else np.arange(len(refs))
        # Stable sort on the negated score: ties keep insertion order, so results are reproducible.
        best = best[np.argsort(-scores[best], kind="stable")]
        results = []
        for i in best:
            seg_index, local = refs[i]
            doc_id, page = self._keys(self._segments[int(seg_index)])[int(local)]
            results.append((doc_id, page, float(scores[i])))
        return results


class _VectorFile:
    """A segment's (vectors, dim) float16 file, read by row ranges with ``pread``.

    Unlike a memory map, reading does not leave the file's pages mapped into the process,
    so scanning a large index costs page cache, not resident memory.
    """

    def __init__(self, path: Path, rows: int, dim: int) -> None:
        self.path, self.rows, self.dim = path, rows, dim
        self.shape = (rows, dim)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(self.rows)
        if step != 1:
            raise IndexError("only contiguous row ranges can be read")
        out = np.empty((max(0, stop - start), self.dim), dtype=np.float16)
        self.read_into(start, stop, out)
        return out

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Rows [start, stop) into ``out``, a C-contiguous float16 (stop - start, dim) array."""
        if stop <= start:
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            got = os.preadv(fd, [out.data.cast("B")], start * self.dim * 2)
        finally:
            os.close(fd)
        if got != out.nbytes:
            raise PageIndexError(f"{self.path} is shorter than the manifest says: the index is damaged")


def _stored_cells(entry: dict[str, Any] | None) -> _StoredCells | None:
    if entry is None:
        return None
    return _StoredCells(str(entry["name"]), str(entry["codebook"]), int(entry["pages"]), int(entry["crc32"]))


def _best(refs: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` refs with the highest scores, in their original (insertion) order."""
    if n >= len(refs):
        return refs
    return refs[np.sort(np.argpartition(-scores, n - 1)[:n])]


def train_codebook(sample: np.ndarray, count: int, iterations: int = 8) -> np.ndarray:
    """``count`` float32 unit centroids of a spherical k-means over unit vectors ``sample``.

    Deterministic: seeded with evenly spaced rows of the sample, so the same summaries give
    the same codebook. A centroid that loses all its members keeps its place.
    """
    count = min(count, len(sample))
    centroids = sample[np.linspace(0, len(sample) - 1, count).astype(np.int64)].copy()
    for _ in range(iterations):
        nearest = _nearest_centroid(sample, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centroids)
    return centroids


def _nearest_centroid(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of each row's most similar centroid, in blocks so the score matrix stays small."""
    out = np.empty(len(vectors), dtype=np.int32)
    step = max(1, _BLOCK_VECTORS * 16 // max(1, len(centroids)))
    for start in range(0, len(vectors), step):
        block = np.asarray(vectors[start : start + step], dtype=np.float32)
        out[start : start + step] = (block @ centroids.T).argmax(axis=1)
    return out


def summary_vectors(vectors: np.ndarray, count: int) -> np.ndarray:
    """``count`` float16 unit vectors standing for one page in the first stage."""
    return summarise_pages([vectors], count)[0]


def summarise_pages(pages: list[np.ndarray], count: int, iterations: int = 5) -> list[np.ndarray]:
    """Per page, ``count`` float16 unit vectors: centroids of a tiny spherical k-means.

    Each centroid is the normalised mean of one group of similar tokens (a text block, a
    chart, a table), which averages token noise away, where raw sampled tokens would
    favour outliers. Seeding is k-means++ with a fixed quasi-random sequence instead of a
    generator, so a page's summaries never depend on which other pages share its batch.
    Pages are padded into one (pages, tokens, dim) block so a whole batch costs a handful
    of numpy calls. A page with fewer distinct tokens than ``count`` repeats centroids,
    which leaves MaxSim unchanged.
    """
    if not pages:
        return []
    lengths = np.array([len(p) for p in pages])
    dim = pages[0].shape[1]
    v = np.zeros((len(pages), int(lengths.max()), dim), dtype=np.float32)
    for i, page in enumerate(pages):
        v[i, : len(page)] = page
    v /= np.maximum(np.linalg.norm(v, axis=2, keepdims=True), 1e-12)
    real = np.arange(v.shape[1])[None, :] < lengths[:, None]  # (pages, tokens)
    rows = np.arange(len(pages))

    # Seeds: the most typical token, then k-means++ draws (probability ~ 1 - best cosine).
    mean = v.sum(axis=1)
    picks = [np.where(real, (v @ mean[:, :, None])[:, :, 0], -np.inf).argmax(axis=1)]
    best = (v @ v[rows, picks[0], :, None])[:, :, 0]
    for step in range(1, count):
        weight = np.where(real, np.maximum(1.0 - best, 0.0), 0.0)
        cdf = np.cumsum(weight, axis=1)
        target = ((step * 0.6180339887) % 1.0) * cdf[:, -1:]
        pick = np.minimum((cdf <= target).sum(axis=1), lengths - 1)
        pick = np.where(cdf[:, -1] > 0, pick, picks[-1])  # nothing new left: repeat
        picks.append(pick)
        best = np.maximum(best, (v @ v[rows, pick, :, None])[:, :, 0])
    centroids = v[rows[:, None], np.stack(picks, axis=1)]  # (pages, count, dim)

    for _ in range(iterations):
        nearest = (v @ centroids.transpose(0, 2, 1)).argmax(axis=2)
        members = (nearest[:, :, None] == np.arange(count)) & real[:, :, None]  # (pages, tokens, count)
        sums = members.astype(np.float32).transpose(0, 2, 1) @ v
        norms = np.linalg.norm(sums, axis=2, keepdims=True)
        # An empty group keeps its centroid.
        centroids = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centroids)
    return list(centroids.astype(np.float16))


def _maxsim_contiguous(vectors: np.ndarray | _VectorFile, ends: np.ndarray, q: np.ndarray) -> np.ndarray:
    """MaxSim of every page whose vectors lie back to back in ``vectors``, page i ending at ``ends[i]``."""
    num_pages = len(ends)
    scores = np.empty(num_pages, dtype=np.float32)
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
    page = 0
    while page < num_pages:
        # Take as many whole pages as fit in one block (at least one).
        limit = starts[page] + _BLOCK_VECTORS
        stop = max(page + 1, int(np.searchsorted(ends, limit, side="right")))
        v0, v1 = int(starts[page]), int(ends[stop - 1])
        # (query tokens, block vectors): reducing along the contiguous axis is ~9x faster.
        sims = q @ as_float32(np.asarray(vectors[v0:v1])).T
        best = np.maximum.reduceat(sims, starts[page:stop] - v0, axis=1)  # (query tokens, block pages)
        scores[page:stop] = best.sum(axis=0)
        page = stop
    return scores


def as_float32(vectors: np.ndarray) -> np.ndarray:
    """A float32 copy of float16 ``vectors``: torch's vectorised conversion is ~3x numpy's here,
    which matters because converting costs more than the MaxSim matmul that follows."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float16)).float().numpy()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def open_page_index(settings: Settings, *, dim: int = 128) -> PageIndex:
    """The page index ``settings.page_index`` names: embedded ``local`` or ``qdrant``."""
    if settings.page_index == "qdrant":
        from pagehop.retrieval.qdrant_index import QdrantPageIndex

        return QdrantPageIndex.from_settings(settings, dim=dim)
    return LocalPageIndex.from_settings(settings, dim=dim)


def _append_durably(path: Path, committed: int, blob: bytes) -> None:
    """Write ``blob`` after the first ``committed`` bytes of ``path`` (created if missing) and fsync it: bytes
    past the committed size are a crashed or failed earlier append, and are dropped."""
    with open(path, "ab") as handle:
        handle.truncate(committed)
        handle.write(blob)
        handle.flush()
        os.fsync(handle.fileno())
