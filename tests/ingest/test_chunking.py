"""Chunks stay inside one page, respect the size limit, end on sentence boundaries and overlap."""

from __future__ import annotations

from itertools import pairwise

from pagehop.retrieval.chunking import chunk_pages, split_text

SENTENCES = " ".join(f"Sentence number {i} says something about topic {i % 7}." for i in range(60))


def test_spans_are_bounded_cover_the_text_and_overlap() -> None:
    spans = split_text(SENTENCES, chunk_chars=300, overlap=60)
    assert len(spans) > 5
    assert all(0 < end - start <= 300 for start, end in spans)
    assert spans[0][0] == 0 and spans[-1][1] == len(SENTENCES)
    for (_, prev_end), (next_start, _) in pairwise(spans):
        assert next_start < prev_end  # consecutive chunks share some text
        assert SENTENCES[next_start - 1] == " "  # and the overlap starts on a word
    assert all(SENTENCES[end - 1] == "." for _, end in spans[:-1])  # chunks end with a sentence


def test_short_blank_and_unbroken_texts() -> None:
    assert split_text("  one short page  ", 300, 50) == [(2, 16)]
    assert split_text(" \n\n  ", 300, 50) == []
    word = "x" * 1000  # no boundary at all: hard cuts
    assert [end - start for start, end in split_text(word, 300, 0)] == [300, 300, 300, 100]


def test_chunks_never_cross_pages_and_quote_their_page_exactly() -> None:
    pages = [(1, SENTENCES), (2, ""), (3, "A short last page.")]
    chunks = chunk_pages("doc1", "Title", pages, chunk_chars=400, chunk_overlap=50)
    assert {c.page_start for c in chunks} == {1, 3}
    assert all(c.page_start == c.page_end for c in chunks)
    text_of = dict(pages)
    assert all(text_of[c.page_start][c.char_start : c.char_end] == c.text for c in chunks)
    assert len({c.chunk_id for c in chunks}) == len(chunks) and chunks[-1].chunk_id == "doc1:3:0"
    assert all(c.title == "Title" and c.doc_id == "doc1" for c in chunks)
