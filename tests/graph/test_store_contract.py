"""One contract, two backends: every test runs on the networkx store and on the real Neo4j."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from pagehop.graph.base import Entity, GraphStore, Mention, Relation
from pagehop.graph.networkx_store import NetworkxGraphStore
from pagehop.graph.resolution import entity_id_for, fold_sources, normalise_name
from pagehop.graph.validation import GraphWriteError

MARIE, PIERRE, NOBEL = entity_id_for("Marie Curie"), entity_id_for("Pierre Curie"), entity_id_for("Nobel Prize")
WARSAW, PARIS, SORBONNE = entity_id_for("Warsaw"), entity_id_for("Paris"), entity_id_for("Sorbonne")
LONELY = entity_id_for("Lonely Island")


def _entity(name: str, type_: str, aliases: list[str] | None = None, vec: list[float] | None = None) -> Entity:
    return Entity(entity_id=entity_id_for(name), name=name, type=type_, aliases=aliases or [], embedding=vec)


ENTITIES = [
    _entity("Marie Curie", "PERSON", ["Maria Skłodowska"], [1.0, 0.0, 0.0, 0.0]),
    _entity("Pierre Curie", "PERSON", vec=[0.8, 0.6, 0.0, 0.0]),
    _entity("Nobel Prize", "AWARD", vec=[0.0, 0.0, 1.0, 0.0]),
    _entity("Warsaw", "GPE"),
    _entity("Paris", "GPE"),
    _entity("Sorbonne", "ORG"),
    _entity("Lonely Island", "GPE", vec=[0.0, 0.0, 0.0, 1.0]),
]


def _rel(source: str, type_: str, target: str, doc: str, chunk: str, page: int) -> Relation:
    return Relation(source_id=source, target_id=target, type=type_, doc_id=doc, chunk_id=chunk, page=page)


RELATIONS = [
    _rel(MARIE, "MARRIED_TO", PIERRE, "doc1", "c1", 1),
    _rel(MARIE, "WON", NOBEL, "doc1", "c1", 1),
    _rel(MARIE, "WON", NOBEL, "doc2", "c4", 3),  # the same fact, supported by a second document
    _rel(PIERRE, "WON", NOBEL, "doc2", "c3", 1),
    _rel(MARIE, "BORN_IN", WARSAW, "doc1", "c2", 2),
    _rel(PIERRE, "BORN_IN", PARIS, "doc2", "c3", 1),
    _rel(MARIE, "WORKED_AT", SORBONNE, "doc2", "c4", 3),
]
CHUNKS = {
    ("doc1", "c1", 1): [MARIE, PIERRE, NOBEL],
    ("doc1", "c2", 2): [MARIE, WARSAW],
    ("doc2", "c3", 1): [PIERRE, PARIS, NOBEL],
    ("doc2", "c4", 3): [MARIE, SORBONNE],
    ("doc3", "c5", 1): [LONELY],
}
MENTIONS = [
    Mention(entity_id=e, doc_id=doc, chunk_id=chunk, page=page)
    for (doc, chunk, page), ids in CHUNKS.items()
    for e in ids
]


@pytest.fixture
def curie(store: GraphStore) -> GraphStore:
    store.upsert(ENTITIES, RELATIONS, MENTIONS)
    return store


def test_entities_round_trip(curie: GraphStore) -> None:
    marie = curie.get_entity(MARIE)
    assert marie is not None
    assert (marie.name, marie.type, marie.aliases) == ("Marie Curie", "PERSON", ["Maria Skłodowska"])
    assert marie.embedding == pytest.approx([1.0, 0.0, 0.0, 0.0])
    assert curie.get_entity("e_missing") is None
    assert curie.stats() == {"entities": 7, "relations": 6, "mentions": 11}


def test_writes_are_idempotent_and_merge_aliases(curie: GraphStore) -> None:
    curie.upsert(ENTITIES, RELATIONS, MENTIONS)
    assert curie.stats() == {"entities": 7, "relations": 6, "mentions": 11}
    renamed = Entity(entity_id=MARIE, name="Madame Curie", type="ENTITY", aliases=["maria skłodowska"])
    curie.upsert([renamed], [], [])
    marie = curie.get_entity(MARIE)
    assert marie is not None
    # The first write fixes name and type; new names become aliases, normalised duplicates do not.
    assert (marie.name, marie.type) == ("Marie Curie", "PERSON")
    assert marie.aliases == ["Maria Skłodowska", "Madame Curie"]


def test_find_entities_by_name_alias_and_token(curie: GraphStore) -> None:
    assert next(e.entity_id for e in curie.find_entities("Marie Curie")) == MARIE
    assert next(e.entity_id for e in curie.find_entities("the PIERRE curie!")) == PIERRE
    assert next(e.entity_id for e in curie.find_entities("Maria Skłodowska")) == MARIE
    assert {e.entity_id for e in curie.find_entities("curie")} == {MARIE, PIERRE}
    assert curie.find_entities("Tokyo") == []
    assert curie.find_entities("?!") == []


def test_similar_entities_returns_cosine_per_query(curie: GraphStore) -> None:
    nearest_marie, nearest_pierre = curie.similar_entities([[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], limit=2)
    assert [e.entity_id for e, _ in nearest_marie] == [MARIE, PIERRE]
    assert [s for _, s in nearest_marie] == pytest.approx([1.0, 0.8], abs=1e-4)
    assert nearest_pierre[0][0].entity_id == PIERRE
    # look-ups return names, not vectors; get_entity has the vector
    assert nearest_marie[0][0].embedding is None and curie.find_entities("Marie Curie")[0].embedding is None
    assert curie.similar_entities([], limit=2) == []
    with pytest.raises(ValueError, match="dims"):
        curie.similar_entities([[1.0, 0.0]], limit=2)


def test_similar_entities_keep_only_hits_at_the_floor(curie: GraphStore) -> None:
    near_marie, far_from_all = curie.similar_entities([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0]], 2, min_score=0.9)
    assert [e.entity_id for e, _ in near_marie] == [MARIE]  # Pierre at 0.8 is under the floor
    assert far_from_all == []
    at_pierre = curie.similar_entities([[2.0, 0.0, 0.0, 0.0]], limit=2, min_score=0.79)[0]
    assert [e.entity_id for e, _ in at_pierre] == [MARIE, PIERRE]


def test_similar_entities_follow_writes_and_deletes(curie: GraphStore) -> None:
    assert curie.similar_entities([[0.0, 0.0, 0.0, 1.0]], limit=1)[0][0][0].entity_id == LONELY
    skipper = _entity("Skipper", "PERSON", vec=[0.0, 0.0, 0.1, 1.0])
    curie.upsert([skipper], [], [Mention(entity_id=skipper.entity_id, doc_id="doc4", chunk_id="c6", page=1)])
    assert curie.similar_entities([[0.0, 0.0, 0.1, 1.0]], limit=1)[0][0][0].entity_id == skipper.entity_id
    curie.delete_document("doc3")
    assert [e.entity_id for e, _ in curie.similar_entities([[0.0, 0.0, 0.5, 1.0]], limit=2)[0]] == [
        skipper.entity_id,
        NOBEL,
    ]
    # name look-ups forget the removed entity too
    assert curie.find_entities("Lonely Island") == []


def test_neighbours_and_paths_render_citable_chains(curie: GraphStore) -> None:
    one_hop = {p.render() for p in curie.neighbours(WARSAW, hops=1)}
    assert one_hop == {"Warsaw -^BORN_IN-> Marie Curie"}
    two_hops = {p.render() for p in curie.neighbours(WARSAW, hops=2)}
    assert "Warsaw -^BORN_IN-> Marie Curie -MARRIED_TO-> Pierre Curie" in two_hops
    assert len(curie.neighbours(MARIE, hops=2, limit=3)) == 3
    paths = curie.paths(WARSAW, PARIS, max_hops=3)
    assert paths[0].render() == "Warsaw -^BORN_IN-> Marie Curie -MARRIED_TO-> Pierre Curie -BORN_IN-> Paris"
    assert [m.doc_id for m in paths[0].provenance] == ["doc1", "doc1", "doc2"]
    assert curie.paths(WARSAW, LONELY) == []


def test_subgraph_is_bounded(curie: GraphStore) -> None:
    near = curie.subgraph([WARSAW], hops=1)
    assert {e.entity_id for e in near.entities} == {WARSAW, MARIE}
    assert [(r.source_id, r.type, r.target_id) for r in near.relations] == [(MARIE, "BORN_IN", WARSAW)]
    wide = curie.subgraph([WARSAW], hops=2)
    assert {e.entity_id for e in wide.entities} == {WARSAW, MARIE, PIERRE, NOBEL, SORBONNE}
    assert len(curie.subgraph([MARIE], hops=2, limit=3).entities) == 3


def test_personalized_pagerank_ranks_entities_and_chunks(curie: GraphStore) -> None:
    entities, chunks = curie.personalized_pagerank({WARSAW: 1.0}, top_k=10)
    ranked = [e for e, _ in entities]
    assert ranked[:2] == [WARSAW, MARIE]
    assert LONELY not in ranked
    assert math.isclose(sum(s for _, s in entities), 1.0, abs_tol=1e-6)
    # c2 holds both Warsaw and Marie: it beats every chunk holding only one of the walk's entities.
    assert next(c for c, _ in chunks) == "c2"
    assert "c5" not in [c for c, _ in chunks]
    assert curie.personalized_pagerank({"e_missing": 1.0}) == ([], [])


def test_pagerank_follows_writes(curie: GraphStore) -> None:
    """A relation written after a query joins the next walk; a deleted document's relations leave it."""
    ranked = [e for e, _ in curie.personalized_pagerank({WARSAW: 1.0}, top_k=10)[0]]
    assert LONELY not in ranked
    link = _rel(WARSAW, "NEAR", LONELY, "doc4", "c6", 1)
    curie.upsert([], [link], [Mention(entity_id=e, doc_id="doc4", chunk_id="c6", page=1) for e in (WARSAW, LONELY)])
    assert LONELY in [e for e, _ in curie.personalized_pagerank({WARSAW: 1.0}, top_k=10)[0]]
    curie.delete_document("doc4")
    assert LONELY not in [e for e, _ in curie.personalized_pagerank({WARSAW: 1.0}, top_k=10)[0]]


def test_both_backends_rank_identically(curie: GraphStore) -> None:
    entities, chunks = curie.personalized_pagerank({PARIS: 1.0, WARSAW: 0.5}, top_k=3)
    assert [e for e, _ in entities] == [PARIS, PIERRE, WARSAW]
    assert [c for c, _ in chunks] == ["c3", "c1", "c2"]


def test_delete_document_keeps_what_others_support(curie: GraphStore) -> None:
    curie.delete_document("doc1")
    assert curie.get_entity(WARSAW) is None  # only doc1 mentioned Warsaw
    assert curie.get_entity(MARIE) is not None  # doc2 still mentions her
    assert {p.render() for p in curie.neighbours(MARIE, hops=1)} == {
        "Marie Curie -WON-> Nobel Prize",  # doc2 supports it too
        "Marie Curie -WORKED_AT-> Sorbonne",
    }
    evidence = curie.paths(MARIE, NOBEL, max_hops=1)[0].provenance
    assert [(m.doc_id, m.chunk_id, m.page) for m in evidence] == [("doc2", "c4", 3)]
    assert curie.stats() == {"entities": 6, "relations": 4, "mentions": 6}
    curie.delete_document("doc1")  # deleting twice is harmless
    curie.delete_document("doc2")
    curie.delete_document("doc3")
    assert curie.stats() == {"entities": 0, "relations": 0, "mentions": 0}


def test_delete_document_takes_back_what_it_said_about_a_shared_entity(store: GraphStore) -> None:
    """The entity left is what a clean write of the remaining documents stores: name, type, aliases, description."""
    said_first = Entity(entity_id=MARIE, name="Marie Curie", type="TITLE", aliases=["Madame Curie"], description="a")
    said_later = Entity(entity_id=MARIE, name="marie curie", type="PERSON", aliases=["Maria Skłodowska"])
    mention = {doc: Mention(entity_id=MARIE, doc_id=doc, chunk_id=f"{doc}:0", page=1) for doc in ("d1", "d2")}
    store.upsert([said_first], [], [mention["d1"]])
    store.upsert([said_later], [], [mention["d2"]])
    both = store.get_entity(MARIE)
    assert both is not None and (both.type, both.aliases) == ("TITLE", ["Madame Curie", "Maria Skłodowska"])

    store.delete_document("d1")

    left = store.get_entity(MARIE)
    assert left is not None
    assert (left.name, left.type, left.aliases, left.description) == ("marie curie", "PERSON", ["Maria Skłodowska"], "")
    assert [e.entity_id for e in store.find_entities("Madame")] == []  # its alias is no longer found
    assert [e.entity_id for e in store.find_entities("Skłodowska")] == [MARIE]


def test_entities_are_looked_up_in_batches_by_id_and_by_normalised_name(curie: GraphStore) -> None:
    found = curie.get_entities([MARIE, "e_missing", NOBEL])
    assert set(found) == {MARIE, NOBEL}
    assert found[MARIE].embedding == pytest.approx([1.0, 0.0, 0.0, 0.0])
    names = ["the MARIE curie!", "Maria Skłodowska", "Curie", "Tokyo", "?!"]
    named = curie.entities_named(names)
    assert {name: e.entity_id for name, e in named.items()} == {"the MARIE curie!": MARIE, "Maria Skłodowska": MARIE}
    # The same answer as the first exact match of the full-text look-up (what resolution asked before).
    for name in names:
        key = normalise_name(name)
        candidates = curie.find_entities(name, limit=5)
        exact = [e.entity_id for e in candidates if key in {normalise_name(n) for n in [e.name, *e.aliases]}]
        assert (named[name].entity_id if name in named else None) == (exact[0] if exact else None)
    # Two entities answering to one alias: the smallest id, on both backends.
    curie.upsert([_entity("Pierre Curie", "PERSON", ["Maria Skłodowska"])], [], [])
    assert curie.entities_named(["maria skłodowska"])["maria skłodowska"].entity_id == min(MARIE, PIERRE)


def test_an_entity_said_by_many_documents_is_the_fold_of_what_each_said(store: GraphStore) -> None:
    """Written one document at a time (as ingest does), the entity equals ``fold_sources`` of every
    document's say, and deleting one of them takes back only what it said."""
    says = [
        Entity(entity_id=MARIE, name=name, type=type_, aliases=aliases, description=description)
        for name, type_, aliases, description in [
            ("Marie Curie", "TITLE", [], ""),
            ("marie curie", "PERSON", ["Madame Curie"], "a physicist"),
            ("Marie Curie", "PERSON", ["Maria Skłodowska", "mme curie"], "a chemist"),
            ("MARIE CURIE", "ORG", ["M. Curie"], ""),
        ]
    ]
    for number, said in enumerate(says):
        store.upsert([said], [], [Mention(entity_id=MARIE, doc_id=f"d{number}", chunk_id=f"d{number}:0", page=1)])
    store.upsert([says[1]], [], [Mention(entity_id=MARIE, doc_id="d1", chunk_id="d1:1", page=1)])  # again

    def expected(kept: list[int]) -> tuple[str, str, list[str], str]:
        sources = {f"d{i}": (says[i].name, says[i].type, says[i].aliases, says[i].description) for i in kept}
        folded = fold_sources(MARIE, sources)
        assert folded is not None
        return folded.name, folded.type, folded.aliases, folded.description

    marie = store.get_entity(MARIE)
    assert marie is not None
    assert (marie.name, marie.type, marie.aliases, marie.description) == expected([0, 1, 2, 3])
    store.delete_document("d1")
    marie = store.get_entity(MARIE)
    assert marie is not None
    assert (marie.name, marie.type, marie.aliases, marie.description) == expected([0, 2, 3])
    assert store.entities_named(["Madame Curie"]) == {}  # d1's alias is gone with it


def test_chunk_mention_counts(curie: GraphStore) -> None:
    assert curie.chunk_mention_counts([MARIE, LONELY, "e_missing"]) == {MARIE: 3, LONELY: 1}


@pytest.mark.parametrize(
    "bad_relation, message",
    [
        (_rel(MARIE, "KNOWS", "e_nobody", "d", "c", 1), "unknown entity"),
        (_rel(MARIE, "knows", PIERRE, "d", "c", 1), "UPPER_SNAKE"),
        (_rel(MARIE, "X]->(b) DETACH DELETE b //", PIERRE, "d", "c", 1), "UPPER_SNAKE"),
        (_rel(MARIE, "KNOWS", PIERRE, "d", "c", 0), "1-based"),
        (_rel(MARIE, "KNOWS", PIERRE, "", "c", 1), "doc_id"),
    ],
)
def test_bad_writes_are_refused_whole(curie: GraphStore, bad_relation: Relation, message: str) -> None:
    newcomer = _entity("Irène Joliot-Curie", "PERSON")
    good = _rel(newcomer.entity_id, "CHILD_OF", MARIE, "doc9", "c9", 1)
    with pytest.raises(GraphWriteError, match=message):
        curie.upsert([newcomer], [good, bad_relation], [])
    assert curie.get_entity(newcomer.entity_id) is None
    assert curie.stats() == {"entities": 7, "relations": 6, "mentions": 11}


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ([[1.0, 0.0], [1.0, 0.0, 0.0]], "different sizes"),
        ([[1.0, 0.0], [float("nan"), 1.0]], "entity e_.* has an empty or non-finite embedding"),
        ([[1.0, 0.0], [float("inf"), 1.0]], "non-finite"),
        ([[], []], "empty"),
    ],
)
def test_bad_embeddings_are_refused_whole(store: GraphStore, vectors: list[list[float]], message: str) -> None:
    with pytest.raises(GraphWriteError, match=message):
        store.upsert([_entity("A", "X", vec=vectors[0]), _entity("B", "X", vec=vectors[1])], [], [])
    assert store.stats()["entities"] == 0


def test_networkx_store_persists_through_its_journal(tmp_path) -> None:
    path = tmp_path / "ws" / "graph.pkl"
    first = NetworkxGraphStore(path)
    first.upsert(ENTITIES, RELATIONS, MENTIONS)
    first.close()
    assert [p.name for p in path.parent.iterdir()] == ["graph.pkl.journal"]  # a write appends, no snapshot yet
    reopened = NetworkxGraphStore(path)
    assert reopened.stats() == {"entities": 7, "relations": 6, "mentions": 11}
    assert [e.entity_id for e in reopened.find_entities("Skłodowska")] == [MARIE]
    assert reopened.personalized_pagerank({WARSAW: 1.0}, top_k=2) == first.personalized_pagerank({WARSAW: 1.0}, top_k=2)

    reopened.delete_document("doc2")
    after_delete = reopened.stats()
    assert NetworkxGraphStore(path).stats() == after_delete


def test_networkx_store_removes_a_snapshot_left_half_written_by_a_killed_writer(tmp_path) -> None:
    path = tmp_path / "graph.pkl"
    # What a writer killed mid-save leaves: today's temporary name, and an older pagehop's
    stale = [tmp_path / ".graph.pkl.x1y2z3.tmp", tmp_path / "graph.pklx1y2z3.tmp"]
    for file in stale:
        file.write_bytes(b"half a pickle")
    store = NetworkxGraphStore(path)
    assert all(file.exists() for file in stale)  # a reader never deletes: a live writer may own it
    store.upsert(ENTITIES, RELATIONS, MENTIONS)
    assert not any(file.exists() for file in stale)


def test_networkx_store_drops_a_record_torn_by_a_crash(tmp_path) -> None:
    path = tmp_path / "graph.pkl"
    store = NetworkxGraphStore(path)
    store.upsert(ENTITIES, RELATIONS, MENTIONS)
    journal = path.with_name("graph.pkl.journal")
    whole = journal.read_bytes()
    store.delete_document("doc1")
    journal.write_bytes(journal.read_bytes()[: len(whole) + 20])  # the delete record cut short
    reopened = NetworkxGraphStore(path)
    assert reopened.stats() == {"entities": 7, "relations": 6, "mentions": 11}
    assert journal.read_bytes() == whole  # the torn tail is cut off, later appends start clean
    reopened.delete_document("doc1")
    assert NetworkxGraphStore(path).stats() == reopened.stats()


def test_networkx_store_folds_a_large_journal_into_a_snapshot(tmp_path, monkeypatch) -> None:
    from pagehop.graph import networkx_store

    monkeypatch.setattr(networkx_store, "MIN_COMPACT_BYTES", 0)
    path = tmp_path / "graph.pkl"
    store = NetworkxGraphStore(path)
    store.upsert(ENTITIES, RELATIONS, MENTIONS)  # journal > empty snapshot: folded at once
    assert path.exists() and not path.with_name("graph.pkl.journal").exists()
    store.delete_document("doc2")
    assert NetworkxGraphStore(path).stats() == store.stats()


_WRITER = """
import sys
from pathlib import Path
from pagehop.graph import networkx_store
from pagehop.graph.base import Entity, Mention
from pagehop.graph.resolution import entity_id_for, fold_sources, normalise_name

path, action, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if len(sys.argv) > 4:
    networkx_store.MIN_COMPACT_BYTES = 0  # this write folds the journal into a new snapshot
store = networkx_store.NetworkxGraphStore(path)
if action == "add":
    entity = Entity(entity_id=entity_id_for(name), name=name, type="PERSON")
    store.upsert([entity], [], [Mention(entity_id=entity.entity_id, doc_id=name, chunk_id=name, page=1)])
else:
    store.delete_document(name)
"""


def test_networkx_store_sees_what_another_process_writes(tmp_path) -> None:
    """A server's store follows `pagehop ingest` running beside it: appends, deletes, compaction."""
    path = tmp_path / "graph.pkl"
    reader = NetworkxGraphStore(path)
    reader.upsert(ENTITIES, RELATIONS, MENTIONS)

    def other_process(*args: str) -> None:
        subprocess.run([sys.executable, "-c", _WRITER, str(path), *args], check=True, timeout=120)

    other_process("add", "Ève Curie")
    assert reader.get_entity(entity_id_for("Ève Curie")) is not None
    assert reader.stats()["entities"] == 8
    other_process("delete", "doc1")
    assert reader.stats() == NetworkxGraphStore(path).stats()
    assert reader.get_entity(WARSAW) is None  # only doc1 named Warsaw
    other_process("add", "Henri Becquerel", "compact")
    assert not path.with_name("graph.pkl.journal").exists()
    assert [e.name for e in reader.find_entities("Becquerel")] == ["Henri Becquerel"]
    reader.upsert([_entity("Paul Langevin", "PERSON")], [], [])  # and the other way round
    assert NetworkxGraphStore(path).stats() == reader.stats()


@pytest.mark.neo4j
def test_neo4j_routing_uri_and_factory(neo4j_conn: dict[str, str], tmp_path) -> None:
    from pagehop.config import Settings
    from pagehop.graph.neo4j_store import Neo4jGraphStore
    from pagehop.graph.store import make_graph_store

    routed = neo4j_conn["uri"].replace("bolt://", "neo4j://")
    settings = Settings(
        graph_store="neo4j",
        neo4j={"uri": routed, "user": neo4j_conn["user"], "password": neo4j_conn["password"]},
    )
    store = make_graph_store(settings, tmp_path)
    try:
        assert isinstance(store, Neo4jGraphStore)
        assert store.get_entity("e_nothing_here") is None
    finally:
        store.close()
    assert isinstance(make_graph_store(Settings(), tmp_path), NetworkxGraphStore)


def test_corrupt_graph_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "graph.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable pagehop graph file"):
        NetworkxGraphStore(path)
