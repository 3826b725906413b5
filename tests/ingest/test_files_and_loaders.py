"""Type detection, limits and loaders: every bad file fails alone with a message that says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pagehop.ingest.files import IngestError, content_doc_id, expand_paths, inspect_file, sniff_kind
from pagehop.ingest.loaders import open_source
from pagehop.testing.pdf import pdf_bytes, write_pdf

from .conftest import text_image

MAX_MB = 10.0


def load(path: Path, *, dpi: int = 50, max_pixels: int = 50_000_000):
    return open_source(inspect_file(path, MAX_MB), dpi, max_pixels)


def test_doc_id_is_the_content_hash(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    a.write_text("same words")
    b.write_text("same words")
    c.write_text("other words")
    assert content_doc_id(a) == content_doc_id(b) != content_doc_id(c)
    assert len(content_doc_id(a)) == 16 and int(content_doc_id(a), 16) >= 0


def test_sniffing_uses_magic_bytes() -> None:
    assert sniff_kind(b"junk\n%PDF-1.7\n") == ("PDF", "pdf")  # header within the first 1024 bytes
    assert sniff_kind(b"\x89PNG\r\n\x1a\nrest")[1] == "image"
    assert sniff_kind(b"II*\x00....")[0] == "TIFF"
    assert sniff_kind("plain café text".encode()) == ("text", "text")
    assert sniff_kind(b"MZ\x90\x00\x03\x00")[1] is None


def test_mislabelled_file_is_refused(tmp_path: Path) -> None:
    fake_pdf = tmp_path / "report.pdf"
    text_image("hello").save(fake_pdf, format="PNG")
    with pytest.raises(IngestError, match=r"extension \.pdf says pdf, but the content is PNG"):
        inspect_file(fake_pdf, MAX_MB)
    binary_txt = tmp_path / "notes.txt"
    binary_txt.write_bytes(b"MZ\x90\x00\x03\x00\x00\x00")
    with pytest.raises(IngestError, match="content is binary data"):
        inspect_file(binary_txt, MAX_MB)


def test_unsupported_empty_and_oversized_files(tmp_path: Path) -> None:
    docx = tmp_path / "letter.docx"
    docx.write_bytes(b"PK\x03\x04")
    with pytest.raises(IngestError, match=r"unsupported file type \.docx"):
        inspect_file(docx, MAX_MB)
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    with pytest.raises(IngestError, match="empty file"):
        inspect_file(empty, MAX_MB)
    big = tmp_path / "big.txt"
    big.write_text("x" * 300_000)
    with pytest.raises(IngestError, match=r"over the 0.1 MB limit"):
        inspect_file(big, 0.1)


def test_pdf_pages_have_text_layer_title_and_image(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "a.pdf", ["First page (intro)\nsecond line", "Page two"], title="Annual Report")
    source = load(path)
    assert (source.title, source.num_pages) == ("Annual Report", 2)
    pages = list(source.pages())
    assert [p.number for p in pages] == [1, 2]
    assert pages[0].text == "First page (intro)\nsecond line"
    # a PDF page is drawn only when asked for, at the size recorded without drawing it
    assert pages[0].image is None and pages[0].size == (425, 550)  # US letter at 50 dpi
    assert pages[0].pixels().size == (425, 550) and pages[0].image is not None
    source.close()
    assert pages[0].image_area == 0.0


def test_pdf_without_title_metadata_uses_file_name(tmp_path: Path) -> None:
    source = load(write_pdf(tmp_path / "quarterly.pdf", ["text"]))
    assert source.title == "quarterly"
    source.close()


def test_image_only_pdf_reports_its_picture_area(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    text_image("scanned words").save(path, format="PDF", resolution=72)
    page = next(iter(load(path).pages()))
    assert page.text.strip() == ""
    assert page.image_area == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (pdf_bytes(["secret"], encrypted=True), "encrypted"),
        (pdf_bytes([]), "has no pages"),
        (pdf_bytes(["one", "two", "three"])[:300], "corrupt or truncated"),
    ],
    ids=["encrypted", "zero-pages", "truncated"],
)
def test_broken_pdfs_fail_with_a_reason(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=message):
        load(path)


def test_multi_page_tiff_gives_one_page_per_frame(tmp_path: Path) -> None:
    path = tmp_path / "fax.tiff"
    frames = [text_image(f"frame {i}") for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    source = load(path)
    pages = list(source.pages())
    source.close()
    assert source.num_pages == 3
    assert [p.number for p in pages] == [1, 2, 3]
    assert all(p.image is not None and p.image.mode == "RGB" and p.image_area == 1.0 for p in pages)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("L", (4000, 3000), 255).save(path)  # 12 Mpx compresses to a few kB
    assert path.stat().st_size < 100_000
    with pytest.raises(IngestError, match="decompression bomb"):
        load(path, max_pixels=1_000_000)


def test_damaged_image_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    text_image("x").save(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(IngestError, match=r"cut\.png"):
        list(load(path).pages())


def test_text_and_markdown_are_one_page(tmp_path: Path) -> None:
    md = tmp_path / "guide.md"
    md.write_text("intro\r\n# The Guide\n\nBody text.\n", encoding="utf-8")
    source = load(md)
    (page,) = list(source.pages())
    assert (source.title, page.number, page.image) == ("The Guide", 1, None)
    assert page.text == "intro\n# The Guide\n\nBody text.\n"
    latin1 = tmp_path / "old.txt"
    latin1.write_bytes("caf\xe9 menu".encode("latin-1"))
    with pytest.raises(IngestError, match=r"content is binary data|not UTF-8"):
        load(latin1)


def test_folders_are_walked_recursively_without_hidden_or_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("a.pdf", "sub/b.md", ".git/c.txt", "sub/.hidden.txt", "sub/notes.docx"):
        (tmp_path / name).write_text("x")
    explicit = tmp_path / "sub" / "notes.docx"
    found = list(expand_paths([tmp_path, explicit]))
    assert found == [tmp_path / "a.pdf", tmp_path / "sub" / "b.md", explicit]
