"""Entity resolution: normalisation, aliases, and MiniLM similarity, within a batch and against the store."""

from __future__ import annotations

import pytest

from pagehop.graph.base import Entity, GraphStore
from pagehop.graph.networkx_store import NetworkxGraphStore
from pagehop.graph.resolution import EntityResolver, entity_id_for, normalise_name


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


def test_stored_alias_resolves(minilm_store: GraphStore, embedder) -> None:
    marie = ent("Marie Curie", "PERSON", aliases=["Maria Skłodowska"])
    minilm_store.upsert([marie], [], [])
    resolver = EntityResolver(minilm_store, embedder)
    resolution = resolver.resolve([ent("maria skłodowska", "PERSON")])
    assert resolution.canonical(entity_id_for("Maria Skłodowska")) == marie.entity_id
    assert [e.entity_id for e in resolution.entities] == [marie.entity_id]


def test_similar_names_of_the_same_type_merge(minilm_store: GraphStore, embedder) -> None:
    resolver = EntityResolver(minilm_store, embedder, threshold=0.95)
    first = resolver.resolve([ent("Microsoft Corporation"), ent("Lothair II", "PERSON")])
    minilm_store.upsert(first.entities, [], [])
    second = resolver.resolve([ent("Microsoft Corp"), ent("Microsoft Corp", "PERSON"), ent("Lothair I", "PERSON")])
    microsoft = entity_id_for("Microsoft Corporation")
    # cosine 0.97: the same company; but only among entities of the same type
    assert second.canonical(entity_id_for("Microsoft Corp")) == microsoft
    merged = next(e for e in second.entities if e.entity_id == microsoft)
    assert merged.aliases == ["Microsoft Corp"]
    # cosine 0.88: two different kings stay apart
    assert second.canonical(entity_id_for("Lothair I")) == entity_id_for("Lothair I")


def test_duplicates_within_one_batch_merge(embedder) -> None:
    resolver = EntityResolver(NetworkxGraphStore(None), embedder)
    resolution = resolver.resolve(
        [ent("Microsoft Corporation"), ent("Microsoft Corp"), ent("the microsoft corporation")]
    )
    assert len(resolution.entities) == 1
    assert resolution.entities[0].aliases == ["Microsoft Corp"]
    assert len(resolution.entities[0].embedding or []) == 384


def test_resolution_across_runs_uses_the_persisted_store(tmp_path, embedder) -> None:
    path = tmp_path / "graph.pkl"
    first_run = NetworkxGraphStore(path)
    first_run.upsert(EntityResolver(first_run, embedder).resolve([ent("Microsoft Corporation")]).entities, [], [])
    first_run.close()
    second_run = NetworkxGraphStore(path)
    resolution = EntityResolver(second_run, embedder).resolve([ent("Microsoft Corp")])
    assert resolution.canonical(entity_id_for("Microsoft Corp")) == entity_id_for("Microsoft Corporation")


def test_threshold_is_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        EntityResolver(NetworkxGraphStore(None), None, threshold=1.5)
