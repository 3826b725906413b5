"""The ingestion hook and the graph channel end to end: real spaCy, real MiniLM, both backends."""

from __future__ import annotations

import pytest

from pagehop.graph.base import GraphStore
from pagehop.graph.extraction import SpacyExtractor
from pagehop.graph.indexer import GraphIndexer
from pagehop.graph.resolution import EntityResolver, entity_id_for
from pagehop.graph.retrieval import GraphRetriever
from pagehop.schema import Chunk, Document
from pagehop.testing.multihop import FILM_PASSAGES


def document(doc_id: str, title: str) -> Document:
    return Document(
        doc_id=doc_id, source_path=f"{doc_id}.txt", title=title, kind="text", num_pages=1, size_bytes=10, ingested_at=0
    )


def passage_chunk(i: int, title: str, text: str) -> Chunk:
    return Chunk(
        chunk_id=f"chunk{i}",
        doc_id=f"doc{i}",
        page_start=1,
        page_end=1,
        char_start=0,
        char_end=len(text),
        text=text,
        title=title,
    )


@pytest.fixture
def indexed(minilm_store: GraphStore, nlp) -> GraphIndexer:
    indexer = GraphIndexer(minilm_store, SpacyExtractor(nlp), EntityResolver(minilm_store))
    for i, (title, text) in enumerate(FILM_PASSAGES.items()):
        indexer.add_document(document(f"doc{i}", title), [], [passage_chunk(i, title, text)])
    return indexer


def test_indexing_twice_changes_nothing_and_deleting_keeps_shared_entities(indexed: GraphIndexer) -> None:
    store = indexed.store
    before = store.stats()
    indexed.add_document(
        document("doc1", "Tomas Lindqvist"), [], [passage_chunk(1, "Tomas Lindqvist", FILM_PASSAGES["Tomas Lindqvist"])]
    )
    assert store.stats() == before
    greta = entity_id_for("Greta Lindqvist")
    indexed.delete_document("doc2")  # Greta's own passage; doc1 still names her
    assert store.get_entity(greta) is not None
    assert store.get_entity(entity_id_for("Stockholm")) is None  # only doc2 named it
    indexed.delete_document("doc1")
    assert store.get_entity(greta) is None


def test_chunks_of_another_document_are_refused(indexed: GraphIndexer) -> None:
    with pytest.raises(ValueError, match="do not belong"):
        indexed.add_document(document("doc9", "x"), [], [passage_chunk(1, "x", "Some text about Oslo.")])


def test_two_hop_question_reaches_both_passages(indexed: GraphIndexer, nlp) -> None:
    retriever = GraphRetriever(indexed.store, nlp)
    result = retriever.search("Who is the mother of the director of the film The Silent Harbor?", k=3)
    assert entity_id_for("The Silent Harbor") in result.seeds
    assert {c for c, _ in result.chunks[:2]} == {"chunk0", "chunk1"}  # the film's and the director's passages
    rendered = [p.render() for p in result.paths]
    assert any("The Silent Harbor" in r and "Tomas Lindqvist" in r for r in rendered), rendered
    assert "chunk5" not in {c for c, _ in result.chunks}  # the opera house is unrelated


def test_unknown_question_finds_nothing(indexed: GraphIndexer, nlp) -> None:
    result = GraphRetriever(indexed.store, nlp).search("What is the boiling point of xenon?", k=5)
    assert result.seeds == {} and result.chunks == [] and result.paths == []


def test_a_shared_word_is_no_seed_but_a_whole_name_in_the_question_is(minilm_store: GraphStore, nlp) -> None:
    indexer = GraphIndexer(minilm_store, SpacyExtractor(nlp), EntityResolver(minilm_store))
    passages = {
        "Harbor Lights": "Harbor Lights is a 1963 film directed by Ines Falk.",
        "Ines Falk": "Ines Falk was a German film director born in Bremen.",
        "Otto Brandt (director)": "Otto Brandt is a Danish director of sea documentaries.",
        "Harbor (band)": "Harbor is a rock band from Oslo.",
    }
    for i, (title, text) in enumerate(passages.items()):
        indexer.add_document(document(f"doc{i}", title), [], [passage_chunk(i, title, text)])

    seeds = GraphRetriever(minilm_store, nlp).link("Where was the director of the film Harbor Lights born?")

    assert entity_id_for("Harbor Lights") in seeds  # said as one mention: weight 1
    assert entity_id_for("Harbor (band)") in seeds  # its whole name "Harbor" is in the question: partial
    assert seeds[entity_id_for("Harbor (band)")] < seeds[entity_id_for("Harbor Lights")]
    assert entity_id_for("Otto Brandt (director)") not in seeds  # shares only the word "director"
