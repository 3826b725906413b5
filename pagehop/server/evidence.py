"""Evidence a person can check: page images with the cited chunk's lines highlighted, and graph
paths drawn as small diagrams. Shared by the JSON API and the chat UI, so both show the same thing.
"""

from __future__ import annotations

import hashlib
import html
import uuid
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from pagehop.graph.base import GraphPath
from pagehop.server.security import ApiError
from pagehop.workspace import Workspace

HIGHLIGHT_FILL = (255, 214, 0, 96)  # translucent yellow: the text stays readable under it
HIGHLIGHT_EDGE = (230, 81, 0, 160)
HIGHLIGHT_PAD = 0.003  # page-relative margin around each line box


def highlighted_page_image(workspace: Workspace, doc_id: str, page_number: int, chunk_id: str) -> Path:
    """The page image with ``chunk_id``'s line boxes drawn over it (cached beside the page image).

    ApiError 404 when the page has no image or the chunk is not on that page. A chunk without
    boxes (plain text, or ingested before boxes were kept) gets the plain page image.
    """
    source = workspace.page_image(doc_id, page_number)
    if source is None:
        raise ApiError(404, f"no image for page {page_number} of {doc_id!r}")
    chunk = workspace.get_chunk(chunk_id)
    if chunk is None or chunk.doc_id != doc_id or not chunk.page_start <= page_number <= chunk.page_end:
        raise ApiError(404, f"chunk {chunk_id!r} is not on page {page_number} of {doc_id!r}")
    if not chunk.boxes:
        return source
    # Under the document's page folder, so deleting the document removes its highlights too.
    target = source.with_name(f"{page_number}.hl-{hashlib.sha256(chunk_id.encode()).hexdigest()[:16]}.png")
    if not target.is_file():
        partial = target.with_name(f".{uuid.uuid4().hex}.tmp.png")  # one per writer: requests may race
        with Image.open(source) as base:
            _draw_boxes(base.convert("RGBA"), chunk.boxes).convert("RGB").save(partial)
        partial.replace(target)  # a reader never sees half a file
    return target


def _draw_boxes(image: Image.Image, boxes: list[tuple[float, float, float, float]]) -> Image.Image:
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    width, height = image.size
    edge = max(1, round(min(width, height) / 1200))  # a hairline at screen size: the text stays legible
    for x0, y0, x1, y1 in boxes:
        rectangle = (
            round((x0 - HIGHLIGHT_PAD) * width),
            round((y0 - HIGHLIGHT_PAD) * height),
            round((x1 + HIGHLIGHT_PAD) * width),
            round((y1 + HIGHLIGHT_PAD) * height),
        )
        draw.rectangle(rectangle, fill=HIGHLIGHT_FILL, outline=HIGHLIGHT_EDGE, width=edge)
    return Image.alpha_composite(image, overlay)


# -- graph paths --------------------------------------------------------------------------------

NODE_WIDTH, NODE_HEIGHT, GAP = 150, 34, 110


def graph_path_svg(rendered: str, links: Sequence[tuple[str, str]] = ()) -> str:
    """An inline SVG of one path: entities as boxes left to right, relations as labelled arrows,
    and ``links`` ((label, url) of the path's documents) underneath."""
    names, relations = GraphPath.parse_rendered(rendered)
    width = len(names) * NODE_WIDTH + (len(names) - 1) * GAP + 20
    height = NODE_HEIGHT + 60 + 18 * len(links)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pagehop-graph-path" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{html.escape(rendered)}">',
    ]
    top = 24
    for index, name in enumerate(names):
        x = 10 + index * (NODE_WIDTH + GAP)
        label = name if len(name) <= 22 else name[:21] + "…"
        parts.append(
            f'<g class="pagehop-node"><title>{html.escape(name)}</title>'
            f'<rect x="{x}" y="{top}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="8" fill="#e8f0fe" '
            f'stroke="#1a73e8" stroke-width="1.5"/><text x="{x + NODE_WIDTH / 2}" y="{top + NODE_HEIGHT / 2 + 5}" '
            f'text-anchor="middle" font-size="13" font-family="sans-serif" fill="#111">{html.escape(label)}</text></g>'
        )
        if index < len(relations):
            x0, x1 = x + NODE_WIDTH, x + NODE_WIDTH + GAP
            y = top + NODE_HEIGHT / 2
            relation = relations[index]
            reverse = relation.startswith("^")  # the stored relation points from the right entity to the left
            start, end = (x1, x0 + 2) if reverse else (x0, x1 - 2)
            label = relation.lstrip("^").replace("_", " ").lower()
            # The arrowhead is a plain polygon: chat sanitisers drop SVG <marker> definitions.
            back = 8 if end > start else -8
            parts.append(
                f'<g class="pagehop-edge"><line x1="{start}" y1="{y}" x2="{end}" y2="{y}" stroke="#555" '
                f'stroke-width="1.5"/><polygon points="{end},{y} {end - back},{y - 5} {end - back},{y + 5}" '
                f'fill="#555"/><text x="{(x0 + x1) / 2}" y="{y - 8}" text-anchor="middle" font-size="11" '
                f'font-family="sans-serif" fill="#333">{html.escape(label)}</text></g>'
            )
    for row, (label, url) in enumerate(links):
        y = top + NODE_HEIGHT + 26 + 18 * row
        parts.append(
            f'<a href="{html.escape(url)}" target="_blank"><text x="10" y="{y}" font-size="12" '
            f'font-family="sans-serif" fill="#1a73e8" text-decoration="underline">{html.escape(label)}</text></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
