"""Chunks stay inside one page, respect the size limit, end on sentence boundaries and overlap."""

from __future__ import annotations

from itertools import pairwise

import pytest

from pagehop.retrieval import chunking
from pagehop.retrieval.chunking import chunk_pages, headings, indexed_text, is_heading_line, split_text

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


# -- layout-aware chunks: headings travel with each chunk, tables stay whole with their caption --------

REPORT_PAGE = "\n".join(
    [
        "Harbor Lane Annual Review 2021",
        "3.2 Revenue by region",
        *(f"Our business in market {i} grew steadily through the year, with new customers." for i in range(4)),
        "Table 4: Net sales by region (millions)",
        "Region 2020 2021",
        *(f"Region{i} {1000 + 37 * i:,} {1100 + 41 * i:,}" for i in range(30)),
        "4 Outlook",
        *(f"Next year we expect market {i} to keep growing at a similar rate." for i in range(20)),
    ]
)


def test_a_table_is_kept_whole_with_its_caption() -> None:
    table_start = REPORT_PAGE.index("Table 4")
    table_end = REPORT_PAGE.index("4 Outlook")
    plain = split_text(REPORT_PAGE, 900, 120, keep_blocks=False)
    # Without block keeping some cut falls inside the table (this is what the page looks like to a plain cutter).
    assert any(table_start < end < table_end - 1 for _, end in plain)
    spans = split_text(REPORT_PAGE, 900, 120)
    assert not any(table_start < end < table_end - 1 for _, end in spans)
    holder = [(s, e) for s, e in spans if s <= table_start and e >= table_end - 1]
    assert holder, "one chunk holds the caption and every row"
    assert all(0 < e - s <= 900 for s, e in spans) and spans[-1][1] == len(REPORT_PAGE)


def test_one_huge_line_is_cut_without_rescanning_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10 MB log line once took minutes: each cut re-read the rest of the line as a possible table row."""
    seen: list[int] = []
    is_table_row = chunking.is_table_row

    def recording(line: str) -> bool:
        seen.append(len(line))
        return is_table_row(line)

    monkeypatch.setattr(chunking, "is_table_row", recording)
    line = "ship 12 docked at pier 4 with 300 crates " * 5_000  # 205,000 characters, no line break
    spans = split_text(line, chunk_chars=1200, overlap=150)

    assert spans[0][0] == 0 and spans[-1][1] == len(line.rstrip())
    assert all(0 < end - start <= 1200 for start, end in spans)
    assert max(seen, default=0) <= 1200  # every line looked at fits in a chunk


def test_a_heading_never_ends_a_chunk() -> None:
    page = "\n".join([*(f"Sentence {i} of the first section." for i in range(20)), "2 Methods", "We measured it."])
    cut_at = page.index("2 Methods") + len("2 Methods")
    assert all(end != cut_at for _, end in split_text(page, cut_at + 5, 40))


def test_each_chunk_carries_the_headings_it_sits_under() -> None:
    pages = [(1, "Harbor Lane Annual Review 2021\nA year of growth."), (2, REPORT_PAGE)]
    chunks = chunk_pages("doc", "file-name", pages, chunk_chars=900, chunk_overlap=120, with_context=True)
    table = next(c for c in chunks if "Table 4" in c.text and "Region29" in c.text)
    # the document's heading (its first page's), then the section the table sits in
    assert table.context == "Harbor Lane Annual Review 2021 | 3.2 Revenue by region"
    outlook = chunks[-1]
    assert outlook.char_start > REPORT_PAGE.index("4 Outlook")
    assert outlook.context == "Harbor Lane Annual Review 2021 | 4 Outlook"
    assert indexed_text(table).startswith(table.context + "\n") and indexed_text(table).endswith(table.text)
    assert all(pages[c.page_start - 1][1][c.char_start : c.char_end] == c.text for c in chunks)  # text stays exact
    assert all(
        c.context == "" for c in chunk_pages("d", "t", pages, chunk_chars=900, chunk_overlap=120, with_context=False)
    )


def test_heading_lines_are_short_titled_lines_not_sentences_or_table_rows() -> None:
    assert is_heading_line("3.2 Revenue by region") and is_heading_line("Table 4: Net sales by region (millions)")
    assert not is_heading_line("Our business grew steadily through the year.")
    assert not is_heading_line("North America 4,120 3,980")
    assert not is_heading_line("and the line goes on in lower case")
    assert [line for _, line in headings("Title\nsome prose, wrapped\n2 Results\n")] == ["Title", "2 Results"]
