"""A long PDF end to end: chunks carry their headings into the catalog and the text index, and a
question about a table's heading finds the table's page even where the table's chunk lacks the words."""

from __future__ import annotations

import shutil
from pathlib import Path

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.testing.pdf import write_pdf
from pagehop.workspace import Workspace

COVER = "Harbor Lane Annual Review 2021\nPrepared for the board of directors."
STAFF = "\n".join(
    [
        "Staff turnover by office",
        *(f"Paragraph {i} discusses hiring plans and training budgets for the year ahead." for i in range(6)),
        "Table 2: Leavers per 100 employees",
        "Office 2019 2020 2021",
        *(f"Site{i} {4 + i % 5} {6 + i % 4} {3 + i % 6}" for i in range(20)),
    ]
)
OTHER = "Office furniture was replaced in the spring; the cafeteria menu changed twice."


def test_table_chunk_carries_its_heading_through_the_catalog_and_is_found_by_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "review.pdf", [COVER, STAFF, OTHER])
    settings = Settings(
        workspace=tmp_path / "ws",
        ingest={"dpi": 50, "thumbnail_px": 64, "chunk_chars": 300, "chunk_overlap": 30, "heading_context": True},
    )
    with Workspace.open(settings) as workspace:
        report = ingest(workspace, [docs], ocr="never", progress=False)
        assert not report.failed
        doc = workspace.find_document(docs / "review.pdf")
        assert doc is not None
        table = next(c for c in workspace.get_chunks(doc.doc_id) if "Site19" in c.text)
        assert "turnover" not in table.text.lower()  # the heading is far above, in another chunk
        assert table.context.startswith("Harbor Lane Annual Review 2021 | Staff turnover by office")
        lexical = [h.chunk_id for h in workspace.text_index.search_bm25("staff turnover", 100)]
        assert table.chunk_id in lexical
        assert workspace.text_index.search("staff turnover per office", 1)[0].page == 2

    shutil.rmtree(settings.workspace / "text_index")  # rebuilt from the catalog: the context comes back with it
    with Workspace.open(settings) as workspace:
        assert table.chunk_id in [h.chunk_id for h in workspace.text_index.search_bm25("staff turnover", 100)]
