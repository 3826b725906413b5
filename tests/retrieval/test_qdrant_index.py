"""QdrantPageIndex in qdrant-client's in-process mode: same rankings as LocalPageIndex's exact MaxSim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from pagehop.retrieval.base import PageIndex
from pagehop.retrieval.page_index import LocalPageIndex
from pagehop.retrieval.qdrant_index import QdrantPageIndex, point_id

DIM = 32


def _random_pages(seed: int, docs: int, pages: int) -> list[tuple[str, int, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for d in range(docs):
        for p in range(1, pages + 1):
            v = rng.normal(size=(int(rng.integers(1, 25)), DIM))
            out.append((f"doc{d}", p, (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)))
    return out


def _assert_same_ranking(qdrant: list[tuple[str, int, float]], local: list[tuple[str, int, float]]) -> None:
    assert [(d, p) for d, p, _ in qdrant] == [(d, p) for d, p, _ in local]
    np.testing.assert_allclose([s for *_, s in qdrant], [s for *_, s in local], rtol=1e-4, atol=1e-4)


@pytest.fixture
def both(tmp_path: Path) -> tuple[QdrantPageIndex, LocalPageIndex]:
    pages = _random_pages(seed=0, docs=6, pages=10)
    qdrant = QdrantPageIndex.connect(dim=DIM)
    local = LocalPageIndex(tmp_path / "local", dim=DIM)
    qdrant.add_many(pages)
    local.add_many(pages)
    return qdrant, local


def test_rankings_equal_local_exact_maxsim(both: tuple[QdrantPageIndex, LocalPageIndex]) -> None:
    qdrant, local = both
    assert isinstance(qdrant, PageIndex)
    assert len(qdrant) == len(local) == 60
    rng = np.random.default_rng(1)
    for _ in range(5):
        query = rng.normal(size=(int(rng.integers(3, 20)), DIM)).astype(np.float32)
        _assert_same_ranking(qdrant.search(query, k=10), local.search(query, k=10))


def test_delete_and_replace_match_local(both: tuple[QdrantPageIndex, LocalPageIndex]) -> None:
    qdrant, local = both
    for index in both:
        index.delete_document("doc2")
        index.add("doc3", 4, np.ones((2, DIM), np.float16) / np.sqrt(DIM))  # replaces a page
    assert len(qdrant) == len(local) == 50
    query = np.random.default_rng(2).normal(size=(8, DIM)).astype(np.float32)
    hits = qdrant.search(query, k=50)
    assert "doc2" not in {d for d, _, _ in hits}
    _assert_same_ranking(hits, local.search(query, k=50))


def test_embedded_folder_persists_and_bad_input_is_rejected(tmp_path: Path) -> None:
    pages = _random_pages(seed=3, docs=2, pages=3)
    index = QdrantPageIndex.connect(path=tmp_path / "q", dim=DIM)
    index.add_many(pages)
    query = np.random.default_rng(4).normal(size=(5, DIM)).astype(np.float32)
    expected = index.search(query, k=6)
    index.client.close()
    reopened = QdrantPageIndex.connect(path=tmp_path / "q", dim=DIM)
    assert reopened.search(query, k=6) == expected
    with pytest.raises(ValueError):
        reopened.add_many([("ok", 1, np.ones((1, DIM))), ("bad", 1, np.ones((1, DIM + 1)))])
    with pytest.raises(ValueError):
        reopened.add("bad", 0, np.ones((1, DIM)))
    with pytest.raises(ValueError):
        reopened.search(np.ones((2, DIM - 1)), k=3)
    assert len(reopened) == len(pages)
    reopened.client.close()
    with pytest.raises(ValueError, match="multivector"):
        QdrantPageIndex.connect(path=tmp_path / "q", dim=DIM * 2)


def test_point_ids_are_stable_and_distinct() -> None:
    assert point_id("a", 1) == point_id("a", 1)
    assert len({point_id("a", 1), point_id("a", 2), point_id("a1", 1)}) == 3
