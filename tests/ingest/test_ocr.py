"""When a page needs OCR, and that tesseract really reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagehop.ingest.ocr import ocr_image_file, tesseract_path, text_layer_is_poor, wants_ocr

from .conftest import text_image

needs_tesseract = pytest.mark.skipif(tesseract_path() is None, reason="tesseract is not installed")
GOOD_TEXT = "Revenue grew by twelve percent in the third quarter, driven by services. " * 3


def test_poor_text_layers() -> None:
    assert text_layer_is_poor("", image_area=0.0)
    assert text_layer_is_poor("  12  ", image_area=0.0)  # a page number only
    assert text_layer_is_poor("Page 3 of a scanned contract", image_area=0.95)  # overlay on a scan
    assert text_layer_is_poor("\ufffd\ufffd\ufffd \ue000\ue001\ue002 " * 20 + "abc defgh ijklmnop qrstu", 0.0)
    assert not text_layer_is_poor(GOOD_TEXT, image_area=0.0)
    assert not text_layer_is_poor(GOOD_TEXT * 3, image_area=0.9)  # a real text layer over a picture


def test_ocr_modes() -> None:
    assert not wants_ocr("never", "", 1.0, has_image=True)
    assert wants_ocr("always", GOOD_TEXT, 0.0, has_image=True)
    assert wants_ocr("auto", "", 1.0, has_image=True)
    assert not wants_ocr("auto", GOOD_TEXT, 0.0, has_image=True)
    assert not wants_ocr("always", "", 0.0, has_image=False)  # a text file has nothing to OCR


@needs_tesseract
def test_tesseract_reads_rendered_words(tmp_path: Path) -> None:
    path = tmp_path / "words.png"
    text_image("Quokka sightings on Rottnest").save(path)
    assert "Quokka sightings on Rottnest" in ocr_image_file(path).text
