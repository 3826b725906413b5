"""Fixtures for ingestion tests: a fresh workspace, and real files written by the tests themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from pagehop.config import Settings
from pagehop.workspace import Workspace


def text_image(text: str, size: tuple[int, int] = (900, 160), font_px: int = 48) -> Image.Image:
    """Black text on white, large enough for tesseract to read reliably."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text(
        (20, (size[1] - font_px) // 2), text, fill="black", font=ImageFont.load_default(size=font_px)
    )
    return image


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Low DPI keeps rendering and PNG writing fast; text-layer content does not depend on it.
    return Settings(workspace=tmp_path / "ws", ingest={"dpi": 50, "thumbnail_px": 64})


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace.open(settings)
    yield ws
    ws.close()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    return folder
