"""Records shared by every area: documents, pages, chunks, and the hits retrieval returns.

Pages are 1-based, as people and benchmarks (MMLongBench-Doc) count them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

DocKind = Literal["pdf", "image", "text"]
TextSource = Literal["pdf", "ocr", "text", "none"]
Channel = Literal["page", "text", "graph"]
# (x0, y0, x1, y1) relative to the page as rendered: 0..1, origin top-left, so it fits any DPI.
Box = tuple[float, float, float, float]


class Document(BaseModel):
    doc_id: str = Field(description="content hash of the source file (sha256, first 16 hex digits)")
    source_path: str
    title: str
    kind: DocKind
    num_pages: int
    size_bytes: int
    ingested_at: float = Field(description="unix seconds")


class Page(BaseModel):
    doc_id: str
    page: int = Field(ge=1)
    text: str = ""
    text_source: TextSource = "none"
    image_path: str | None = Field(
        None,
        description="relative to the workspace; a PDF page's file may not exist until first asked for: "
        "read it through Workspace.page_image, which draws it",
    )
    thumbnail_path: str | None = None
    width: int | None = Field(None, description="of the page image in pixels (known before it is drawn)")
    height: int | None = None


class Chunk(BaseModel):
    chunk_id: str
    doc_id: str
    page_start: int = Field(ge=1)
    page_end: int = Field(ge=1)
    char_start: int = Field(ge=0, description="offset into the first page's text")
    char_end: int = Field(ge=0, description="offset into the last page's text, exclusive")
    text: str
    title: str = ""
    context: str = Field("", description="the headings the chunk sits under (document, page, section), for search")
    boxes: list[Box] = Field(
        default_factory=list,
        description="where the text sits on its page, one box per line (page-relative 0..1, origin top-left); "
        "empty for plain-text sources and chunks ingested before boxes were kept",
    )


class Hit(BaseModel):
    """One retrieved piece of evidence, always pointing back to a document page."""

    channel: Channel
    doc_id: str
    page: int
    score: float
    chunk_id: str | None = None
    text: str = ""
    title: str = ""
