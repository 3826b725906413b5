"""The agent's page channel searches through the index's fast path unless settings ask for exact MaxSim."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
from pagehop.retrieval.page_index import LocalPageIndex
from pagehop.testing.tiny_models import tiny_colmodernvbert_path


def test_page_hits_use_the_fast_path_by_default_and_exact_on_request(tmp_path: Path) -> None:
    encoder = ColModernVBertEncoder(tiny_colmodernvbert_path(), docpruner_k=None)
    # One candidate out of 12 pages: the first stage visibly differs from the exact scan.
    index = LocalPageIndex(tmp_path, dim=encoder.embedding_dim, fast_candidates=1)
    rng = np.random.default_rng(0)
    for page in range(1, 13):
        vectors = rng.normal(size=(20, encoder.embedding_dim)).astype(np.float32)
        index.add("doc", page, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    query = "revenue by region"
    query_vectors = encoder.encode_queries([query])[0]

    fast = WorkspaceRetriever(page_index=index, page_encoder=encoder)._page_hits(query, 5)
    exact = WorkspaceRetriever(page_index=index, page_encoder=encoder, exact_page_search=True)._page_hits(query, 5)

    first_stage = [(d, p) for d, p, _ in index.search(query_vectors, 5, candidates=1)]
    exhaustive = [(d, p) for d, p, _ in index.search(query_vectors, 5)]
    assert first_stage != exhaustive  # so the two settings are told apart
    assert [(h.doc_id, h.page) for h in fast] == first_stage
    assert [(h.doc_id, h.page) for h in exact] == exhaustive
