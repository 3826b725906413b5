"""Re-cut an ingested workspace's chunks with the current chunker, without rendering or OCR again.

For measuring a chunking change on a corpus whose ingestion is slow (MMLongBench-Doc: 896 pages,
some OCR'd): the page texts in the catalog are what a fresh ingest would extract, so chunking them
again gives the chunks a fresh ingest would make, except that their line boxes (highlighting only)
are left empty. The text index is rebuilt from the new chunks. Work on a copy:

    cp -a /work/ws/mmlb-base /work/ws/mmlb-after
    .venv/bin/python benchmarks/rechunk_workspace.py /work/ws/mmlb-after --heading-context
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from pagehop.config import Settings
from pagehop.retrieval.chunking import chunk_pages
from pagehop.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--heading-context", action="store_true", help="chunks carry their headings (ingest setting)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    settings = Settings(workspace=args.workspace)
    with Workspace.open(settings) as workspace:
        total = 0
        for doc_id in workspace.ready_doc_ids():
            doc = workspace.get_document(doc_id)
            assert doc is not None
            pages = workspace.get_pages(doc_id)
            chunks = chunk_pages(
                doc_id,
                doc.title,
                [(page.page, page.text) for page in pages],
                chunk_chars=settings.ingest.chunk_chars,
                chunk_overlap=settings.ingest.chunk_overlap,
                with_context=args.heading_context,
            )
            with workspace._transaction() as db:  # a benchmark tool: the catalog has no public re-chunk call
                db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                db.executemany(
                    "INSERT INTO chunks (chunk_id, doc_id, seq, page_start, page_end, char_start, char_end, text, "
                    "title, boxes, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                    [
                        (
                            *(c.chunk_id, c.doc_id, seq, c.page_start, c.page_end, c.char_start, c.char_end),
                            *(c.text, c.title, c.context or None),
                        )
                        for seq, c in enumerate(chunks)
                    ],
                )
            total += len(chunks)
    shutil.rmtree(args.workspace / "text_index", ignore_errors=True)
    with Workspace.open(settings) as workspace:  # opening rebuilds the text index from the catalog
        indexed = len(workspace.text_index)
    print(f"{total} chunks written, {indexed} indexed, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
