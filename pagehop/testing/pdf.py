"""Hand-written PDFs: a real text layer in standard Helvetica, no extra dependency.

Used by tests and by scripts/build_demo_pdf.py. Writing the bytes ourselves also lets tests build
the broken cases a PDF library refuses to produce: zero pages, truncated files, and a
password-protected (encrypted) file.
"""

from __future__ import annotations

from pathlib import Path

PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US letter, points


def escape(text: str) -> str:
    """``text`` as the inside of a PDF string literal."""
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content_stream(text: str) -> bytes:
    lines = " T* ".join(f"({escape(line)}) Tj" for line in text.splitlines() or [""])
    return f"BT /F1 12 Tf 72 720 Td 14 TL {lines} ET".encode("latin-1")


def pdf_bytes(pages: list[str], *, title: str | None = None, encrypted: bool = False) -> bytes:
    """A valid PDF with one page per string (lines split on newlines); ``[]`` gives a zero-page PDF."""
    return assemble_pdf([_content_stream(text) for text in pages], title=title, encrypted=encrypted)


def assemble_pdf(
    contents: list[bytes],
    *,
    size: tuple[int, int] = (PAGE_WIDTH, PAGE_HEIGHT),
    title: str | None = None,
    encrypted: bool = False,
) -> bytes:
    """A PDF with one page per content stream (PDF drawing operators; font /F1 is Helvetica)."""
    width, height = size
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(contents))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(contents)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for pid, stream in zip(page_ids, contents, strict=True):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {pid + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_ref = b""
    if title is not None:
        objects.append(f"<< /Title ({escape(title)}) >>".encode("latin-1"))
        info_ref = b" /Info %d 0 R" % len(objects)
    encrypt_ref = b""
    if encrypted:
        # Standard security handler, RC4 40-bit, with a user password: without the password
        # nobody (pdfium included) can open it.
        objects.append(b"<< /Filter /Standard /V 1 /R 2 /O <" + b"ab" * 32 + b"> /U <" + b"cd" * 32 + b"> /P -44 >>")
        file_id = b"<" + b"0123456789abcdef" * 2 + b">"
        encrypt_ref = b" /Encrypt %d 0 R /ID [%s %s]" % (len(objects), file_id, file_id)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R" % (len(objects) + 1) + info_ref + encrypt_ref + b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def write_pdf(path: Path, pages: list[str], **kwargs: object) -> Path:
    path.write_bytes(pdf_bytes(pages, **kwargs))  # type: ignore[arg-type]
    return path
