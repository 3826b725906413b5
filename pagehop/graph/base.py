"""The door of the graph area: one store contract that the networkx and Neo4j backends both meet."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

GRAPH_UNAVAILABLE = "graph channel unavailable"


class GraphUnavailable(RuntimeError):
    """The graph store's server does not answer (stopped, restarting, network gone).

    Raised at the graph channel's doors (retrieval, Cypher) so that callers fall back to the
    other channels and say so, instead of failing the question.
    """


class Entity(BaseModel):
    entity_id: str = Field(description="stable id derived from the normalised name")
    name: str
    type: str = "ENTITY"
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    embedding: list[float] | None = None


class Relation(BaseModel):
    source_id: str
    target_id: str
    type: str = Field(description="UPPER_SNAKE relation type, e.g. MOTHER_OF")
    description: str = ""
    doc_id: str
    chunk_id: str
    page: int | None = None


class Mention(BaseModel):
    """Provenance: an entity appears in a chunk of a document page."""

    entity_id: str
    doc_id: str
    chunk_id: str
    page: int | None = None


class GraphPath(BaseModel):
    """entity -relation-> entity -relation-> ... with the evidence behind each step."""

    entity_ids: list[str]
    names: list[str]
    relations: list[str]
    provenance: list[Mention] = Field(default_factory=list)

    def render(self) -> str:
        parts = [self.names[0]]
        for rel, name in zip(self.relations, self.names[1:], strict=True):
            parts.append(f"-{rel}-> {name}")
        return " ".join(parts)

    @staticmethod
    def parse_rendered(rendered: str) -> tuple[list[str], list[str]]:
        """(names, relations) back from :meth:`render`'s text (what answers carry), e.g. to draw it."""
        parts = _RENDERED_STEP.split(rendered)
        return parts[0::2], parts[1::2]


_RENDERED_STEP = re.compile(r" -([^\s>]+)-> ")


class Subgraph(BaseModel):
    entities: list[Entity]
    relations: list[Relation]


@runtime_checkable
class GraphStore(Protocol):
    def upsert(
        self, entities: Sequence[Entity], relations: Sequence[Relation], mentions: Sequence[Mention]
    ) -> None: ...

    def delete_document(self, doc_id: str) -> None:
        """Remove what ``doc_id`` contributed; facts other documents also support stay."""
        ...

    def get_entity(self, entity_id: str) -> Entity | None: ...

    def get_entities(self, entity_ids: Sequence[str]) -> dict[str, Entity]:
        """The stored ones of ``entity_ids`` (with their embedding), in one look-up."""
        ...

    def entities_named(self, names: Sequence[str]) -> dict[str, Entity]:
        """Per name, the stored entity whose name or an alias normalises as it does (``normalise_name``; the
        smallest id when several do), without its embedding; names matching none are left out. One look-up
        for a batch: entity resolution asks it for every new name of an ingest group."""
        ...

    def find_entities(self, text: str, limit: int = 10) -> list[Entity]:
        """Full-text look-up over names and aliases (entities without their embedding, as below)."""
        ...

    def similar_entities(
        self, embeddings: Sequence[Sequence[float]], limit: int = 10, min_score: float | None = None
    ) -> list[list[tuple[Entity, float]]]:
        """Per query vector, the ``limit`` entities of closest embedding with their cosine, best first, only
        those at ``min_score`` or above when it is given; the entities come without their embedding
        (``get_entity`` has it)."""
        ...

    def revector_entities(self, vector_of: Callable[[str], Sequence[float]], dims: int) -> int:
        """Give each entity whose vector is missing or not ``dims`` long the vector ``vector_of(name)``;
        returns how many changed (0: nothing to do). A graph written by an earlier version holds name
        vectors of another kind, and a store never mixes two kinds in one vector index."""
        ...

    def neighbours(self, entity_id: str, hops: int = 1, limit: int = 50) -> list[GraphPath]: ...

    def paths(self, source_id: str, target_id: str, max_hops: int = 3, limit: int = 10) -> list[GraphPath]: ...

    def subgraph(self, seed_ids: Sequence[str], hops: int = 2, limit: int = 500) -> Subgraph: ...

    def personalized_pagerank(
        self, seeds: Mapping[str, float], top_k: int = 20
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(entity_id, score) and (chunk_id, score) ranked from the seed entities."""
        ...

    def chunk_mention_counts(self, entity_ids: Sequence[str]) -> dict[str, int]:
        """How many chunks mention each entity (retrieval down-weights entities found everywhere)."""
        ...

    def stats(self) -> dict[str, int]:
        """{"entities", "relations" (one per source, target, type), "mentions"} held."""
        ...

    def close(self) -> None: ...
