"""Checks on highlighted page images, for tests: where does a highlighted image differ from the plain one?"""

from __future__ import annotations

import io

import numpy as np

from pagehop.schema import Box

MARGIN = 0.01  # page-relative slack around each box: the drawn outline sits just outside it


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def highlight_fit(plain: bytes, highlighted: bytes, boxes: list[Box]) -> tuple[float, int]:
    """(share of the pixels inside ``boxes`` that changed, number of changed pixels outside them)."""
    before, after = pixels(plain), pixels(highlighted)
    if before.shape != after.shape:
        raise ValueError(f"the images differ in size: {before.shape} vs {after.shape}")
    changed = np.abs(after - before).sum(axis=2) > 30
    height, width = changed.shape
    inside = np.zeros_like(changed)
    for x0, y0, x1, y1 in boxes:
        rows = slice(int((y0 - MARGIN) * height), int((y1 + MARGIN) * height) + 1)
        columns = slice(int((x0 - MARGIN) * width), int((x1 + MARGIN) * width) + 1)
        inside[max(rows.start, 0) : rows.stop, max(columns.start, 0) : columns.stop] = True
    return float(changed[inside].mean()) if inside.any() else 0.0, int(changed[~inside].sum())
