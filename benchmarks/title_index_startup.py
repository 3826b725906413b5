"""Start-up cost of the title channel: the first title-index build of a process on a built workspace.

    .venv/bin/python benchmarks/title_index_startup.py /work/ws/names-2wiki

The index is built from every ready document's name (see ``Workspace.document_names``). A catalog from
before names were kept derives them once from the first pages and stores them; run the command twice
to see that first run, then what every later process pays. Prints wall and CPU time of the build only
(opening the workspace and loading the text index are not counted). It writes the names into the
catalog, so run it on a copy of a workspace you want to keep as it was.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from pagehop.assemble import open_retriever
from pagehop.config import load_settings
from pagehop.workspace import Workspace


def _unnamed(root: Path) -> tuple[int, int]:
    """(ready documents, those without a stored name); 0 of them named when the column is absent."""
    with closing(sqlite3.connect(root / "catalog.sqlite")) as db:
        ready = db.execute("SELECT COUNT(*) FROM documents WHERE status = 'ready'").fetchone()[0]
        columns = {row[1] for row in db.execute("PRAGMA table_info(documents)")}
        if "name" not in columns:
            return ready, ready
        unnamed = db.execute("SELECT COUNT(*) FROM documents WHERE status = 'ready' AND name IS NULL").fetchone()[0]
        return ready, unnamed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("workspace", type=Path)
    args = parser.parse_args()
    ready, unnamed = _unnamed(args.workspace)
    with Workspace.open(load_settings(None, workspace=args.workspace)) as workspace:
        retriever = open_retriever(workspace)
        wall, cpu = time.perf_counter(), time.process_time()
        retriever.named_documents("", 1)  # builds the title index, as the first search does
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print("| ready documents | without a stored name before | first title-index build wall s | CPU s |")
    print("|---:|---:|---:|---:|")
    print(f"| {ready} | {unnamed} | {wall:.3f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
