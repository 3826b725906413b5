"""The doors of the retrieval area: what ingestion writes to and what the agent reads from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from pagehop.schema import Chunk, Hit


@dataclass
class PageEmbedding:
    """One page's multi-vector embedding after pruning, with what pruning did."""

    vectors: np.ndarray  # (kept, dim) float16, L2-normalised rows
    num_patches: int  # image-patch vectors before pruning
    stats: dict[str, float] = field(default_factory=dict)  # threshold, mean, std, ...


class TextEmbedder(Protocol):
    """A sentence embedder: the text index, entity resolution and graph retrieval use these two methods
    (a sentence-transformers model fits; so does ``pagehop.retrieval.onnx_embedder.OnnxSentenceEmbedder``)."""

    def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray: ...

    def get_embedding_dimension(self) -> int | None: ...


@runtime_checkable
class PageEncoder(Protocol):
    """A late-interaction page retriever (ColModernVBERT, ColPali, ColQwen...)."""

    embedding_dim: int

    def encode_page_stream(self, images: Iterable[Image.Image]) -> Iterator[PageEmbedding]:
        """One ``PageEmbedding`` per image, in order, consuming ``images`` as it goes (a renderer's generator)."""
        ...

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]: ...


@runtime_checkable
class PageIndex(Protocol):
    """Multi-vector page store scored by MaxSim."""

    def add(self, doc_id: str, page: int, vectors: np.ndarray) -> None: ...

    def delete_document(self, doc_id: str) -> None: ...

    def search(self, query: np.ndarray, k: int, *, exact: bool = True) -> list[tuple[str, int, float]]:
        """Best ``k`` pages for one query's token vectors: (doc_id, page, MaxSim score).

        ``exact=False`` lets the index take its fast path (a GPU copy, a first stage...).
        """
        ...

    def __len__(self) -> int: ...


@runtime_checkable
class TextIndex(Protocol):
    """Chunk-level text retrieval; every hit points to its document and page."""

    def add(self, chunks: Sequence[Chunk]) -> None: ...

    def delete_document(self, doc_id: str) -> None: ...

    def search(self, query: str, k: int) -> list[Hit]: ...
