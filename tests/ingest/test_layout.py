"""Chunk boxes: where a chunk's text sits on its page, from the PDF text layer and from OCR."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.ingest.layout import line_boxes, tesseract_tsv_text
from pagehop.ingest.ocr import tesseract_path
from pagehop.schema import Box, Chunk
from pagehop.testing.pdf import pdf_bytes
from pagehop.workspace import Workspace

from .conftest import text_image

LINES = "Harbor Lane builds warehouse robots\nThe founder grew up in Tallinn\nRevenue rose in 2021"


def ink(image: Image.Image, box: Box | None = None) -> int:
    """Dark pixels of ``image`` inside the page-relative ``box`` (the whole image when None)."""
    gray = np.asarray(image.convert("L"))
    if box is not None:
        height, width = gray.shape
        x0, y0, x1, y1 = box
        gray = gray[int(y0 * height) : int(np.ceil(y1 * height)), int(x0 * width) : int(np.ceil(x1 * width))]
    return int((gray < 128).sum())


def only_chunk(workspace: Workspace) -> tuple[Chunk, Image.Image]:
    (doc,) = workspace.list_documents()
    (chunk,) = workspace.get_chunks(doc.doc_id)
    image = workspace.page_image(doc.doc_id, chunk.page_start)
    assert image is not None
    return chunk, Image.open(image)


def assert_boxes_cover_the_ink(chunk: Chunk, image: Image.Image, lines: int) -> None:
    assert len(chunk.boxes) == lines, chunk.boxes
    assert all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in chunk.boxes)
    tops = [box[1] for box in chunk.boxes]
    assert tops == sorted(tops)  # reading order, one box per line
    inside = sum(ink(image, box) for box in chunk.boxes)
    assert inside > 0 and inside >= 0.97 * ink(image)  # every line of text drawn is inside a box


@pytest.mark.parametrize("dpi", [40, 110])
def test_pdf_text_layer_boxes_fit_the_rendered_page_at_any_dpi(tmp_path: Path, dpi: int) -> None:
    pdf = tmp_path / "robots.pdf"
    pdf.write_bytes(pdf_bytes([LINES]))
    with Workspace.open(Settings(workspace=tmp_path / "ws", ingest={"dpi": dpi})) as workspace:
        assert ingest(workspace, [pdf], progress=False).ok
        chunk, image = only_chunk(workspace)
        assert image.width == round(612 * dpi / 72)
        assert_boxes_cover_the_ink(chunk, image, lines=3)
        # The text starts 72 pt from the left edge of a 612 pt page.
        assert chunk.boxes[0][0] == pytest.approx(72 / 612, abs=0.01)


def test_rotated_pdf_page_boxes_follow_the_rotation(tmp_path: Path) -> None:
    pdf = tmp_path / "rotated.pdf"
    # pdfium rebuilds the cross-reference table that the inserted /Rotate shifts.
    pdf.write_bytes(pdf_bytes([LINES]).replace(b"/MediaBox", b"/Rotate 90 /MediaBox"))
    with Workspace.open(Settings(workspace=tmp_path / "ws", ingest={"dpi": 60})) as workspace:
        assert ingest(workspace, [pdf], progress=False).ok
        chunk, image = only_chunk(workspace)
        assert image.width > image.height  # a portrait page turned to landscape
        assert_boxes_cover_the_ink(chunk, image, lines=3)
        x0, y0, x1, y1 = chunk.boxes[0]
        assert y1 - y0 > x1 - x0  # turned clockwise: lines run top to bottom


@pytest.mark.skipif(tesseract_path() is None, reason="tesseract is not installed")
def test_ocr_word_boxes_become_line_boxes(tmp_path: Path) -> None:
    scan = Image.new("RGB", (1000, 420), "white")
    for row, words in enumerate(["Quokka sightings on Rottnest", "rose sharply in spring"]):
        scan.paste(text_image(words, size=(940, 110)), (30, 60 + 150 * row))
    scan.save(tmp_path / "scan.png")
    with Workspace.open(Settings(workspace=tmp_path / "ws")) as workspace:
        report = ingest(workspace, [tmp_path / "scan.png"], progress=False)
        assert report.ok and report.ocr_pages == 1
        chunk, image = only_chunk(workspace)
        assert "Quokka sightings on Rottnest" in chunk.text
        assert_boxes_cover_the_ink(chunk, image, lines=2)


def test_tesseract_tsv_layout_keeps_text_and_boxes_aligned() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t200\t100\t-1\t",
        "5\t1\t1\t1\t1\t1\t10\t10\t40\t10\t95\tOne",
        "5\t1\t1\t1\t1\t2\t60\t10\t40\t10\t95\ttwo",
        "5\t1\t1\t1\t2\t1\t10\t30\t40\t10\t95\tthree",
        "5\t1\t1\t2\t1\t1\t10\t60\t40\t10\t95\tfour",
    ]
    layout = tesseract_tsv_text("\n".join([header, *rows]))
    assert layout.text == "One two\nthree\n\nfour"
    assert layout.char_boxes is not None and len(layout.char_boxes) == len(layout.text)
    assert layout.char_boxes[0] == (0.05, 0.1, 0.25, 0.2) and layout.char_boxes[3] is None
    expected = [(0.05, 0.1, 0.5, 0.2), (0.05, 0.3, 0.25, 0.4), (0.05, 0.6, 0.25, 0.7)]
    assert line_boxes(layout.char_boxes, layout.text) == expected


def test_plain_text_has_no_boxes(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("A plain note about herons.\n")
    with Workspace.open(Settings(workspace=tmp_path / "ws")) as workspace:
        assert ingest(workspace, [tmp_path / "note.txt"], progress=False).ok
        (doc,) = workspace.list_documents()
        assert [c.boxes for c in workspace.get_chunks(doc.doc_id)] == [[]]


OLD_CATALOG = """
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, source_path TEXT NOT NULL, title TEXT NOT NULL,
    kind TEXT NOT NULL, num_pages INTEGER NOT NULL, size_bytes INTEGER NOT NULL, ingested_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'deleting')));
CREATE TABLE pages (doc_id TEXT NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE, page INTEGER NOT NULL,
    text TEXT NOT NULL, text_source TEXT NOT NULL, image_path TEXT, thumbnail_path TEXT, width INTEGER,
    height INTEGER, num_patches INTEGER, vectors_kept INTEGER, prune_stats TEXT, PRIMARY KEY (doc_id, page));
CREATE TABLE chunks (chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, page_start INTEGER NOT NULL, page_end INTEGER NOT NULL, char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL, text TEXT NOT NULL, title TEXT NOT NULL);
INSERT INTO documents VALUES ('old0000000000001', '/old/notes.txt', 'Old notes', 'text', 1, 10, 1.0, 'ready');
INSERT INTO pages VALUES ('old0000000000001', 1, 'Herons nest here.', 'text', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO chunks VALUES
    ('old0000000000001:1:0', 'old0000000000001', 0, 1, 1, 0, 17, 'Herons nest here.', 'Old notes');
"""


def test_a_catalog_from_before_boxes_still_opens_and_takes_new_documents(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    with sqlite3.connect(root / "catalog.sqlite") as db:
        db.executescript(OLD_CATALOG)
    pdf = tmp_path / "robots.pdf"
    pdf.write_bytes(pdf_bytes([LINES]))
    with Workspace.open(Settings(workspace=root, ingest={"dpi": 40})) as workspace:
        (old,) = workspace.get_chunks("old0000000000001")
        assert old.text == "Herons nest here." and old.boxes == []
        assert ingest(workspace, [pdf], progress=False).ok
    with Workspace.open(Settings(workspace=root)) as workspace:  # reopening a migrated catalog is a no-op
        new = [d for d in workspace.list_documents() if d.doc_id != "old0000000000001"]
        assert len(workspace.get_chunks(new[0].doc_id)[0].boxes) == 3
        assert workspace.get_chunk("old0000000000001:1:0") is not None
