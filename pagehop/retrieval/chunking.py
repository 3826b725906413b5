"""Cut page texts into overlapping chunks for the text channel.

Chunks never cross a page boundary: every text hit then names exactly one page, which is
what citations and page-level benchmarks need (``page_start == page_end`` always). A chunk's
``text`` is exactly ``page_text[char_start:char_end]``, so offsets can highlight the
passage on the page.

What a chunk is about often sits outside it: the section heading above it, the title of its page
(a slide, a report's page header) and of its document. Those headings travel with the chunk as its
``context``, which the text index reads before the chunk's own text (:func:`indexed_text`), so a
table of figures under "Revenue by region" still matches a question about revenue by region.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pagehop.schema import Chunk
from pagehop.text import heading

# Where a chunk may end, best first: paragraph break, sentence end, line break.
_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"[.!?]['\")\]]?\s"), re.compile(r"\n"))
_WHITESPACE = re.compile(r"\s")
_LINE = re.compile(r"[^\n]+")
_NUMBER = re.compile(r"[-+(]?[$€£]?\d[\d,.]*%?\)?")
HEADING_MAX_CHARS = 80
HEADING_MAX_WORDS = 12


def chunk_id_for(doc_id: str, page: int, seq: int) -> str:
    """Readable, unique and parseable: ``<doc_id>:<page>:<seq on the page>``."""
    return f"{doc_id}:{page}:{seq}"


def split_text(text: str, chunk_chars: int, overlap: int, keep_blocks: bool = True) -> list[tuple[int, int]]:
    """(start, end) spans of at most ``chunk_chars`` characters covering ``text``.

    Ends prefer a paragraph or sentence boundary in the second half of the window, then
    whitespace, then a hard cut. Consecutive spans overlap by about ``overlap`` characters,
    starting on a word boundary. Whitespace-only spans are dropped and spans are trimmed.
    ``keep_blocks`` moves a cut that would split a table, or leave a heading or caption at the
    end of a chunk, back to before that block, so the next chunk holds it whole with its caption.
    """
    if chunk_chars <= 0:
        raise ValueError("chunk_chars must be positive")
    overlap = max(0, min(overlap, chunk_chars // 2))
    spans: list[tuple[int, int]] = []
    start, n = 0, len(text)
    while start < n:
        end = n if n - start <= chunk_chars else _best_end(text, start, start + chunk_chars)
        if keep_blocks and end < n:
            end = _before_block(text, start + chunk_chars // 4, end, chunk_chars)
        trimmed = _trim(text, start, end)
        if trimmed:
            spans.append(trimmed)
        if end >= n:
            break
        start = _next_start(text, max(end - overlap, start + 1), end)
    return spans


def is_table_row(line: str) -> bool:
    """A line of a table as a PDF's text layer gives it: several figures, or tab-separated cells."""
    return "\t" in line.strip() or sum(1 for word in line.split() if _NUMBER.fullmatch(word)) >= 2


def _before_block(text: str, floor: int, end: int, reach: int) -> int:
    """``end`` moved back to the start of the table it cuts through (with the caption or heading
    right above it), or of the heading it would leave dangling; unchanged if that is before ``floor``.

    Only lines of at most ``reach`` characters (the chunk size) are looked at, so every scan is bounded:
    a text that is one huge line (a log, minified data) is still cut in linear time.
    """
    # the line the cut ends (the one before it when the cut is at a line break)
    line_start = _line_start(text, end if text[end - 1] != "\n" else end - 1, reach)
    if line_start is None:
        return end
    next_end = text.find("\n", end, end + reach)
    next_is_whole = next_end >= 0 or len(text) - end <= reach  # else it is too long to be a table row
    next_line = text[end : next_end if next_end >= 0 else min(len(text), end + reach)]
    last_line = text[line_start:end]
    cut = end
    if is_table_row(last_line) and next_is_whole and is_table_row(next_line):
        cut = line_start
        while cut > floor:  # back over the rows above, to the table's first row
            above = _line_start(text, cut - 1, reach)
            if above is None or not is_table_row(text[above : cut - 1]):
                break
            cut = above
        above = _line_start(text, cut - 1, reach) if cut > 0 else None
        if above is not None and is_heading_line(text[above : cut - 1]):
            cut = above  # the caption goes with its table
    elif is_heading_line(last_line) and next_line.strip():
        cut = line_start
    return cut if cut > floor else end


def _line_start(text: str, line_end: int, reach: int) -> int | None:
    """Where the line ending at ``line_end`` starts; None when it is longer than ``reach``."""
    found = text.rfind("\n", max(0, line_end - reach), line_end)
    if found < 0 and line_end > reach:
        return None
    return found + 1


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


def is_heading_line(line: str) -> bool:
    """A line that reads as a heading: short, has words, is not a sentence and not a row of figures."""
    line = line.strip()
    if not heading(line, max_chars=HEADING_MAX_CHARS) or not any(ch.isalpha() for ch in line):
        return False
    words = line.split()
    numbers = sum(1 for word in words if _NUMBER.fullmatch(word))
    # "1.2 Results" is a numbered heading; "Revenue 4,120 3,980" is a table row
    return len(words) <= HEADING_MAX_WORDS and numbers <= 1 and (line[0].isupper() or line[0].isdigit())


def headings(text: str) -> list[tuple[int, str]]:
    """(offset, line) of the heading-like lines of a page, in reading order."""
    return [(m.start(), m.group().strip()) for m in _LINE.finditer(text) if is_heading_line(m.group())]


def chunk_context(document: str, page_text: str, start: int, found: list[tuple[int, str]] | None = None) -> str:
    """The headings a chunk starting at ``start`` sits under: its document's, its page's, and its section's."""
    found = headings(page_text) if found is None else found
    page_title = heading(page_text, max_chars=HEADING_MAX_CHARS)
    section = next((line for offset, line in reversed(found) if offset < start), "")
    parts: list[str] = []
    for part in (document, page_title, section):
        if part and part not in parts:
            parts.append(part)
    return " | ".join(parts)


def indexed_text(chunk: Chunk) -> str:
    """What the text index reads for a chunk: its context (headings) first, then its text."""
    return f"{chunk.context}\n{chunk.text}" if chunk.context else chunk.text


def chunk_pages(
    doc_id: str,
    title: str,
    pages: Iterable[tuple[int, str]],
    *,
    chunk_chars: int,
    chunk_overlap: int,
    with_context: bool = False,
    keep_blocks: bool = True,
) -> list[Chunk]:
    """Chunks for one document from its (1-based page number, page text) pairs.

    ``keep_blocks`` keeps tables whole with their captions (:func:`split_text`); ``with_context``
    gives each chunk the headings it sits under (:func:`chunk_context`); the document's own
    heading is the one its first page opens with, else ``title``.
    """
    chunks: list[Chunk] = []
    pages = list(pages)
    document = (heading(pages[0][1], max_chars=HEADING_MAX_CHARS) if pages else "") or title
    for page, text in pages:
        found = headings(text) if with_context else []
        for seq, (start, end) in enumerate(split_text(text, chunk_chars, chunk_overlap, keep_blocks)):
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
                    context=chunk_context(document, text, start, found) if with_context else "",
                )
            )
    return chunks
