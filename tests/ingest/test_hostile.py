"""Bounded ingestion under hostile input: a generated folder of broken, huge and odd files, page and time limits."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.ingest.ocr import is_blank, tesseract_path
from pagehop.schema import Chunk, Document, Page
from pagehop.testing.hostile import build_hostile_corpus, text_picture
from pagehop.testing.pdf import assemble_pdf, write_pdf
from pagehop.workspace import Workspace


def assert_nothing_partial(workspace: Workspace) -> None:
    """Only ready documents anywhere: catalog rows, page folders and text-index rows agree."""
    statuses = {row[0] for row in workspace._db.execute("SELECT status FROM documents")}
    assert statuses <= {"ready"}
    ready = set(workspace.ready_doc_ids())
    assert {p.name for p in workspace.pages_dir.iterdir()} <= ready
    assert workspace.text_index.doc_ids() <= ready
    rows = workspace._db.execute("SELECT COUNT(*) FROM chunks c JOIN documents d USING (doc_id)").fetchone()[0]
    assert len(workspace.text_index) <= rows


@pytest.mark.skipif(tesseract_path() is None, reason="tesseract is not installed")
def test_hostile_folder_names_every_broken_file_and_ingests_every_good_one(tmp_path: Path) -> None:
    corpus = build_hostile_corpus(tmp_path / "docs", "test")
    workspace = Workspace.open(Settings(workspace=tmp_path / "ws", ingest={"dpi": 50}))

    report = ingest(workspace, [tmp_path / "docs"], progress=False)

    failed = {Path(path).relative_to(tmp_path / "docs").as_posix(): why for path, why in report.failed}
    ingested = {Path(d.path).relative_to(tmp_path / "docs").as_posix() for d in report.ingested}
    for item in corpus:
        if item.expect_error is None:
            assert item.name in ingested, failed.get(item.name)
        else:
            assert item.expect_error in failed[item.name], failed[item.name]
            assert item.name in failed[item.name]  # the message itself names the file
    assert len(ingested) + len(failed) == len(corpus)
    assert_nothing_partial(workspace)
    assert len(workspace.list_documents()) == len(ingested)
    # The blank PDF's pages are stored but were never rendered, OCR'd or saved as images (its copy is kept).
    blank = next(d for d in report.ingested if "blank-" in d.path)
    assert (blank.pages, blank.ocr_pages) == (120, 0) and report.blank_pages >= 120
    blank_pages = workspace.get_pages(blank.doc_id)
    assert len(blank_pages) == 120 and all(p.image_path is None and p.text_source == "none" for p in blank_pages)
    assert [p.name for p in workspace.doc_pages_dir(blank.doc_id).iterdir()] == ["source.pdf"]
    assert f"{report.blank_pages} blank" in report.summary()
    # The TIFF's pages came back from the OCR pool in page order.
    tiff = workspace.find_document(tmp_path / "docs/good/frames-12.tif")
    assert tiff is not None and tiff.num_pages == 12
    for number in (1, 11):
        page = workspace.get_page(tiff.doc_id, number)
        assert page is not None and page.text_source == "ocr" and "ledger" in page.text.lower()
    assert workspace.get_page(tiff.doc_id, 2).text_source == "none"  # type: ignore[union-attr]
    (hit,) = workspace.text_index.search("harbour master vessel cargo", k=1)
    assert hit.doc_id == workspace.find_document(tmp_path / "docs/good/one-line.txt").doc_id  # type: ignore[union-attr]
    workspace.close()


def test_blank_test_sees_ink_and_ignores_specks() -> None:
    assert is_blank(Image.new("RGB", (1275, 1650), "white"))
    specks = Image.new("L", (1275, 1650), 245)  # a grey scanner background with a few dust dots
    draw = ImageDraw.Draw(specks)
    for x in (100, 600, 1100):
        draw.point([(x, 200), (x + 1, 200)], fill=0)
    assert is_blank(specks)
    assert not is_blank(text_picture("x", (200, 100), font_px=24))
    assert not is_blank(text_picture("Quarterly report"))


def test_max_pages_refuses_or_truncates_and_says_so(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "long.pdf", [f"Section {n} of the long manual." for n in range(1, 8)])
    write_pdf(docs / "short.pdf", ["One page only."])

    refusing = Workspace.open(Settings(workspace=tmp_path / "ws1", ingest={"dpi": 50, "max_pages": 5}))
    report = ingest(refusing, [docs], ocr="never", progress=False)
    ((failed_path, why),) = report.failed
    assert failed_path.endswith("long.pdf") and "7 pages is over the 5-page limit (ingest.max_pages)" in why
    assert [Path(d.path).name for d in report.ingested] == ["short.pdf"]
    assert_nothing_partial(refusing)
    refusing.close()

    settings = Settings(workspace=tmp_path / "ws2", ingest={"dpi": 50, "max_pages": 5, "page_limit": "truncate"})
    truncating = Workspace.open(settings)
    report = ingest(truncating, [docs], ocr="never", progress=False)
    assert report.ok
    long_doc = next(d for d in report.ingested if d.path.endswith("long.pdf"))
    assert (long_doc.pages, long_doc.truncated_from) == (5, 7)
    assert "only its first 5 of 7 pages were ingested (ingest.max_pages)" in report.summary()
    stored = truncating.find_document(docs / "long.pdf")
    assert stored is not None and stored.num_pages == 5 and len(truncating.get_pages(stored.doc_id)) == 5
    assert truncating.get_page(stored.doc_id, 6) is None
    truncating.close()


class SlowOnHook:
    """A derived-data channel that takes ``seconds`` on documents whose path contains ``marker``."""

    def __init__(self, marker: str, seconds: float) -> None:
        self.marker, self.seconds = marker, seconds
        self.deleted: list[str] = []

    def add_document(self, doc: Document, pages: Sequence[Page], chunks: Sequence[Chunk]) -> None:
        if self.marker in doc.source_path:
            time.sleep(self.seconds)

    def delete_document(self, doc_id: str) -> None:
        self.deleted.append(doc_id)


def test_a_file_over_its_time_budget_fails_alone_and_leaves_nothing(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "a-fast.pdf", ["Quick notes."])
    write_pdf(docs / "b-slow.pdf", ["A document whose graph extraction crawls.", "Second page."])
    write_pdf(docs / "c-fast.pdf", ["More quick notes."])
    hook = SlowOnHook("b-slow", seconds=6.0)
    settings = Settings(workspace=tmp_path / "ws", ingest={"dpi": 50, "max_seconds_per_file": 5.0})
    workspace = Workspace.open(settings, hooks=[hook])

    report = ingest(workspace, [docs], ocr="never", progress=False)

    assert [Path(d.path).name for d in report.ingested] == ["a-fast.pdf", "c-fast.pdf"]
    ((path, why),) = report.failed
    assert path.endswith("b-slow.pdf") and why == "took longer than 5 s (ingest.max_seconds_per_file)"
    assert f"failed {path}: took longer than 5 s" in report.summary()
    slow_id = next(d for d in hook.deleted)
    assert workspace.status_of(slow_id) is None  # purged from the catalog, its pages and every channel
    assert_nothing_partial(workspace)
    workspace.close()


def test_a_budget_too_small_for_a_long_pdf_stores_nothing(tmp_path: Path) -> None:
    """The budget is checked between pages: a long PDF stops early instead of reading to the end.

    Its pages carry text: blank pages are skipped so cheaply that 400 of them could fit the budget."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.pdf").write_bytes(assemble_pdf([b"BT /F1 12 Tf 72 720 Td (A page of the report.) Tj ET"] * 400))
    settings = Settings(workspace=tmp_path / "ws", ingest={"dpi": 50, "max_seconds_per_file": 0.05})
    workspace = Workspace.open(settings)

    report = ingest(workspace, [docs], progress=False)

    ((path, why),) = report.failed
    assert path.endswith("long.pdf") and why.startswith("took longer than 0.05 s")
    assert workspace.list_documents() == [] and list(workspace.pages_dir.iterdir()) == []
    assert_nothing_partial(workspace)
    workspace.close()
