"""Page images on disk: the PNG a reader sees and its JPEG thumbnail, each replaced whole (``pagehop.durable``).

Ingest writes them for image files, and the PNG of a PDF page it draws for OCR (tesseract reads the file);
every other PDF page is drawn from the document's kept copy the first time something asks for it
(:meth:`pagehop.workspace.Workspace.page_image`), with the same rules, so both ways give the same files.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from pagehop.durable import replacing

THUMBNAIL_QUALITY = 80


def stored_form(image: Image.Image, blank: bool) -> Image.Image:
    """A page without ink loses nothing visible as a 1-bit image, which writes ~20x faster
    (a 3,000-page blank PDF spends most of its time here otherwise)."""
    return image.convert("1") if blank else image


def save_page_image(stored: Image.Image, target: Path) -> None:
    with replacing(target) as handle:  # concurrent server requests never see half a file
        stored.save(handle, format="PNG", compress_level=1)  # fast; page PNGs are a cache, not an archive


def save_thumbnail(stored: Image.Image, target: Path, thumbnail_px: int) -> None:
    """``stored`` is the page image as stored (1-bit when blank), read back or still in memory."""
    thumbnail = stored.convert("L") if stored.mode == "1" else stored.copy()
    thumbnail.thumbnail((thumbnail_px, thumbnail_px))
    with replacing(target) as handle:
        thumbnail.save(handle, format="JPEG", quality=THUMBNAIL_QUALITY)
