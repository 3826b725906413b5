"""Page images on demand: a text-layer PDF is ingested without drawing its pages; the first request draws a
page from the workspace's kept copy, exactly as eager ingest drew it, and stores it for the next one."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.config import Settings
from pagehop.ingest import delete, ingest
from pagehop.ingest.ocr import tesseract_path
from pagehop.ingest.pipeline import _write_page_images
from pagehop.testing.pdf import assemble_pdf, pdf_bytes, write_pdf
from pagehop.workspace import Workspace

from .conftest import text_image

PAGES = ["The giraffe browses acacia leaves at dawn.", "The Eiffel Tower was finished in 1889.", "Kraken."]
A4 = (595, 842)  # points: at 50 dpi neither side is a whole number of pixels, so rounding matters


def eager_render(pdf: bytes, number: int, dpi: int) -> Image.Image:
    """What ingest drew for every page before pages were drawn on demand."""
    document = pdfium.PdfDocument(pdf)
    try:
        return document[number - 1].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        document.close()


def a4_pdf(path: Path) -> Path:
    contents = [f"BT /F1 14 Tf 60 760 Td ({text}) Tj ET".encode() for text in PAGES]
    path.write_bytes(assemble_pdf(contents, size=A4))
    return path


def image_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".png", ".jpg"))


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_a_text_layer_pdf_is_ingested_without_page_images_and_drawn_on_request(
    workspace: Workspace, docs: Path, tmp_path: Path
) -> None:
    path = a4_pdf(docs / "atlas.pdf")
    original = path.read_bytes()

    report = ingest(workspace, [path], ocr="never", progress=False)

    assert report.ok
    doc_id = report.ingested[0].doc_id
    folder = workspace.doc_pages_dir(doc_id)
    assert image_files(folder) == []  # nothing drawn, nothing written
    assert workspace.kept_source(doc_id).read_bytes() == original
    expected = [eager_render(original, n, dpi=50) for n in (1, 2, 3)]
    pages = workspace.get_pages(doc_id)
    assert [(p.width, p.height) for p in pages] == [e.size for e in expected] == [(414, 585)] * 3

    path.unlink()  # the user deletes (or moves) the original: the kept copy still draws it
    drawn = workspace.page_image(doc_id, 2)

    assert drawn == folder / "2.png"
    np.testing.assert_array_equal(pixels(drawn), np.asarray(expected[1]))
    assert image_files(folder) == ["2.png"]  # only what was asked for
    thumbnail = workspace.page_image(doc_id, 2, thumbnail=True)
    eager = tmp_path / "eager"
    eager.mkdir()
    _write_page_images(expected[1], False, eager / "2.png", eager / "2.thumb.jpg", thumbnail_px=64)
    assert thumbnail is not None and (eager / "2.png").read_bytes() == drawn.read_bytes()
    np.testing.assert_array_equal(pixels(thumbnail), pixels(eager / "2.thumb.jpg"))

    written = drawn.stat().st_mtime_ns
    assert workspace.page_image(doc_id, 2) == drawn and drawn.stat().st_mtime_ns == written  # stored, not redrawn
    # The agent's retriever (what the VLM reads) goes through the same accessor.
    retriever = WorkspaceRetriever.from_workspace(workspace)
    from_retriever = retriever.page_image(doc_id, 3)
    assert from_retriever == folder / "3.png"
    np.testing.assert_array_equal(pixels(from_retriever), np.asarray(expected[2]))
    assert not list(folder.glob(".*"))  # no temp file left


def test_concurrent_requests_and_an_ingest_draw_pages_side_by_side(workspace: Workspace, docs: Path) -> None:
    """pdfium is not thread-safe: server threads drawing pages while an ingest reads PDFs share one lock."""
    first = write_pdf(docs / "first.pdf", [f"Page {n} of the harbour ledger." for n in range(1, 7)])
    ingest(workspace, [first], ocr="never", progress=False)
    doc_id = workspace.find_document(first).doc_id  # type: ignore[union-attr]
    later = [write_pdf(docs / f"later-{n}.pdf", [f"Ledger {n}, page {p}." for p in range(1, 9)]) for n in range(3)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        requests = [pool.submit(workspace.page_image, doc_id, 1 + n % 6, thumbnail=n % 4 == 0) for n in range(36)]
        report = ingest(workspace, later, ocr="never", progress=False)
        drawn = [request.result() for request in requests]

    assert report.ok and len(report.ingested) == 3
    assert all(path is not None for path in drawn)
    expected = pdf_bytes([f"Page {n} of the harbour ledger." for n in range(1, 7)])
    for number in range(1, 7):
        stored = workspace.page_image(doc_id, number)
        np.testing.assert_array_equal(pixels(stored), np.asarray(eager_render(expected, number, dpi=50)))  # type: ignore[arg-type]
    assert not list(workspace.doc_pages_dir(doc_id).glob(".*"))


def test_no_image_gets_none_and_a_reason(workspace: Workspace, docs: Path, caplog: pytest.LogCaptureFixture) -> None:
    pdf = write_pdf(docs / "notes.pdf", PAGES[:2])
    (docs / "plain.md").write_text("# Plain\n\nA text file has no page image.\n")
    report = ingest(workspace, [docs], ocr="never", progress=False)
    pdf_id = workspace.find_document(pdf).doc_id  # type: ignore[union-attr]
    text_id = workspace.find_document(docs / "plain.md").doc_id  # type: ignore[union-attr]
    assert report.ok and not workspace.kept_source(text_id).exists()  # only PDFs keep a copy

    assert workspace.page_image(pdf_id, 3) is None  # no such page
    assert workspace.page_image(pdf_id, 0) is None
    assert workspace.page_image("0000000000000000", 1) is None  # no such document
    assert workspace.page_image(text_id, 1) is None  # a text page has no image

    # A workspace built before copies were kept: stored files still serve, a missing thumbnail is made from them.
    stored = workspace.page_image(pdf_id, 1)
    workspace.kept_source(pdf_id).unlink()
    assert workspace.page_image(pdf_id, 1) == stored
    assert workspace.page_image(pdf_id, 1, thumbnail=True) == stored.with_name("1.thumb.jpg")  # type: ignore[union-attr]
    with caplog.at_level(logging.WARNING, logger="pagehop.workspace"):
        assert workspace.page_image(pdf_id, 2) is None  # neither the file nor a copy to draw it from
    assert "no image for page 2" in caplog.text and "no copy of the document was kept" in caplog.text

    workspace.kept_source(pdf_id).write_bytes(b"%PDF-1.4 truncated")  # a damaged copy: a reason, not a crash
    with caplog.at_level(logging.WARNING, logger="pagehop.workspace"):
        assert workspace.page_image(pdf_id, 2) is None
    assert "corrupt or truncated PDF" in caplog.text


def test_delete_and_reingest_keep_one_copy_per_content(workspace: Workspace, docs: Path) -> None:
    path = write_pdf(docs / "report.pdf", PAGES)
    doc_id = ingest(workspace, [path], ocr="never", progress=False).ingested[0].doc_id
    copy = docs / "copy-of-report.pdf"
    copy.write_bytes(path.read_bytes())

    again = ingest(workspace, [path, copy], ocr="never", progress=False)

    assert not again.ingested and len(again.skipped) == 2  # same content: skipped, not copied again
    assert [p.name for p in workspace.pages_dir.rglob("*.pdf")] == ["source.pdf"]

    assert delete(workspace, doc_id) is not None
    assert not workspace.kept_source(doc_id).exists() and not workspace.doc_pages_dir(doc_id).exists()
    assert workspace.page_image(doc_id, 1) is None


def test_a_failed_pdf_leaves_no_kept_copy(settings: Settings, docs: Path) -> None:
    class FailingHook:
        def add_document(self, *args: object) -> None:
            raise RuntimeError("extraction failed")

        def delete_document(self, doc_id: str) -> None:
            pass

    workspace = Workspace.open(settings, hooks=[FailingHook()])
    path = write_pdf(docs / "doomed.pdf", PAGES)

    report = ingest(workspace, [path], ocr="never", progress=False)

    assert [why for _, why in report.failed] == ["RuntimeError: extraction failed"]
    assert list(workspace.pages_dir.iterdir()) == []
    workspace.close()


def test_a_file_changed_while_ingested_fails_with_a_reason(
    workspace: Workspace, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept copy is checked against the document's id: another content under that id would draw wrong pages."""
    from pagehop.ingest import files

    path = write_pdf(docs / "moving.pdf", PAGES)
    inspect = files.inspect_file

    def inspect_then_change(target: Path, max_file_mb: float) -> files.SourceFile:
        found = inspect(target, max_file_mb)
        write_pdf(target, PAGES[:1])  # rewritten between the check and the copy
        return found

    monkeypatch.setattr("pagehop.ingest.pipeline.inspect_file", inspect_then_change)
    report = ingest(workspace, [path], ocr="never", progress=False)

    assert [why for _, why in report.failed] == [f"{path} changed while it was being ingested"]
    assert list(workspace.pages_dir.iterdir()) == []


@pytest.mark.skipif(tesseract_path() is None, reason="tesseract is not installed")
def test_ocr_pages_are_drawn_and_stored_at_ingest(workspace: Workspace, docs: Path) -> None:
    scan = docs / "scan.pdf"
    text_image("Lighthouse keeper logbook").save(scan, format="PDF", resolution=72)

    report = ingest(workspace, [scan], progress=False)  # ocr "auto": no text layer

    assert report.ok and report.ocr_pages == 1
    doc_id = report.ingested[0].doc_id
    page = workspace.get_page(doc_id, 1)
    assert page is not None and page.text_source == "ocr"
    folder = workspace.doc_pages_dir(doc_id)
    assert image_files(folder) == ["1.png", "1.thumb.jpg"]  # tesseract read the PNG; the reader gets the same one
    np.testing.assert_array_equal(pixels(folder / "1.png"), np.asarray(eager_render(scan.read_bytes(), 1, dpi=50)))
    assert workspace.page_image(doc_id, 1) == folder / "1.png"


def test_the_page_encoder_gets_the_pages_drawn_as_a_reader_sees_them(settings: Settings, docs: Path) -> None:
    """The visual channel draws every page at ingest (it encodes pixels) but stores none: the vectors of a page
    equal those of the image drawn later on request."""
    from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
    from pagehop.retrieval.page_index import LocalPageIndex
    from pagehop.testing.tiny_models import tiny_colmodernvbert_path

    encoder = ColModernVBertEncoder(tiny_colmodernvbert_path(), device="cpu", docpruner_k=-0.25)
    page_index = LocalPageIndex(settings.workspace / "page_index", dim=encoder.embedding_dim)
    workspace = Workspace.open(settings, page_encoder=encoder, page_index=page_index)
    path = a4_pdf(docs / "atlas.pdf")

    report = ingest(workspace, [path], ocr="never", progress=False)

    assert report.ok and report.channels == ["text", "page"]
    doc_id = report.ingested[0].doc_id
    assert sorted(page_index.pages()) == [(doc_id, n) for n in (1, 2, 3)]
    assert image_files(workspace.doc_pages_dir(doc_id)) == []
    drawn = [Image.open(workspace.page_image(doc_id, n)) for n in (1, 3)]  # type: ignore[arg-type]
    for n, direct in zip((1, 3), encoder.encode_pages(drawn), strict=True):
        np.testing.assert_allclose(page_index.get_vectors(doc_id, n), direct.vectors, atol=2e-3)  # type: ignore[arg-type]
    workspace.close()
