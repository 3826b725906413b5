"""Ingesting a group of documents together stores exactly what ingesting them one at a time stores:
the same chunks, the same text vectors (within float tolerance), the same graph facts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pagehop.assemble import open_workspace
from pagehop.config import Settings
from pagehop.graph.extraction import SpacyExtractor
from pagehop.graph.indexer import GraphIndexer
from pagehop.graph.networkx_store import NetworkxGraphStore
from pagehop.ingest import IngestReport, ingest, pipeline
from pagehop.testing.multihop import FILM_PASSAGES
from pagehop.testing.pdf import write_pdf
from pagehop.workspace import Workspace


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    for i, (title, text) in enumerate(FILM_PASSAGES.items()):
        (folder / f"{i}.txt").write_text(f"{title}\n\n{text}\n")
    write_pdf(
        folder / "report.pdf",
        ["Erik Sandberg founded Nordic Pictures in Gothenburg in 1961.", "Pierre Curie taught in Paris."],
        title="Studio history",
    )


def graph_facts(workspace: Workspace) -> dict[str, Any]:
    store = workspace.graph_store
    assert isinstance(store, NetworkxGraphStore)
    graph = store._graph
    return {
        "entities": {
            node: (data["name"], data["type"], sorted(data["aliases"])) for node, data in graph.nodes(data=True)
        },
        "relations": {(s, t, k, tuple(sorted(d["evidence"]))) for s, t, k, d in graph.edges(keys=True, data=True)},
        "mentions": {(e, c) for e, by_chunk in store._mentions.items() for c in by_chunk},
    }


Stored = tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]  # chunks, text vectors, graph facts


def stored(workspace: Workspace) -> Stored:
    chunks = {c.chunk_id: c.model_dump() for d in workspace.list_documents() for c in workspace.get_chunks(d.doc_id)}
    index = workspace.text_index
    assert index._embeddings is not None
    vectors = {c.chunk_id: index._embeddings[row] for row, c in enumerate(index._chunks)}
    return chunks, vectors, graph_facts(workspace)


def ingest_into(folder: Path, corpus: Path) -> Stored:
    settings = Settings(workspace=folder, ingest={"dpi": 50, "thumbnail_px": 64}, graph={"extractor": "spacy"})
    workspace = open_workspace(settings)
    report = ingest(workspace, [corpus], ocr="never", progress=False)
    assert report.ok and len(report.ingested) == len(FILM_PASSAGES) + 1
    result = stored(workspace)
    workspace.close()
    return result


def assert_same_store(got: Stored, expected: Stored) -> None:
    """Two ``stored`` results hold the same chunks and graph, and text vectors within float noise."""
    assert got[0] == expected[0] and got[2] == expected[2]
    assert got[1].keys() == expected[1].keys()
    for chunk_id, vector in got[1].items():
        np.testing.assert_allclose(vector, expected[1][chunk_id], atol=1e-5)


def record_group_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of documents in each group the graph indexer is handed, in order (groups close on size
    only, not on a slow machine's clock)."""
    monkeypatch.setattr(pipeline, "GROUP_MAX_WAIT_S", float("inf"))
    group_sizes: list[int] = []
    add_documents, start_documents = GraphIndexer.add_documents, GraphIndexer.start_documents

    def recording(self: GraphIndexer, documents: Sequence[Any]) -> None:
        group_sizes.append(len(documents))
        add_documents(self, documents)

    def recording_start(self: GraphIndexer, documents: Sequence[Any]) -> Any:
        finish = start_documents(self, documents)
        if finish is not None:  # started ahead: add_documents is not called for these
            group_sizes.append(len(documents))
        return finish

    monkeypatch.setattr(GraphIndexer, "add_documents", recording)
    monkeypatch.setattr(GraphIndexer, "start_documents", recording_start)
    return group_sizes


def record_spawns(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry each time ingest asks the extractor to start its parsing process early."""
    spawns: list[int] = []
    prepare_ahead = SpacyExtractor.prepare_ahead
    monkeypatch.setattr(SpacyExtractor, "prepare_ahead", lambda self: spawns.append(1) or prepare_ahead(self))
    return spawns


def test_a_group_stores_what_one_document_at_a_time_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "docs"
    write_corpus(corpus)
    group_sizes = record_group_sizes(monkeypatch)
    parsed_ahead: list[int] = []
    result_ahead = SpacyExtractor.result_ahead

    def recording(self: SpacyExtractor, future: Any) -> Any:
        parsed_ahead.append(1)
        return result_ahead(self, future)

    monkeypatch.setattr(SpacyExtractor, "result_ahead", recording)
    spawns = record_spawns(monkeypatch)
    together = ingest_into(tmp_path / "together", corpus)
    assert group_sizes == [len(FILM_PASSAGES) + 1] and not parsed_ahead  # really one group, parsed here
    assert not spawns  # a small ingest never fills a group, so it never starts the parsing process
    group_sizes.clear()
    # A group closes full at every document: each is started ahead (parsed in the spawned process while the
    # previous one is resolved and stored), one at a time.
    monkeypatch.setattr(pipeline, "TEXT_BATCH", 1)
    alone = ingest_into(tmp_path / "alone", corpus)
    assert group_sizes == [1] * (len(FILM_PASSAGES) + 1) and len(parsed_ahead) == len(FILM_PASSAGES) + 1

    assert_same_store(together, alone)
    assert len(together[0]) >= len(FILM_PASSAGES) + 2 and together[2]["relations"]


def ingest_with_one_bad_file(tmp_path: Path, corpus: Path, why_it_fails: str) -> tuple[Workspace, IngestReport]:
    """Ingest ``corpus`` with the spaCy graph; exactly its file 4.txt fails, for ``why_it_fails``."""
    settings = Settings(workspace=tmp_path / "ws", ingest={"dpi": 50}, graph={"extractor": "spacy"})
    workspace = open_workspace(settings)
    report = ingest(workspace, [corpus], ocr="never", progress=False)
    ((path, why),) = report.failed
    assert path.endswith("4.txt") and why == why_it_fails
    assert len(report.ingested) == len(FILM_PASSAGES)
    return workspace, report


def test_a_failing_document_in_a_group_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's batched call fails; each document is then finished alone, and only the bad one fails."""
    corpus = tmp_path / "docs"
    write_corpus(corpus)
    add_documents = GraphIndexer.add_documents

    def fails_on_curie(self: GraphIndexer, documents: Sequence[Any]) -> None:
        if any("Warsaw" in c.text for _, _, chunks in documents for c in chunks):
            raise RuntimeError("extraction failed")
        add_documents(self, documents)

    monkeypatch.setattr(GraphIndexer, "add_documents", fails_on_curie)
    workspace, _ = ingest_with_one_bad_file(tmp_path, corpus, "RuntimeError: extraction failed")

    names = {Path(d.source_path).name for d in workspace.list_documents()}
    assert "4.txt" not in names and "report.pdf" in names
    assert not any("warsaw" in data["name"].lower() for _, data in workspace.graph_store._graph.nodes(data=True))  # type: ignore[union-attr]
    assert {c.doc_id for c in workspace.text_index._chunks} == set(workspace.ready_doc_ids())
    workspace.close()


def test_a_failing_document_in_a_started_group_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups parsed ahead in the spawned process: the group holding the bad file is finished one by one."""
    corpus = tmp_path / "docs"
    write_corpus(corpus)
    store_extracted = GraphIndexer.store_extracted

    def fails_on_curie(self: GraphIndexer, extracted: Any) -> Any:
        if any(e.name == "Warsaw" for e in extracted.entities):
            raise RuntimeError("resolution failed")
        return store_extracted(self, extracted)

    monkeypatch.setattr(GraphIndexer, "store_extracted", fails_on_curie)
    monkeypatch.setattr(pipeline, "TEXT_BATCH", 2)  # groups of two short passages, each started ahead
    monkeypatch.setattr(pipeline, "GROUP_MAX_WAIT_S", float("inf"))
    workspace, report = ingest_with_one_bad_file(tmp_path, corpus, "RuntimeError: resolution failed")

    assert {c.doc_id for c in workspace.text_index._chunks} == set(workspace.ready_doc_ids())
    assert set(workspace.ready_doc_ids()) == {d.doc_id for d in report.ingested}
    workspace.close()


CURIE = "Marie Curie was born in Warsaw.\n"


def write_small_corpus(folder: Path, more: dict[str, str]) -> Path:
    """Two one-line text files, a.txt and b.txt, then ``more`` (name -> text), in that order."""
    folder.mkdir()
    texts = {"a.txt": "Greta Lindqvist was a Swedish actress.\n", "b.txt": "Nordic Pictures is a film studio.\n"}
    for name, text in {**texts, **more}.items():
        (folder / name).write_text(text)
    return folder


def test_a_large_document_is_finished_alone_and_does_not_hold_back_the_small_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_text = "\n\n".join(f"Paragraph {i}: " + "the harbour ledger " * 120 for i in range(12))
    corpus = write_small_corpus(tmp_path / "docs", {"c-long.txt": long_text, "d.txt": CURIE})
    group_sizes = record_group_sizes(monkeypatch)
    monkeypatch.setattr(pipeline, "TEXT_BATCH", 4)
    settings = Settings(workspace=tmp_path / "ws", graph={"extractor": "spacy"})
    workspace = open_workspace(settings)
    report = ingest(workspace, [corpus], progress=False)

    assert report.ok and len(report.ingested) == 4
    assert len(workspace.get_chunks(next(d.doc_id for d in report.ingested if d.title == "c-long"))) >= 4
    assert group_sizes == [2, 1, 1]  # a and b committed before the long file's models run; then d
    workspace.close()


def test_a_group_that_has_waited_is_finished_before_the_next_file_is_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow file (OCR, a huge PDF) prepared after small ones does not keep them pending while it runs."""
    corpus = write_small_corpus(tmp_path / "docs", {"c-slow.txt": CURIE})
    settings = Settings(workspace=tmp_path / "ws", graph={"extractor": "spacy"})
    workspace = open_workspace(settings)
    ready_when_preparing: dict[str, set[str]] = {}
    prepare_one = pipeline._prepare_one

    def recording(workspace: Workspace, path: Path, *args: Any) -> Any:
        ready_when_preparing[path.name] = {Path(d.source_path).name for d in workspace.list_documents()}
        return prepare_one(workspace, path, *args)

    monkeypatch.setattr(pipeline, "_prepare_one", recording)
    monkeypatch.setattr(pipeline, "GROUP_MAX_WAIT_S", 0.0)
    report = ingest(workspace, [corpus], progress=False)

    assert report.ok and len(report.ingested) == 3
    assert ready_when_preparing == {"a.txt": set(), "b.txt": {"a.txt"}, "c-slow.txt": {"a.txt", "b.txt"}}
    workspace.close()


def test_an_ingest_interrupted_with_a_started_group_keeps_only_committed_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted while two groups are parsed ahead: both are purged (graph included), the parsing process is
    stopped, and ingesting again ends equal to a clean ingest."""
    corpus = tmp_path / "docs"
    write_corpus(corpus)
    clean = ingest_into(tmp_path / "clean", corpus)
    monkeypatch.setattr(pipeline, "TEXT_BATCH", 2)  # groups of two passages, each started ahead
    monkeypatch.setattr(pipeline, "GROUP_MAX_WAIT_S", float("inf"))
    # Started groups are finished only when a third one starts (not when their parse happens to be done), so
    # which groups are in flight at the interrupt does not depend on the machine's speed.
    monkeypatch.setattr(pipeline._Group, "finish_ready", lambda self: ([], None))
    prepare_one = pipeline._prepare_one
    prepared: list[str] = []

    def interrupted(workspace: Workspace, path: Path, *args: Any) -> Any:
        if len(prepared) == 6:  # [0, 1] committed, [2, 3] and [4, 5] started: the user presses Ctrl-C
            raise KeyboardInterrupt
        prepared.append(path.name)
        return prepare_one(workspace, path, *args)

    monkeypatch.setattr(pipeline, "_prepare_one", interrupted)
    stops: list[int] = []
    stop_ahead = SpacyExtractor.stop_ahead
    monkeypatch.setattr(SpacyExtractor, "stop_ahead", lambda self: stops.append(1) or stop_ahead(self))
    settings = Settings(workspace=tmp_path / "ws", ingest={"dpi": 50, "thumbnail_px": 64}, graph={"extractor": "spacy"})
    workspace = open_workspace(settings)
    with pytest.raises(KeyboardInterrupt):
        ingest(workspace, [corpus], ocr="never", progress=False)
    assert stops and workspace.graph_store is not None
    committed = {Path(d.source_path).name for d in workspace.list_documents()}
    assert committed == set(prepared[:2])  # the two started groups left nothing
    graph = graph_facts(workspace)
    chunk_ids = {c.chunk_id for d in workspace.list_documents() for c in workspace.get_chunks(d.doc_id)}
    assert graph["mentions"] and {chunk for _, chunk in graph["mentions"]} <= chunk_ids
    workspace.close()

    monkeypatch.setattr(pipeline, "_prepare_one", prepare_one)
    workspace = open_workspace(settings)
    report = ingest(workspace, [corpus], ocr="never", progress=False)
    assert report.ok and len(report.ingested) == len(FILM_PASSAGES) + 1 - 2
    again = stored(workspace)
    workspace.close()
    assert_same_store(again, clean)


def test_the_parsing_process_starts_when_a_full_group_is_coming_and_then_parses_every_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spawned after the first file (the files promise a full group), before any group starts; from then on
    a group closed early by the clock is parsed in that process too, never here; the stored result equals
    one group parsed here."""
    corpus = tmp_path / "docs"
    write_corpus(corpus)
    serial = ingest_into(tmp_path / "serial", corpus)
    events: list[str] = []
    prepare_ahead, start_documents = SpacyExtractor.prepare_ahead, GraphIndexer.start_documents
    add_documents = GraphIndexer.add_documents
    monkeypatch.setattr(SpacyExtractor, "prepare_ahead", lambda self: events.append("spawn") or prepare_ahead(self))
    monkeypatch.setattr(
        GraphIndexer, "start_documents", lambda self, docs: events.append("start") or start_documents(self, docs)
    )
    monkeypatch.setattr(
        GraphIndexer, "add_documents", lambda self, docs: events.append("here") or add_documents(self, docs)
    )
    monkeypatch.setattr(pipeline, "TEXT_BATCH", 3)  # the seven files hold more than one group's chunks
    monkeypatch.setattr(pipeline, "GROUP_MAX_WAIT_S", 0.0)  # every group closes by the clock, one file each
    ahead = ingest_into(tmp_path / "ahead", corpus)

    assert events == ["spawn"] + ["start"] * (len(FILM_PASSAGES) + 1)
    assert_same_store(ahead, serial)


def test_an_early_start_that_fails_leaves_the_ingest_as_it_would_be_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "docs"
    write_corpus(corpus)
    serial = ingest_into(tmp_path / "serial", corpus)

    def cannot_start(self: SpacyExtractor) -> None:
        raise OSError("no process for you")

    monkeypatch.setattr(SpacyExtractor, "prepare_ahead", cannot_start)
    monkeypatch.setattr(pipeline, "TEXT_BATCH", 3)
    monkeypatch.setattr(pipeline, "GROUP_MAX_WAIT_S", float("inf"))
    grouped = ingest_into(tmp_path / "grouped", corpus)  # asserts every file was ingested
    assert_same_store(grouped, serial)
