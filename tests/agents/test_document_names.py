"""The title channel's document names live in the catalog: derived once (at ingest, or on first use for a
catalog from before names were kept), then served without reading page text; a new version of a
document brings its own name and a deleted one leaves none behind."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.config import Settings
from pagehop.ingest import delete, ingest
from pagehop.workspace import Workspace

FILES = {
    # Plain text that opens with a heading line, as passage collections do: the title is the file's stem.
    "kestrel.txt": "Kestrel Optics\n\nKestrel Optics makes lenses for lighthouses on the northern coast.\n",
    "quayside.txt": "Quayside Automation\n\nQuayside Automation builds cranes that unload ships at night.\n",
    # No heading: the first line is a sentence, so the name is the catalog title.
    "harbor.txt": "Harbor Lane Robotics was founded by Ilinca Dorne in a former fish market.\n",
}


def _settings(tmp_path: Path) -> Settings:
    return Settings(workspace=tmp_path / "ws", ingest={"dpi": 50, "thumbnail_px": 64})


def _ingested(tmp_path: Path) -> tuple[Settings, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in FILES.items():
        (docs / name).write_text(text)
    settings = _settings(tmp_path)
    with Workspace.open(settings) as workspace:
        report = ingest(workspace, [docs], ocr="never", progress=False)
        assert report.failed == [] and len(report.ingested) == len(FILES)
    return settings, docs


def _catalog(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(settings.workspace / "catalog.sqlite")) as db, db:
        return db.execute(sql).fetchall()


def _blank_page_text(settings: Settings) -> None:
    """Take away what names are derived from: a name served afterwards came from the catalog."""
    _catalog(settings, "UPDATE pages SET text = ''")


def _names_by_source(workspace: Workspace) -> dict[str, str]:
    sources = {doc.doc_id: Path(doc.source_path).name for doc in workspace.list_documents()}
    return {sources[doc_id]: name for doc_id, name in workspace.document_names()}


def test_names_are_stored_at_ingest_and_served_after_reopen_without_page_text(tmp_path: Path) -> None:
    settings, _ = _ingested(tmp_path)
    assert sorted(_catalog(settings, "SELECT title, name FROM documents")) == [
        ("harbor", "harbor"),
        ("kestrel", "Kestrel Optics"),
        ("quayside", "Quayside Automation"),
    ]
    _blank_page_text(settings)
    with Workspace.open(settings) as workspace:
        assert _names_by_source(workspace) == {
            "kestrel.txt": "Kestrel Optics",
            "quayside.txt": "Quayside Automation",
            "harbor.txt": "harbor",
        }
        retriever = WorkspaceRetriever.from_workspace(workspace)
        [named] = retriever.named_documents("Who bought Kestrel Optics?", 5)
        assert named.title == "Kestrel Optics"
        assert workspace.document_name(named.doc_id) == "Kestrel Optics"
        assert workspace.document_name("no-such-document") == ""


def test_a_catalog_from_before_names_fills_them_once(tmp_path: Path) -> None:
    settings, _ = _ingested(tmp_path)
    _catalog(settings, "ALTER TABLE documents DROP COLUMN name")  # the catalog as an older pagehop left it
    with Workspace.open(settings) as workspace:
        assert _catalog(settings, "SELECT COUNT(*) FROM documents WHERE name IS NULL") == [(3,)]
        retriever = WorkspaceRetriever.from_workspace(workspace)
        assert [hit.title for hit in retriever.named_documents("Who runs Quayside Automation?", 5)] == [
            "Quayside Automation"
        ]
        filled = _catalog(settings, "SELECT name FROM documents ORDER BY name")
    assert None not in {name for (name,) in filled}
    assert ("Kestrel Optics",) in filled and ("Quayside Automation",) in filled
    _blank_page_text(settings)
    with Workspace.open(settings) as workspace:  # a later process: the stored names, not re-derived
        assert _names_by_source(workspace)["kestrel.txt"] == "Kestrel Optics"
        assert _catalog(settings, "SELECT name FROM documents ORDER BY name") == filled


def test_a_replaced_document_gets_its_new_name_and_a_deleted_one_leaves_none(tmp_path: Path) -> None:
    settings, docs = _ingested(tmp_path)
    with Workspace.open(settings) as workspace:
        retriever = WorkspaceRetriever.from_workspace(workspace)
        assert retriever.named_documents("Who bought Kestrel Optics?", 5)
        (docs / "kestrel.txt").write_text("Kestrel Lenses\n\nKestrel Lenses grinds glass for harbor lamps.\n")
        report = ingest(workspace, [docs / "kestrel.txt"], ocr="never", progress=False)
        assert report.failed == [] and len(report.ingested) == 1
        assert _names_by_source(workspace)["kestrel.txt"] == "Kestrel Lenses"
        assert retriever.named_documents("Who bought Kestrel Optics?", 5) == []
        [named] = retriever.named_documents("Who bought Kestrel Lenses?", 5)
        assert workspace.document_name(named.doc_id) == "Kestrel Lenses"
        assert _catalog(settings, "SELECT COUNT(*) FROM documents WHERE name = 'Kestrel Optics'") == [(0,)]
        delete(workspace, docs / "quayside.txt")
        assert "quayside.txt" not in _names_by_source(workspace)
        assert retriever.named_documents("Who runs Quayside Automation?", 5) == []
    assert _catalog(settings, "SELECT COUNT(*) FROM documents WHERE name = 'Quayside Automation'") == [(0,)]


def test_names_stored_by_an_older_rule_are_derived_again_once(tmp_path: Path) -> None:
    """An older pagehop stopped a name at the period of an initial; opening its catalog re-derives names."""
    settings, docs = _ingested(tmp_path)
    (docs / "rogell.txt").write_text("Albert S. Rogell\n\nAlbert S. Rogell directed films about lighthouses.\n")
    with Workspace.open(settings) as workspace:
        assert ingest(workspace, [docs / "rogell.txt"], ocr="never", progress=False).failed == []
        assert _names_by_source(workspace)["rogell.txt"] == "Albert S. Rogell"
    # The catalog as the older rule left it: the file's stem stored as the name, revision 0.
    _catalog(settings, "UPDATE documents SET name = title WHERE title = 'rogell'")
    _catalog(settings, "PRAGMA user_version = 0")
    with Workspace.open(settings) as workspace:
        assert _names_by_source(workspace)["rogell.txt"] == "Albert S. Rogell"
        [named] = WorkspaceRetriever.from_workspace(workspace).named_documents("Where was Albert S. Rogell born?", 5)
        assert named.title == "Albert S. Rogell"
    assert _catalog(settings, "PRAGMA user_version") == [(1,)]
    _blank_page_text(settings)
    with Workspace.open(settings) as workspace:  # derived once: a later open serves the stored name
        assert _names_by_source(workspace)["rogell.txt"] == "Albert S. Rogell"
