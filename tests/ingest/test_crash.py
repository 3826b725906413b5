"""Crash safety, tested by really killing an ingesting process and running the job again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pagehop
from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.ingest.files import content_doc_id
from pagehop.models import text_embedder_id
from pagehop.testing.pdf import write_pdf
from pagehop.workspace import Workspace

CRASH_EXIT = 17

# Ingests a folder with a hook that kills the process (no clean-up, no finally blocks,
# like a power cut or the OOM killer) when the second document reaches it.
CRASHING_RUN = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from pagehop.config import Settings
    from pagehop.ingest import ingest
    from pagehop.workspace import Workspace

    class DieOnSecondDocument:
        seen = 0
        def add_document(self, doc, pages, chunks):
            self.seen += 1
            if self.seen == 2:
                os._exit(CRASH_EXIT)
        def delete_document(self, doc_id):
            pass

    settings = Settings(workspace=Path(sys.argv[1]), ingest={"dpi": 50})
    ws = Workspace.open(settings, hooks=[DieOnSecondDocument()])
    ingest(ws, [Path(sys.argv[2])], ocr="never", progress=False)
    """
).replace("CRASH_EXIT", str(CRASH_EXIT))


def catalog_rows(workspace_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(workspace_dir / "catalog.sqlite") as db:
        return sorted(db.execute("SELECT source_path, status FROM documents").fetchall())


def test_killed_ingest_is_cleaned_up_and_finished_without_duplicates(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = {"a.pdf": "Alpha giraffes graze.", "b.pdf": "Bravo zebras run.", "c.pdf": "Charlie lions rest."}
    for name, text in texts.items():
        write_pdf(docs / name, [text, f"{text} Second page."])
    workspace_dir = tmp_path / "ws"
    script = tmp_path / "crashing_run.py"
    script.write_text(CRASHING_RUN)
    env = {**os.environ, "PYTHONPATH": str(Path(pagehop.__file__).resolve().parents[1])}

    run = subprocess.run(
        [sys.executable, str(script), str(workspace_dir), str(docs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == CRASH_EXIT, run.stderr[-2000:]
    # The crash really happened mid-document: b.pdf was pending with its page images written.
    assert catalog_rows(workspace_dir) == [(str(docs / "a.pdf"), "ready"), (str(docs / "b.pdf"), "pending")]
    assert len(list((workspace_dir / "pages").iterdir())) == 2

    workspace = Workspace.open(Settings(workspace=workspace_dir, ingest={"dpi": 50}))
    assert catalog_rows(workspace_dir) == [(str(docs / "a.pdf"), "ready")]  # the pending leftover is gone
    a_id = workspace.list_documents()[0].doc_id
    assert {p.name for p in workspace.pages_dir.iterdir()} == {a_id}
    # a.pdf was committed, but its chunks had not reached the saved text index: rebuilt from the catalog.
    assert workspace.text_index.doc_ids() == {a_id}

    report = ingest(workspace, [docs], ocr="never", progress=False)

    assert [Path(d.path).name for d in report.ingested] == ["b.pdf", "c.pdf"]
    assert [Path(p).name for p, _ in report.skipped] == ["a.pdf"]
    ready = workspace.list_documents()
    assert len(ready) == 3 and all(status == "ready" for _, status in catalog_rows(workspace_dir))
    assert {p.name for p in workspace.pages_dir.iterdir()} == {d.doc_id for d in ready}
    catalog_chunks = [c.chunk_id for d in ready for c in workspace.get_chunks(d.doc_id)]
    index = workspace.text_index
    assert len(index) == len(catalog_chunks) == len(set(catalog_chunks))
    (hit,) = index.search("zebras", k=1)
    assert hit.doc_id == workspace.find_document(docs / "b.pdf").doc_id  # type: ignore[union-attr]
    workspace.close()


# Starts a document and keeps writing it (holding the writer lock) until told to stop.
SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pagehop.config import Settings
    from pagehop.schema import Document
    from pagehop.workspace import Workspace

    ws = Workspace.open(Settings(workspace=Path(sys.argv[1])))
    with ws.writer_lock():
        doc = Document(doc_id="inprogress000001", source_path="/x.pdf", title="x", kind="pdf",
                       num_pages=1, size_bytes=1, ingested_at=time.time())
        ws.begin_document(doc)
        print("writing", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """
)


def test_recovery_leaves_another_live_writers_document_alone(tmp_path: Path) -> None:
    script = tmp_path / "slow_writer.py"
    script.write_text(SLOW_WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(pagehop.__file__).resolve().parents[1])}
    writer = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "ws")],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
        workspace = Workspace.open(Settings(workspace=tmp_path / "ws"))
        assert workspace.status_of("inprogress000001") == "pending"  # live work, not a leftover
    finally:
        writer.kill()  # dies holding the lock: the OS releases it
        writer.wait(timeout=30)
    assert workspace.recover() == ["inprogress000001"]
    assert workspace.status_of("inprogress000001") is None
    workspace.close()


def test_delete_in_a_fresh_process_removes_the_documents_rows_from_the_saved_text_index(tmp_path: Path) -> None:
    """`pagehop ingest --delete` never loads the text index; the deleted text must still leave the file."""
    from pagehop.retrieval.text_index import HybridTextIndex

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keep.txt").write_text("Okapis live in the Ituri forest.")
    (docs / "drop.txt").write_text("Narwhals swim in the Arctic.")
    settings = Settings(workspace=tmp_path / "ws")
    with Workspace.open(settings) as workspace:
        ingest(workspace, [docs], progress=False)
        drop_id = workspace.find_document(docs / "drop.txt").doc_id  # type: ignore[union-attr]

    with Workspace.open(settings) as fresh:  # as the CLI opens it: the text index is not loaded
        assert fresh.delete_document(drop_id)

    saved = HybridTextIndex(tmp_path / "ws" / "text_index", embedder=text_embedder_id(settings))
    assert saved.doc_ids() == {content_doc_id(docs / "keep.txt")}
    assert all("Narwhals" not in hit.text for hit in saved.search_bm25("Narwhals Arctic", k=5))


def test_a_text_index_temp_file_left_by_a_killed_save_is_removed_by_the_next_save(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Pangolins eat ants.")
    stale = tmp_path / "ws" / "text_index" / ".index.npz.4242.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half an index")
    with Workspace.open(Settings(workspace=tmp_path / "ws")) as workspace:
        ingest(workspace, [docs], progress=False)
    assert sorted(p.name for p in stale.parent.iterdir()) == ["index.npz"]
