"""A folder of hostile files built in code: broken, encrypted, mislabelled, huge, oddly named.

Used by the ingestion tests (``scale="test"``: small counts, seconds to ingest) and by
``benchmarks/hostile_ingest.py`` (``scale="full"``: the 35-file folder of issue 12, with a
3,000-page blank PDF, a 300-frame TIFF, a 14,400-pt page and a 10 MB line of text). No binary
fixtures: every file is written from a few lines of code, so the cases are readable.

Each file comes with what ingestion must do with it: ``None`` = ingested, otherwise a piece of
the error message that must name it.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from pagehop.testing.pdf import assemble_pdf, escape, pdf_bytes

Scale = Literal["test", "full"]

# Counts per scale: (blank PDF pages, TIFF frames, bytes in the one-line text file).
_SIZES: dict[Scale, tuple[int, int, int]] = {
    "test": (120, 12, 50_000),
    "full": (3000, 300, 10_000_000),
}
OVERSIZE_MB = 201  # a sparse file just over the default ingest.max_file_mb (200)


@dataclass(frozen=True)
class HostileFile:
    name: str  # relative to the folder (may contain sub-folders)
    expect_error: str | None  # None: must be ingested; else a piece of its error message


def text_picture(text: str, size: tuple[int, int] = (900, 160), font_px: int = 48, mode: str = "RGB") -> Image.Image:
    """Dark text on white, large enough for tesseract to read."""
    image = Image.new(mode, size, "white")
    ImageDraw.Draw(image).text((20, (size[1] - font_px) // 2), text, fill="black", font=ImageFont.load_default(font_px))
    return image


def _png(image: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", **params)
    return out.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" + b"\xff" * ((width + 7) // 8), 9)  # one row; the rest would be inflated
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _tiff_frames(frames: int) -> bytes:
    """A multi-frame TIFF: every tenth frame carries a line of text, the others are blank."""
    images = [
        text_picture(f"Frame {n} ledger entry", (700, 140), mode="L")
        if n % 10 == 1
        else Image.new("L", (700, 140), 255)
        for n in range(1, frames + 1)
    ]
    out = io.BytesIO()
    images[0].save(out, format="TIFF", save_all=True, append_images=images[1:], compression="tiff_deflate")
    return out.getvalue()


def _one_line(size: int) -> bytes:
    words = "the harbour master logged every arriving vessel with its cargo and crew "
    return (words * (size // len(words) + 1))[:size].encode()


def _huge_page_pdf() -> bytes:
    """One 14,400 x 14,400 pt page (the PDF maximum) with a line of text in the corner."""
    text = "Survey sheet of the northern estuary, scale one to ten thousand."
    stream = f"BT /F1 48 Tf 72 14200 Td ({escape(text)}) Tj ET".encode("latin-1")
    return assemble_pdf([stream], size=(14_400, 14_400))


def _scan_pdf() -> bytes:
    out = io.BytesIO()
    text_picture("Lighthouse keeper logbook").save(out, format="PDF", resolution=72)
    return out.getvalue()


def _jpeg(image: Image.Image, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    image.convert(mode).save(out, format="JPEG", quality=90)
    return out.getvalue()


_PROSE = "The Meridian Canal opened in 1871 and carried grain from the upland farms to the coast."


def _files(scale: Scale) -> list[tuple[str, Callable[[], bytes] | None, str | None]]:
    blank_pages, frames, line_bytes = _SIZES[scale]
    good_pdf = pdf_bytes([_PROSE, "Its locks were widened in 1902."], title="Canal History")
    return [
        # ----- must fail, each with a message that names it -----
        ("broken/encrypted.pdf", lambda: pdf_bytes(["secret"], encrypted=True), "encrypted"),
        ("broken/truncated.pdf", lambda: good_pdf[:300], "corrupt or truncated"),
        ("broken/no-pages.pdf", lambda: pdf_bytes([]), "no pages"),
        ("broken/garbage-after-header.pdf", lambda: b"%PDF-1.7\n" + bytes(range(256)) * 40, "corrupt or truncated"),
        ("broken/png-named.pdf", lambda: _png(text_picture("not a pdf")), "content is PNG"),
        ("broken/pdf-named.png", lambda: good_pdf, "content is PDF"),
        ("broken/zip-named.pdf", lambda: b"PK\x03\x04" + b"\x00" * 200, "content is binary data"),
        ("broken/elf-named.txt", lambda: b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200, "content is binary data"),
        ("broken/html-named.jpg", lambda: b"<html><body>hello</body></html>", "content is text"),
        ("broken/bomb.png", lambda: bomb_png(60_000, 60_000), "decompression bomb"),
        ("broken/truncated.png", lambda: _png(text_picture("cut short"))[:200], "image"),
        ("broken/truncated.jpg", lambda: _jpeg(text_picture("cut short"))[:400], "image"),
        ("broken/latin1.txt", lambda: "caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1") * 3, "binary data"),
        ("broken/utf16.md", lambda: "# Notes\n\nhello".encode("utf-16"), "content is binary data"),
        ("broken/empty.txt", lambda: b"", "empty file"),
        ("broken/oversize.pdf", None, "MB limit"),  # written sparse below
        # ----- must be ingested -----
        ("good/canal.pdf", lambda: good_pdf, None),
        ("good/junk-before-header.pdf", lambda: b"garbage line\n" + good_pdf, None),
        ("good/scan.pdf", _scan_pdf, None),
        ("good/photo.png", lambda: _png(text_picture("Quokka sightings on Rottnest")), None),
        ("good/palette.png", lambda: _png(text_picture("Palette picture").convert("P")), None),
        ("good/greyscale-16bit.png", lambda: _png(text_picture("Deep grey", mode="L").convert("I;16")), None),
        ("good/cmyk.jpg", lambda: _jpeg(text_picture("Printed in four colours"), "CMYK"), None),
        ("good/one-pixel.png", lambda: _png(Image.new("RGB", (1, 1), "white")), None),
        ("good/notes.md", lambda: f"# Harbour notes\n\n{_PROSE}\n".encode(), None),
        ("good/crlf.txt", lambda: f"line one\r\n{_PROSE}\r\n".encode(), None),
        ("good/bom.txt", lambda: "\ufeff".encode() + _PROSE.encode(), None),
        ("good/résumé – 日本語.txt", lambda: "Curriculum vitae: 東京, Zürich, São Paulo.".encode(), None),
        ("good/spaces (and) [brackets] & 'quotes'.md", lambda: b"# Odd name\n\nStill a fine file.", None),
        ("good/-starts-with-dash.txt", lambda: b"A name that looks like an option.", None),
        ("good/a/b/c/d/e/deep.txt", lambda: b"Five folders down, the text is still found.", None),
        ("good/one-line.txt", lambda: _one_line(line_bytes), None),
        (f"good/blank-{blank_pages}-pages.pdf", lambda: assemble_pdf([b""] * blank_pages), None),
        (f"good/frames-{frames}.tif", lambda: _tiff_frames(frames), None),
        ("good/huge-page-14400pt.pdf", _huge_page_pdf, None),
    ]


def build_hostile_corpus(folder: Path, scale: Scale = "test") -> list[HostileFile]:
    """Write the corpus under ``folder``; returns every file with what ingesting it must do."""
    made = []
    for name, content, expect in _files(scale):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:  # sparse: no disk space, but stat() says OVERSIZE_MB
            with path.open("wb") as fh:
                fh.write(b"%PDF-1.4\n")
                fh.truncate(OVERSIZE_MB * 1024 * 1024)
        else:
            path.write_bytes(content())
        made.append(HostileFile(name, expect))
    return made
