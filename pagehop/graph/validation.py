"""Checks every write passes before a store changes anything, so bad input never half-lands."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from pagehop.graph.base import Entity, Mention, Relation

RELATION_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


class GraphWriteError(ValueError):
    """A write was refused; nothing of it was stored."""


def validate_write(
    entities: Sequence[Entity],
    relations: Sequence[Relation],
    mentions: Sequence[Mention],
    known: Callable[[str], bool],
) -> None:
    """Raise GraphWriteError unless every record is well formed and every reference resolves.

    ``known(entity_id)`` says whether the store already holds an entity.
    """
    batch_ids = set()
    for entity in entities:
        if not entity.entity_id.strip() or not entity.name.strip():
            raise GraphWriteError(f"entity needs a non-empty id and name: {entity!r}")
        batch_ids.add(entity.entity_id)
    _check_embeddings([e for e in entities if e.embedding is not None])

    def resolves(entity_id: str) -> bool:
        return entity_id in batch_ids or known(entity_id)

    for relation in relations:
        if not RELATION_TYPE.match(relation.type):
            raise GraphWriteError(f"relation type {relation.type!r} is not UPPER_SNAKE (A-Z, 0-9, _)")
        for end in (relation.source_id, relation.target_id):
            if not resolves(end):
                raise GraphWriteError(f"relation {relation.type} points at unknown entity {end!r}")
        _check_provenance(relation.doc_id, relation.chunk_id, relation.page)
    for mention in mentions:
        if not resolves(mention.entity_id):
            raise GraphWriteError(f"mention points at unknown entity {mention.entity_id!r}")
        _check_provenance(mention.doc_id, mention.chunk_id, mention.page)


def _check_embeddings(entities: Sequence[Entity]) -> None:
    """One size for the write, not empty, every value finite (checked as one array: an ingest group
    writes tens of thousands of values per entity batch)."""
    if not entities:
        return
    if len({len(e.embedding or ()) for e in entities}) > 1:
        raise GraphWriteError("entities in one write have embeddings of different sizes")
    values = np.asarray([e.embedding for e in entities], dtype=np.float64)
    finite = np.isfinite(values).all(axis=1) if values.shape[1] else np.zeros(len(entities), dtype=bool)
    if not finite.all():
        bad = entities[int(np.argmin(finite))]
        raise GraphWriteError(f"entity {bad.entity_id} has an empty or non-finite embedding")


def _check_provenance(doc_id: str, chunk_id: str, page: int | None) -> None:
    if not doc_id or not chunk_id:
        raise GraphWriteError("provenance needs a doc_id and a chunk_id")
    if page is not None and page < 1:
        raise GraphWriteError(f"pages are 1-based, got {page}")
