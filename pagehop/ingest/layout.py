"""Where a page's text sits on the page: one box per character, merged into line boxes per chunk.

Boxes are page-relative, ``(x0, y0, x1, y1)`` in 0..1 with the origin at the top-left of the
page as rendered, so the same box fits the page image at any DPI or size. A page's character
boxes line up one-to-one with its text (``boxes[i]`` is where ``text[i]`` is drawn; ``None`` for
whitespace and characters with no place), so a chunk's ``text[char_start:char_end]`` slices its
boxes the same way. Sources: the PDF text layer (pdfium's character boxes) and tesseract's word
boxes for OCR'd pages; plain text files have none.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pagehop.schema import Box

if TYPE_CHECKING:
    import pypdfium2 as pdfium

CharBoxes = list[Box | None]


@dataclass
class PageText:
    text: str
    char_boxes: CharBoxes | None = None  # aligned with ``text``; None when the source has no layout


def pdf_page_text(page: pdfium.PdfPage) -> PageText:
    """The text layer with one page-relative box per character (loose boxes: full line height)."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        count = textpage.count_chars()
        if len(text) != count:  # pdfium could not map text to characters one-to-one: keep the text only
            return _normalise(text, None)
        left, bottom, right, top = page.get_cropbox()
        to_view = _PdfToView(left, bottom, right - left, top - bottom, page.get_rotation())
        boxes: CharBoxes = []
        rect = pdfium_c.FS_RECTF()  # the raw call: half the CPU of the wrapper, for thousands of characters a page
        for index, char in enumerate(text):
            if char.isspace() or not pdfium_c.FPDFText_GetLooseCharBox(textpage.raw, index, rect):
                boxes.append(None)
                continue
            x0, y0, x1, y1 = rect.left, rect.bottom, rect.right, rect.top
            boxes.append(to_view(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None)
        return _normalise(text, boxes)
    finally:
        textpage.close()


@dataclass
class _PdfToView:
    """PDF user space (origin bottom-left, y up) to the rendered view (origin top-left), with /Rotate."""

    left: float
    bottom: float
    width: float
    height: float
    rotation: int  # clockwise degrees, as pdfium renders it

    def __call__(self, x0: float, y0: float, x1: float, y1: float) -> Box | None:
        if self.width <= 0 or self.height <= 0:
            return None
        # Unrotated, top-left origin, 0..1.
        u0, u1 = (x0 - self.left) / self.width, (x1 - self.left) / self.width
        v0, v1 = 1 - (y1 - self.bottom) / self.height, 1 - (y0 - self.bottom) / self.height
        if self.rotation == 90:  # the page turns clockwise: the top edge becomes the right edge
            u0, v0, u1, v1 = 1 - v1, u0, 1 - v0, u1
        elif self.rotation == 180:
            u0, v0, u1, v1 = 1 - u1, 1 - v1, 1 - u0, 1 - v0
        elif self.rotation == 270:
            u0, v0, u1, v1 = v0, 1 - u1, v1, 1 - u0
        return _clamp((u0, v0, u1, v1))


def _normalise(text: str, boxes: CharBoxes | None) -> PageText:
    """One newline style (pdfium ends lines with \\r\\n), keeping the boxes aligned with the text."""
    out: list[str] = []
    kept: CharBoxes = []
    for index, char in enumerate(text):
        if char == "\r":
            if index + 1 < len(text) and text[index + 1] == "\n":
                continue
            char = "\n"
        out.append(char)
        kept.append(boxes[index] if boxes is not None else None)
    return PageText("".join(out), kept if boxes is not None else None)


def normalise_text(text: str) -> str:
    return _normalise(text, None).text


def tesseract_tsv_text(tsv: str) -> PageText:
    """Text and character boxes from ``tesseract ... tsv``: words joined by spaces, lines by newlines,
    paragraphs by blank lines; every character of a word gets the word's box."""
    rows = list(csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE))
    page = next((r for r in rows if r.get("level") == "1"), None)
    if page is None:
        return PageText("", None)
    width, height = float(page["width"]), float(page["height"])
    parts: list[str] = []
    boxes: CharBoxes = []
    last_line: tuple[str, str, str] | None = None
    for row in rows:
        word = (row.get("text") or "").strip()
        if row.get("level") != "5" or not word:
            continue
        line = (row["block_num"], row["par_num"], row["line_num"])
        if last_line is not None:
            separator = " " if line == last_line else ("\n" if line[:2] == last_line[:2] else "\n\n")
            parts.append(separator)
            boxes += [None] * len(separator)
        last_line = line
        left, top = float(row["left"]), float(row["top"])
        box = _clamp(
            (left / width, top / height, (left + float(row["width"])) / width, (top + float(row["height"])) / height)
        )
        parts.append(word)
        boxes += [box] * len(word)
    return PageText("".join(parts), boxes)


def line_boxes(char_boxes: Sequence[Box | None], text: str | None = None) -> list[Box]:
    """Character boxes merged into one box per line (reading order), for highlighting a passage.

    A line ends at a newline of ``text`` (aligned with the boxes) or when the next character does
    not overlap it across its direction by half a character: vertically for a horizontal line,
    horizontally for a vertical one (a rotated page). The direction is set by the line's second
    character.
    """
    lines: list[_Line] = []
    fresh = True
    for index, box in enumerate(char_boxes):
        if text is not None and text[index] == "\n":
            fresh = True
        if box is None:
            continue
        if fresh or not lines or not lines[-1].extend(box):
            lines.append(_Line(*box))
            fresh = False
    return [line.box() for line in lines]


@dataclass
class _Line:
    x0: float
    y0: float
    x1: float
    y1: float
    horizontal: bool | None = None  # unknown until a second character joins

    def extend(self, box: Box) -> bool:
        """Take ``box`` in if it continues this line; False if it starts another."""
        x0, y0, x1, y1 = box
        across_y = min(self.y1, y1) - max(self.y0, y0) >= 0.5 * min(y1 - y0, self.y1 - self.y0)
        across_x = min(self.x1, x1) - max(self.x0, x0) >= 0.5 * min(x1 - x0, self.x1 - self.x0)
        if self.horizontal is None:
            if across_y == across_x:  # on top of the line (accept) or apart from it (refuse)
                if not across_y:
                    return False
            else:
                self.horizontal = across_y
        elif not (across_y if self.horizontal else across_x):
            return False
        self.x0, self.y0, self.x1, self.y1 = min(self.x0, x0), min(self.y0, y0), max(self.x1, x1), max(self.y1, y1)
        return True

    def box(self) -> Box:
        return (round(self.x0, 5), round(self.y0, 5), round(self.x1, 5), round(self.y1, 5))


def _clamp(box: tuple[float, float, float, float]) -> Box:
    x0, y0, x1, y1 = (min(1.0, max(0.0, value)) for value in box)
    return (x0, y0, x1, y1)
