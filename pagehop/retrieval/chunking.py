"""Cut page texts into overlapping chunks for the text channel.

Chunks never cross a page boundary: every text hit then names exactly one page, which is
what citations and page-level benchmarks need (``page_start == page_end`` always). A chunk's
``text`` is exactly ``page_text[char_start:char_end]``, so offsets can highlight the
passage on the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pagehop.schema import Chunk

# Where a chunk may end, best first: paragraph break, sentence end, line break.
_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"[.!?]['\")\]]?\s"), re.compile(r"\n"))
_WHITESPACE = re.compile(r"\s")


def chunk_id_for(doc_id: str, page: int, seq: int) -> str:
    """Readable, unique and parseable: ``<doc_id>:<page>:<seq on the page>``."""
    return f"{doc_id}:{page}:{seq}"


def split_text(text: str, chunk_chars: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) spans of at most ``chunk_chars`` characters covering ``text``.

    Ends prefer a paragraph or sentence boundary in the second half of the window, then
    whitespace, then a hard cut. Consecutive spans overlap by about ``overlap`` characters,
    starting on a word boundary. Whitespace-only spans are dropped and spans are trimmed.
    """
    if chunk_chars <= 0:
        raise ValueError("chunk_chars must be positive")
    overlap = max(0, min(overlap, chunk_chars // 2))
    spans: list[tuple[int, int]] = []
    start, n = 0, len(text)
    while start < n:
        end = n if n - start <= chunk_chars else _best_end(text, start, start + chunk_chars)
        trimmed = _trim(text, start, end)
        if trimmed:
            spans.append(trimmed)
        if end >= n:
            break
        start = _next_start(text, max(end - overlap, start + 1), end)
    return spans


def _best_end(text: str, start: int, limit: int) -> int:
    floor = start + (limit - start) // 2
    window = text[floor:limit]
    for pattern in _BOUNDARIES:
        matches = list(pattern.finditer(window))
        if matches:
            return floor + matches[-1].end()
    spaces = [m.start() for m in _WHITESPACE.finditer(window)]
    return floor + spaces[-1] + 1 if spaces else limit


def _next_start(text: str, candidate: int, end: int) -> int:
    """Move the overlap start forward to the next word start, never past ``end``."""
    if candidate == 0 or _WHITESPACE.match(text[candidate - 1]):
        return candidate
    match = _WHITESPACE.search(text, candidate, end)
    return match.end() if match else candidate


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def chunk_pages(
    doc_id: str,
    title: str,
    pages: Iterable[tuple[int, str]],
    *,
    chunk_chars: int,
    chunk_overlap: int,
) -> list[Chunk]:
    """Chunks for one document from its (1-based page number, page text) pairs."""
    chunks: list[Chunk] = []
    for page, text in pages:
        for seq, (start, end) in enumerate(split_text(text, chunk_chars, chunk_overlap)):
            chunks.append(
                Chunk(
                    chunk_id=chunk_id_for(doc_id, page, seq),
                    doc_id=doc_id,
                    page_start=page,
                    page_end=page,
                    char_start=start,
                    char_end=end,
                    text=text[start:end],
                    title=title,
                )
            )
    return chunks
