"""Chunks built by hand for tests, shaped as the chunker makes them."""

from __future__ import annotations

from pagehop.retrieval.chunking import chunk_id_for
from pagehop.schema import Chunk


def make_chunk(
    doc_id: str = "d1",
    page: int = 1,
    text: str = "",
    *,
    seq: int = 0,
    title: str = "",
    char_start: int = 0,
    chunk_id: str | None = None,
) -> Chunk:
    """One page's chunk: its id from (document, page, seq) unless given, its offsets from ``char_start``."""
    return Chunk(
        chunk_id=chunk_id or chunk_id_for(doc_id, page, seq),
        doc_id=doc_id,
        page_start=page,
        page_end=page,
        char_start=char_start,
        char_end=char_start + len(text),
        text=text,
        title=title,
    )
