"""Entity resolution: normalisation, aliases, and name similarity (character trigrams), within a batch and
against the store (both backends, real Neo4j)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pagehop.graph.base import Entity, GraphStore
from pagehop.graph.neo4j_store import Neo4jGraphStore
from pagehop.graph.networkx_store import NetworkxGraphStore
from pagehop.graph.resolution import (
    NAME_VECTOR_DIMS,
    EntityResolver,
    _earlier_close_pairs,
    entity_id_for,
    name_vector,
    normalise_name,
)

from .conftest import fresh_neo4j_store


def ent(name: str, type_: str = "ORG", aliases: list[str] | None = None) -> Entity:
    return Entity(entity_id=entity_id_for(name), name=name, type=type_, aliases=aliases or [])


@pytest.mark.parametrize(
    "a, b",
    [("The Beatles", "beatles"), ("Café  Müller!", "cafe muller"), ("Obama's", "Obama"), ("U.S.", "u s")],
)
def test_normalised_names_share_an_id(a: str, b: str) -> None:
    assert normalise_name(a) == normalise_name(b)
    assert entity_id_for(a) == entity_id_for(b)


def test_names_without_letters_are_refused() -> None:
    with pytest.raises(ValueError, match="no letters"):
        entity_id_for(" -- ")
    assert entity_id_for("Lothair I") != entity_id_for("Lothair II")


def test_stored_alias_resolves(minilm_store: GraphStore) -> None:
    marie = ent("Marie Curie", "PERSON", aliases=["Maria Skłodowska"])
    minilm_store.upsert([marie], [], [])
    resolver = EntityResolver(minilm_store)
    resolution = resolver.resolve([ent("maria skłodowska", "PERSON")])
    assert resolution.canonical(entity_id_for("Maria Skłodowska")) == marie.entity_id
    assert [e.entity_id for e in resolution.entities] == [marie.entity_id]


def test_a_name_vector_is_a_function_of_the_name_alone() -> None:
    """The same vector in any group, run or machine (crc32 hashing, no model): a crash-recovered ingest
    stores the same graph."""
    vector = name_vector("The Beatles")
    assert vector.shape == (NAME_VECTOR_DIMS,) and abs(float(vector @ vector) - 1.0) < 1e-6
    assert (vector == name_vector("beatles")).all()  # normalised first, like the id
    assert float(name_vector("Marie Curie") @ name_vector("Pierre Curie")) < 0.7


@pytest.mark.parametrize(
    "stored, new",
    [
        ("Privy Councillor", "Privy Councilor"),  # spelling variants
        ("Joaquin Murrieta", "Joaquin Murrietta"),
        ("American Music Awards", "American Music Award"),
        ("Vassar College", "Vassar College Vassar College"),  # a name doubled by the extractor
        ("Serbian Academy of Science and Arts", "Serbian Academy of Science and Art"),
    ],
)
def test_names_that_merge(minilm_store: GraphStore, stored: str, new: str) -> None:
    resolver = EntityResolver(minilm_store)
    minilm_store.upsert(resolver.resolve([ent(stored)]).entities, [], [])
    resolution = resolver.resolve([ent(new)])
    assert resolution.canonical(entity_id_for(new)) == entity_id_for(stored)
    (merged,) = resolution.entities
    assert merged.entity_id == entity_id_for(stored) and merged.aliases == [new]
    # only among entities of the same type: a PERSON of that name stays itself
    assert resolver.resolve([ent(new, "PERSON")]).canonical(entity_id_for(new)) == entity_id_for(new)


@pytest.mark.parametrize(
    "stored, new",
    [
        ("Lothair II", "Lothair I"),  # different numerals: different people, however close the names
        ("4th Earl of Leicester", "3rd Earl of Leicester"),
        ("1993 Copa Libertadores", "1992 Copa Libertadores"),
        ("William Cavendish-Bentinck", "Charles Cavendish-Bentinck"),  # different given names
        ("Pierre Curie", "Marie Curie"),
        ("Microsoft Corporation", "Microsoft Corp"),  # an abbreviation: trigrams do not see it (cosine 0.76)
    ],
)
def test_names_that_stay_apart(minilm_store: GraphStore, stored: str, new: str) -> None:
    resolver = EntityResolver(minilm_store)
    minilm_store.upsert(resolver.resolve([ent(stored)]).entities, [], [])
    resolution = resolver.resolve([ent(new)])
    assert resolution.canonical(entity_id_for(new)) == entity_id_for(new)
    assert resolver.resolve([ent(stored), ent(new)]).canonical(entity_id_for(new)) == entity_id_for(new)


def test_duplicates_within_one_batch_merge() -> None:
    resolver = EntityResolver(NetworkxGraphStore(None))
    resolution = resolver.resolve([ent("Privy Councillor"), ent("Privy Councilor"), ent("the privy councillor")])
    assert len(resolution.entities) == 1
    assert resolution.entities[0].aliases == ["Privy Councilor"]
    assert len(resolution.entities[0].embedding or []) == NAME_VECTOR_DIMS


@pytest.mark.parametrize("block", [1, 3, 1024])
def test_close_pairs_within_a_batch_are_those_each_row_has_with_the_rows_before_it(block: int) -> None:
    names = ["Privy Councillor", "Privy Councilor", "Joaquin Murrieta", "the privy councillor", "Joaquin Murrietta"]
    vectors = np.stack([name_vector(n) for n in [*names, *(f"Name number {i}" for i in range(20))]])
    pairs = _earlier_close_pairs(vectors, 0.8, block=block)
    for row in range(len(vectors)):  # one product per row against the rows before it: what the blocks replace
        sims = vectors[:row] @ vectors[row]
        expected = {col: float(sims[col]) for col in np.nonzero(sims >= 0.8)[0].tolist()}
        assert dict(pairs.get(row, [])) == pytest.approx(expected, abs=1e-6)
    assert {col for col, _ in pairs[4]} == {2}  # the second spelling of Murrieta meets the first only


def test_a_new_name_merges_into_the_closest_of_the_earlier_names_of_its_batch() -> None:
    first, second, third = ent("Joakin Murrieta"), ent("Joaquin Murieta"), ent("Joaquin Murrieta")
    cosine = {(a.name, b.name): float(name_vector(a.name) @ name_vector(b.name)) for a, b in [(first, second),
              (first, third), (second, third)]}  # fmt: skip
    assert cosine[first.name, second.name] < 0.7 < cosine[first.name, third.name] < cosine[second.name, third.name]
    resolution = EntityResolver(NetworkxGraphStore(None), threshold=0.7).resolve([first, second, third])
    assert len(resolution.entities) == 2  # the first two stay apart; the third is close to both...
    assert resolution.canonical(third.entity_id) == second.entity_id  # ...and joins the closer, not the first


def test_resolution_across_runs_uses_the_persisted_store(tmp_path) -> None:
    path = tmp_path / "graph.pkl"
    first_run = NetworkxGraphStore(path)
    first_run.upsert(EntityResolver(first_run).resolve([ent("Joaquin Murrieta")]).entities, [], [])
    first_run.close()
    second_run = NetworkxGraphStore(path)
    resolution = EntityResolver(second_run).resolve([ent("Joaquin Murrietta")])
    assert resolution.canonical(entity_id_for("Joaquin Murrietta")) == entity_id_for("Joaquin Murrieta")


def test_threshold_is_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        EntityResolver(NetworkxGraphStore(None), threshold=1.5)
    unmerged = EntityResolver(NetworkxGraphStore(None), threshold=None).resolve(
        [ent("Privy Councillor"), ent("Privy Councilor")]
    )
    assert len(unmerged.entities) == 2


@pytest.mark.parametrize("backend", ["networkx", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def test_a_graph_with_an_older_kind_of_name_vectors_gets_trigram_vectors_and_merges_again(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Earlier versions stored 384-d MiniLM name vectors; a store holds one length in its vector index. The
    first resolution gives every stored entity its trigram vector (Neo4j's index rebuilt), nothing else
    changes, and a new spelling merges with an old entity as it would in a fresh graph."""
    old_vector = [1.0 / math.sqrt(384)] * 384
    store: GraphStore
    if backend == "networkx":
        store = NetworkxGraphStore(tmp_path / "graph.pkl")
    else:
        store = fresh_neo4j_store(request.getfixturevalue("neo4j_conn"))
    try:
        older = [ent("Privy Councillor", "TITLE"), ent("Vassar College")]
        store.upsert([e.model_copy(update={"embedding": old_vector}) for e in older], [], [])

        resolution = EntityResolver(store).resolve([ent("Privy Councilor", "TITLE")])

        assert resolution.canonical(entity_id_for("Privy Councilor")) == entity_id_for("Privy Councillor")
        for entity in older:
            stored = store.get_entity(entity.entity_id)
            assert stored is not None and stored.name == entity.name and stored.type == entity.type
            assert np.allclose(stored.embedding or [], name_vector(entity.name), atol=1e-6)
        assert store.revector_entities(lambda name: name_vector(name).tolist(), NAME_VECTOR_DIMS) == 0  # done once
        if backend == "networkx":  # the new vectors are in the snapshot a fresh process reads
            reopened = NetworkxGraphStore(tmp_path / "graph.pkl")
            stored = reopened.get_entity(entity_id_for("Vassar College"))
            assert stored is not None and len(stored.embedding or []) == NAME_VECTOR_DIMS
    finally:
        if isinstance(store, Neo4jGraphStore):
            store.drop_all()
        store.close()
