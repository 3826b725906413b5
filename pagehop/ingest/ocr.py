"""OCR with the tesseract command line, and the rule for when a page needs it.

Tesseract runs as a subprocess (no Python binding to install) with ``--psm 6`` (one uniform
block of text: the default ``--psm 3`` fragments full pages badly) and ``OMP_THREAD_LIMIT=1``
(its OpenMP threads make a page about 6x slower on a small machine). Parallelism comes from
:class:`OcrPool` instead: one single-threaded tesseract per core. A page without ink
(:func:`is_blank`) never reaches tesseract at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from PIL import Image

from pagehop.ingest.layout import PageText, tesseract_tsv_text

OcrMode = Literal["auto", "always", "never"]

# Fewer letters than this: for search, the page has no text layer.
MIN_LETTERS = 20
# A page mostly covered by pictures with only a little text is a scan with an overlay
# (a page number, a stamped header): its real content is in the picture.
SCAN_IMAGE_AREA = 0.5
SCAN_MAX_LETTERS = 200
# Broken font encodings come out as replacement, private-use or control characters.
MAX_GARBAGE_RATIO = 0.3


# A pixel darker than this is ink. A page with fewer ink pixels than INK_MIN_PIXELS (about a
# full stop at 150 dpi, doubled) has nothing tesseract could read: a blank or near-blank page.
INK_LEVEL = 128
INK_MIN_PIXELS = 24


class OcrUnavailable(RuntimeError):
    """Tesseract, or its data for the language asked for, is not installed."""


def text_layer_is_poor(text: str, image_area: float) -> bool:
    """Whether a page's text layer is too thin or too garbled to trust, so OCR should replace it."""
    letters = sum(ch.isalpha() for ch in text)
    if letters < MIN_LETTERS:
        return True
    if image_area >= SCAN_IMAGE_AREA and letters < SCAN_MAX_LETTERS:
        return True
    visible = [ch for ch in text if not ch.isspace()]
    garbage = sum(ch == "\ufffd" or unicodedata.category(ch) in ("Co", "Cc", "Cn") for ch in visible)
    return garbage / len(visible) > MAX_GARBAGE_RATIO


def wants_ocr(mode: OcrMode, text: str, image_area: float, has_image: bool) -> bool:
    if not has_image or mode == "never":
        return False
    return mode == "always" or text_layer_is_poor(text, image_area)


def is_blank(image: Image.Image) -> bool:
    """Whether a page image has no ink worth OCR: a grey-level histogram, a few ms per page."""
    histogram = image.convert("L").histogram()
    return sum(histogram[:INK_LEVEL]) < INK_MIN_PIXELS


def ocr_workers(configured: int) -> int:
    """``configured`` tesseract processes, or one per core this process may use when 0."""
    if configured > 0:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class OcrPool:
    """Runs single-threaded tesseract processes side by side, ``workers`` at a time.

    Threads only wait on the subprocesses, so a thread pool gives true parallelism here.
    """

    def __init__(self, workers: int, lang: str) -> None:
        self.workers = workers
        self.lang = lang
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pagehop-ocr")

    def submit(self, image_path: Path, timeout_s: float) -> Future[PageText]:
        return self._executor.submit(ocr_image_file, image_path, lang=self.lang, timeout_s=timeout_s)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> OcrPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tesseract_path() -> str | None:
    return shutil.which("tesseract")


def ocr_image_file(image_path: Path, *, lang: str = "eng", timeout_s: float = 300.0) -> PageText:
    """The text tesseract reads in an image file, with its word boxes (TSV output: one run gives both);
    OcrUnavailable when tesseract cannot run at all."""
    exe = tesseract_path()
    if exe is None:
        raise OcrUnavailable("tesseract is not installed (apt-get install tesseract-ocr): pages get no OCR")
    result = subprocess.run(
        [exe, str(image_path), "stdout", "--psm", "6", "-l", lang, "tsv"],
        capture_output=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        if "Failed loading language" in message or "traineddata" in message:
            raise OcrUnavailable(f"tesseract has no language data for {lang!r} (install tesseract-ocr-{lang})")
        raise RuntimeError(f"tesseract failed on {image_path.name}: {message[-300:]}")
    return tesseract_tsv_text(result.stdout.decode("utf-8", "replace"))
