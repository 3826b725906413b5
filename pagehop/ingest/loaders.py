"""Open a source file and yield its pages one at a time: text layer, and the page image or a way to draw it.

Pages are produced lazily so a 500-page PDF never sits in memory as 500 bitmaps, and a PDF page is drawn
only when something asks for its pixels (``RawPage.render``: OCR, the page encoder); its size as drawn is
known without drawing it. :func:`render_pdf_page` draws a page later, from a kept copy of the file. Opening
validates everything that can be checked up front (encryption, page count, pixel limits),
so most bad files fail before the pipeline writes anything.

A .txt/.md file is one page: the whole text is page 1, and chunk character offsets say
where in it a passage sits. Splitting into artificial pages would invent citations
("page 7" of a Markdown file) that match nothing a reader sees.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from pagehop.ingest.files import IngestError, SourceFile
from pagehop.ingest.layout import CharBoxes, normalise_text, pdf_page_text

if TYPE_CHECKING:
    import pypdfium2 as pdfium

log = logging.getLogger(__name__)

# pdfium is not thread-safe, not even across documents: every pdfium call of this process (ingest reading a
# PDF, a server thread drawing a page on request) holds this lock.
PDFIUM_LOCK = threading.RLock()


@dataclass
class RawPage:
    number: int  # 1-based
    image: Image.Image | None  # RGB, for image files; None for text files and PDF pages (see ``render``)
    text: str  # the embedded text layer ("" if none)
    image_area: float  # share of the page covered by embedded pictures, 0..1 (1 for scans/photos)
    char_boxes: CharBoxes | None = None  # where each character of ``text`` is drawn (see pagehop.ingest.layout)
    blank: bool = False  # a PDF page with nothing on it: not rendered, no image, no OCR
    size: tuple[int, int] | None = None  # (width, height) of the page image in pixels; None: it has none
    render: Callable[[], Image.Image] | None = None  # draws a PDF page (RGB, at ``size``); call it before the next

    def pixels(self) -> Image.Image:
        """The page image: the image file's frame, or the PDF page drawn now."""
        if self.image is None:
            if self.render is None:
                raise ValueError(f"page {self.number} has no image")
            self.image = self.render()
        return self.image


class PageSource(Protocol):
    title: str
    num_pages: int

    def pages(self) -> Iterator[RawPage]: ...

    def close(self) -> None: ...


def open_source(source: SourceFile, dpi: int, max_image_pixels: int) -> PageSource:
    if source.kind == "pdf":
        return PdfSource(source.path, dpi, max_image_pixels)
    if source.kind == "image":
        return ImageSource(source.path, max_image_pixels)
    return TextSource(source.path)


class PdfSource:
    def __init__(self, path: Path, dpi: int, max_image_pixels: int) -> None:
        self.path = path
        self.dpi = dpi
        self.max_image_pixels = max_image_pixels
        with PDFIUM_LOCK:
            self._pdf = _open_pdf(path)
            self.num_pages = len(self._pdf)
            if self.num_pages == 0:
                self._pdf.close()
                raise IngestError(f"{path}: the PDF has no pages (or its page tree is unreadable)")
            metadata_title = (self._pdf.get_metadata_dict().get("Title") or "").strip()
        self.title = metadata_title or path.stem

    def pages(self) -> Iterator[RawPage]:
        import pypdfium2 as pdfium

        for index in range(self.num_pages):
            try:
                with PDFIUM_LOCK:  # not held while the caller works on the page
                    raw = self._page(index)
            except pdfium.PdfiumError as exc:
                raise IngestError(f"{self.path}: page {index + 1} cannot be read ({exc}); the PDF is damaged") from None
            yield raw

    def _page(self, index: int) -> RawPage:
        page = self._pdf[index]
        try:
            if _is_empty(page):  # white: nothing to render, read, OCR or show (a 3,000-page blank PDF is cheap)
                return RawPage(index + 1, None, "", 0.0, blank=True)
            width_pt, height_pt = page.get_size()
            size = rendered_size(width_pt, height_pt, self._scale(width_pt, height_pt, index + 1))
            layer = pdf_page_text(page)
            return RawPage(
                index + 1,
                None,
                layer.text,
                _image_area(page, width_pt * height_pt),
                layer.char_boxes,
                size=size,
                render=lambda: self._render(index, size),
            )
        finally:
            page.close()

    def _render(self, index: int, size: tuple[int, int]) -> Image.Image:
        with PDFIUM_LOCK:
            page = self._pdf[index]
            try:
                return _render(page, size)
            finally:
                page.close()

    def _scale(self, width_pt: float, height_pt: float, number: int) -> float:
        """dpi/72, lowered for a page so large that rendering it would exceed max_image_pixels."""
        scale = self.dpi / 72
        pixels = width_pt * height_pt * scale * scale
        if pixels > self.max_image_pixels:
            scale *= (self.max_image_pixels / pixels) ** 0.5
            log.warning(
                "%s: page %d is huge; rendered at %.0f dpi to stay under max_image_pixels",
                self.path,
                number,
                scale * 72,
            )
        return scale

    def close(self) -> None:
        with PDFIUM_LOCK:
            self._pdf.close()


def rendered_size(width_pt: float, height_pt: float, scale: float) -> tuple[int, int]:
    """The pixel size pdfium draws a page at ``scale`` (pypdfium2 rounds each side up)."""
    return math.ceil(width_pt * scale), math.ceil(height_pt * scale)


def _render(page: pdfium.PdfPage, size: tuple[int, int]) -> Image.Image:
    """Draw ``page`` at the pixel size recorded when it was read. pdfium's output depends only on that size, so
    any scale inside the range that gives it draws the same pixels as at ingest; the middle of the range is
    safe from rounding."""
    width_pt, height_pt = page.get_size()
    (width, height) = size
    low = max((width - 1) / width_pt, (height - 1) / height_pt)
    high = min(width / width_pt, height / height_pt)
    image = page.render(scale=(low + high) / 2).to_pil().convert("RGB")
    if image.size != size:  # a page whose size is not what the catalog says: not the file that was ingested
        raise ValueError(f"page drawn at {image.size}, expected {size}")
    return image


def render_pdf_page(path: Path, number: int, size: tuple[int, int]) -> Image.Image:
    """Page ``number`` (1-based) of the PDF at ``path`` drawn at ``size`` as ingest would have drawn it.
    IngestError when the file cannot be opened or has no such page."""
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        pdf = _open_pdf(path)
        try:
            if not 1 <= number <= len(pdf):
                raise IngestError(f"{path}: no page {number} (the PDF has {len(pdf)})")
            page = pdf[number - 1]
            try:
                return _render(page, size)
            finally:
                page.close()
        except (pdfium.PdfiumError, ValueError) as exc:
            raise IngestError(f"{path}: page {number} cannot be drawn ({exc})") from None
        finally:
            pdf.close()


def _open_pdf(path: Path) -> pdfium.PdfDocument:
    """Open a PDF, or raise IngestError saying why pdfium refused it."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    # pdfium's last-error code is global and some failures (an empty page tree) leave it
    # untouched, so a code left by an earlier file would be misread. Plant a known code
    # first (opening a path that does not exist sets FPDF_ERR_FILE); if it survives the
    # real open, that open failed without saying why.
    pdfium_c.FPDF_LoadDocument(b"/nonexistent/pagehop-error-sentinel.pdf", None)
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            problem = "the PDF is encrypted (password-protected); save an unprotected copy first"
        elif code == pdfium_c.FPDF_ERR_SECURITY:
            problem = "the PDF uses an unsupported security handler"
        elif code == pdfium_c.FPDF_ERR_FILE:
            problem = "the PDF has no pages (or its page tree is unreadable)"
        else:
            problem = f"corrupt or truncated PDF ({exc})"
        raise IngestError(f"{path}: {problem}") from None


def _is_empty(page: pdfium.PdfPage) -> bool:
    """No page objects and no annotations: pdfium would draw a white page."""
    import pypdfium2.raw as pdfium_c

    return bool(pdfium_c.FPDFPage_CountObjects(page.raw) == 0 and pdfium_c.FPDFPage_GetAnnotCount(page.raw) == 0)


def _image_area(page: object, page_area: float) -> float:
    import pypdfium2.raw as pdfium_c

    covered = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3):  # type: ignore[attr-defined]
        left, bottom, right, top = obj.get_bounds()
        covered += max(0.0, right - left) * max(0.0, top - bottom)
    return min(1.0, covered / page_area) if page_area > 0 else 0.0


class ImageSource:
    """PNG, JPEG, or TIFF (every frame of a multi-page TIFF is a page)."""

    def __init__(self, path: Path, max_image_pixels: int) -> None:
        self.path = path
        self.title = path.stem
        self.max_image_pixels = max_image_pixels
        try:
            self._image = Image.open(path)
            self.num_pages = getattr(self._image, "n_frames", 1)
            for frame in range(self.num_pages):
                self._image.seek(frame)
                self._check_pixels(frame + 1)
        except Image.DecompressionBombError:
            raise IngestError(self._bomb_message("?", "?")) from None
        except IngestError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise IngestError(f"{path}: unreadable image ({exc})") from None

    def _check_pixels(self, number: int) -> None:
        width, height = self._image.size
        if width * height > self.max_image_pixels:
            raise IngestError(self._bomb_message(number, f"{width}x{height}"))

    def _bomb_message(self, number: int | str, size: str) -> str:
        return (
            f"{self.path}: image page {number} ({size}) exceeds ingest.max_image_pixels="
            f"{self.max_image_pixels:,}; refusing a possible decompression bomb"
        )

    def pages(self) -> Iterator[RawPage]:
        for frame in range(self.num_pages):
            try:
                self._image.seek(frame)
                image = self._image.convert("RGB")
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise IngestError(f"{self.path}: image page {frame + 1} is damaged ({exc})") from None
            yield RawPage(frame + 1, image, "", 1.0, size=image.size)

    def close(self) -> None:
        self._image.close()


class TextSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise IngestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        self.text = normalise_text(self.text)
        heading = _markdown_title(self.text) if path.suffix.lower() in (".md", ".markdown") else None
        self.title = heading or path.stem
        self.num_pages = 1

    def pages(self) -> Iterator[RawPage]:
        yield RawPage(1, None, self.text, 0.0)

    def close(self) -> None:
        pass


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip() or None
    return None
