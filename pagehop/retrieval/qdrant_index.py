"""Qdrant page index: the same ``PageIndex`` on Qdrant multivector points scored by MaxSim.

For deployments that outgrow the embedded ``LocalPageIndex``: the code that runs against
an in-process store (``QdrantClient(":memory:")`` or a folder) targets a Qdrant server or
cluster by URL unchanged. One point per page, with id derived from (doc_id, page) so
re-adding a page replaces it, a ``MAX_SIM`` multivector of float16 vectors scored by
dot product (the vectors are L2-normalised, so this is cosine MaxSim, and it equals
``LocalPageIndex``'s exact scores), and payload ``{doc_id, page}``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from pagehop.config import Settings

DEFAULT_COLLECTION = "pagehop_pages"
# Fixed namespace: point ids must be identical across processes and machines.
_POINT_NAMESPACE = uuid.UUID("6f1c1c3e-2f4b-4f0e-9a49-6d0c8c7a1e53")


def point_id(doc_id: str, page: int) -> str:
    """The Qdrant point id of one page (a UUID, as Qdrant requires)."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{doc_id}\x00{page}"))


class QdrantPageIndex:
    """A ``PageIndex`` on a Qdrant collection of multivector points."""

    def __init__(
        self,
        client: QdrantClient,
        *,
        collection: str = DEFAULT_COLLECTION,
        dim: int = 128,
        remote: bool = False,
        exact: bool = False,
    ) -> None:
        """``remote``: the client talks to a server (adds a doc_id payload index there).

        ``exact``: ask the server for brute-force search instead of HNSW (local mode is
        always exact).
        """
        from qdrant_client import models

        self.client = client
        self.collection = collection
        self.dim = dim
        self.exact = exact
        if client.collection_exists(collection):
            self._check_collection()
        else:
            client.create_collection(
                collection,
                vectors_config=models.VectorParams(
                    size=dim,
                    distance=models.Distance.DOT,
                    datatype=models.Datatype.FLOAT16,
                    multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                ),
            )
            if remote:
                # delete_document filters on doc_id; local mode ignores payload indexes.
                client.create_payload_index(collection, "doc_id", models.PayloadSchemaType.KEYWORD)

    @classmethod
    def connect(cls, url: str | None = None, *, path: str | Path | None = None, **kwargs: Any) -> QdrantPageIndex:
        """A server at ``url``, else an embedded store in ``path``, else in memory."""
        from qdrant_client import QdrantClient

        if url:
            return cls(QdrantClient(url=url), remote=True, **kwargs)
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
            return cls(QdrantClient(path=str(path)), **kwargs)
        return cls(QdrantClient(":memory:"), **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, *, dim: int = 128) -> QdrantPageIndex:
        """``settings.qdrant_url`` if set, else an embedded store under ``<workspace>/qdrant``."""
        return cls.connect(settings.qdrant_url, path=Path(settings.workspace) / "qdrant", dim=dim)

    # -- PageIndex ----------------------------------------------------------------

    def add(self, doc_id: str, page: int, vectors: np.ndarray) -> None:
        self.add_many([(doc_id, page, vectors)])

    def add_many(self, pages: list[tuple[str, int, np.ndarray]], batch_size: int = 64) -> None:
        """Upsert pages; all are validated before any is sent."""
        from qdrant_client import models

        points = [
            models.PointStruct(
                id=point_id(doc_id, page),
                vector=self._checked_vectors(doc_id, page, vectors).tolist(),
                payload={"doc_id": doc_id, "page": int(page)},
            )
            for doc_id, page, vectors in pages
        ]
        for start in range(0, len(points), batch_size):
            self.client.upsert(self.collection, points=points[start : start + batch_size], wait=True)

    def delete_document(self, doc_id: str) -> None:
        from qdrant_client import models

        selector = models.FilterSelector(
            filter=models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))])
        )
        self.client.delete(self.collection, points_selector=selector, wait=True)

    def search(self, query: np.ndarray, k: int, *, exact: bool = True) -> list[tuple[str, int, float]]:
        """``exact=False`` lets the server use its approximate index unless ``self.exact`` forbids it."""
        from qdrant_client import models

        if k < 1:
            raise ValueError("k must be at least 1")
        q = np.asarray(query, dtype=np.float32)
        if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] != self.dim or not np.isfinite(q).all():
            raise ValueError(f"query must be finite with shape (tokens >= 1, {self.dim}), got {q.shape}")
        response = self.client.query_points(
            self.collection,
            query=q.tolist(),
            limit=k,
            with_payload=True,
            search_params=models.SearchParams(exact=True) if self.exact or exact else None,
        )
        return [
            (str(point.payload["doc_id"]), int(point.payload["page"]), float(point.score))
            for point in response.points
            if point.payload is not None
        ]

    def __len__(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    # -- internals ----------------------------------------------------------------

    def _checked_vectors(self, doc_id: str, page: int, vectors: np.ndarray) -> np.ndarray:
        if not isinstance(doc_id, str) or not doc_id:
            raise ValueError(f"doc_id must be a non-empty string, got {doc_id!r}")
        if isinstance(page, bool) or not isinstance(page, int | np.integer) or page < 1:
            raise ValueError(f"page must be an integer >= 1 (pages are 1-based), got {page!r}")
        array = np.asarray(vectors)
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != self.dim:
            raise ValueError(f"page vectors must have shape (n >= 1, {self.dim}), got {array.shape}")
        # Round to float16 here, as the collection stores it, so local and server modes agree.
        with np.errstate(over="ignore"):  # overflow becomes inf, rejected just below
            array = array.astype(np.float16)
        if not np.isfinite(array).all():
            raise ValueError("page vectors contain NaN or infinity (or overflow float16)")
        return array.astype(np.float32)

    def _check_collection(self) -> None:
        params: Any = self.client.get_collection(self.collection).config.params.vectors
        if getattr(params, "size", None) != self.dim or getattr(params, "multivector_config", None) is None:
            raise ValueError(
                f"Qdrant collection {self.collection!r} exists but is not a {self.dim}-d multivector collection"
            )
