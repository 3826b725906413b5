"""Entity resolution: one node per real-world thing, across chunks, documents and runs.

Three rules, cheapest first:
1. Normalisation: case, unicode form, punctuation and a leading "the" never make two entities
   ("The Beatles", "the beatles", "Beatles" share one id, derived from the normalised name).
2. Aliases: a name that is already the name or an alias of a stored entity resolves to that entity
   (``GraphStore.entities_named``).
3. Name similarity: a new name whose character-trigram vector (``name_vector``) is within ``threshold``
   cosine of an existing entity of the same type and with the same numerals becomes an alias of it
   ("Blood, Sweat & Tears Blood, Sweat& Tears" / "Blood, Sweat & Tears", "Privy Councillor" / "Privy
   Councilor"); "3rd Earl of Leicester" never merges with "4th Earl of Leicester".

Trigram vectors replaced MiniLM name embeddings: a name's vector is a pure function of the name (the same
in every group, run and crash-recovered ingest), costs microseconds instead of a model call per name, and
the merges MiniLM made at cosine 0.95 were often wrong (different ordinals, different given names);
docs/benchmarks.md "CPU ingest, fourth pass (issue 14)" has the counts.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pagehop.graph.base import Entity, GraphStore, Mention

log = logging.getLogger(__name__)

_LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+")
_NOT_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
# Possessive 's is dropped before punctuation so "Obama's" and "Obama" meet.
_POSSESSIVE = re.compile(r"['’]s\b")


@functools.lru_cache(maxsize=1 << 16)  # resolution and the stores ask for the same few names many times over
def normalise_name(name: str) -> str:
    """Case-, accent-, punctuation- and article-insensitive key of an entity name."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = _POSSESSIVE.sub("", text)
    text = _NOT_WORD.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = _LEADING_ARTICLE.sub("", text)
    return text


def entity_id_for(name: str) -> str:
    """Stable id of the entity named ``name``: the same on every machine and in every run."""
    key = normalise_name(name)
    if not key:
        raise ValueError(f"entity name {name!r} has no letters or digits")
    return "e_" + hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


NAME_VECTOR_DIMS = 512  # hashed trigrams: 512 keeps chance collisions well under the threshold's margin
NAME_SIMILARITY = 0.9  # cosine of trigram vectors; measured on 2Wiki's names (docs/benchmarks.md)
_NUMERAL = re.compile(r"^(\d+(st|nd|rd|th)?|[ivxlcdm]+)$")


def name_vector(name: str, dims: int = NAME_VECTOR_DIMS) -> np.ndarray:
    """A unit vector of the character trigrams of the normalised name (signed feature hashing)."""
    key = f" {normalise_name(name)} "
    vector = np.zeros(dims, dtype=np.float32)
    for start in range(len(key) - 2):
        code = zlib.crc32(key[start : start + 3].encode("utf-8"))
        vector[code % dims] += 1.0 if code & 0x80000000 else -1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _name_vector_list(name: str) -> list[float]:
    return name_vector(name).tolist()


def numerals(name: str) -> frozenset[str]:
    """The number-like words of a name (1995, 3rd, III): names that differ in them are different things."""
    return frozenset(word for word in normalise_name(name).split() if _NUMERAL.match(word))


@dataclass
class Resolution:
    """The canonical entities to store and how every extracted id maps onto them."""

    entities: list[Entity]
    id_map: dict[str, str] = field(default_factory=dict)

    def canonical(self, entity_id: str) -> str:
        return self.id_map.get(entity_id, entity_id)


class EntityResolver:
    """Merges freshly extracted entities with each other and with those already in ``store``."""

    def __init__(self, store: GraphStore, threshold: float | None = NAME_SIMILARITY) -> None:
        """``threshold`` None: no merging by name similarity (normalisation and aliases only)."""
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise ValueError(f"similarity threshold must be in (0, 1], got {threshold}")
        self.store = store
        self.threshold = threshold
        self._vectors_checked = False

    def resolve(self, extracted: Sequence[Entity]) -> Resolution:
        if not self._vectors_checked:  # once per resolver: a graph from before trigram vectors gets them now
            changed = self.store.revector_entities(_name_vector_list, NAME_VECTOR_DIMS)
            if changed:
                log.warning("%d stored entities got character-trigram name vectors (an older graph)", changed)
            self._vectors_checked = True
        merged = _merge_by_id(extracted)
        id_map = {e.entity_id: e.entity_id for e in extracted}
        result: list[Entity] = []
        new_entities: list[Entity] = []
        # Two batched look-ups for the whole group (one per entity cost two store calls each)
        stored = self.store.get_entities([e.entity_id for e in merged])
        named = self.store.entities_named([e.name for e in merged if e.entity_id not in stored])
        for entity in merged:
            existing = stored.get(entity.entity_id) or named.get(entity.name)
            if existing is not None:
                id_map[entity.entity_id] = existing.entity_id
                result.append(_absorb(existing, entity))
            else:
                new_entities.append(entity)
        for entity in new_entities:
            entity.embedding = _name_vector_list(entity.name)
        if self.threshold is not None and new_entities:
            new_entities = self._merge_similar(new_entities, result, id_map, self.threshold)
        result.extend(new_entities)
        # Several extracted ids may have collapsed onto one stored entity: keep one copy.
        final = _merge_by_id(result)
        return Resolution(entities=final, id_map=id_map)

    def _merge_similar(
        self, new_entities: list[Entity], resolved: list[Entity], id_map: dict[str, str], threshold: float
    ) -> list[Entity]:
        """Fold each new entity into a stored or earlier new one of the same kind if close enough."""
        vectors = np.asarray([e.embedding for e in new_entities], dtype=np.float32)
        stored = self.store.similar_entities(vectors.tolist(), limit=3, min_score=threshold)  # one look-up
        earlier_close = _earlier_close_pairs(vectors, threshold)
        kept: list[Entity] = []
        kept_at: dict[int, int] = {}  # row of a kept entity -> its place in ``kept``
        for row, (entity, candidates) in enumerate(zip(new_entities, stored, strict=True)):
            target = next((c for c, score in candidates if score >= threshold and _same_kind(c, entity)), None)
            if target is not None:
                id_map[entity.entity_id] = target.entity_id
                resolved.append(_absorb(target, entity))
                continue
            # The closest kept entity (the first kept on a tie), if it is close enough.
            close = [(-score, kept_at[col]) for col, score in earlier_close.get(row, ()) if col in kept_at]
            if close and _same_kind(kept[best := min(close)[1]], entity):
                id_map[entity.entity_id] = kept[best].entity_id
                kept[best] = _absorb(kept[best], entity)
                continue
            kept_at[row] = len(kept)
            kept.append(entity)
        return kept


def _earlier_close_pairs(
    vectors: np.ndarray, threshold: float, block: int = 1024
) -> dict[int, list[tuple[int, float]]]:
    """Row -> the earlier rows whose vector is within ``threshold`` cosine of it (unit vectors), with
    the cosine: one matrix product per block of rows instead of one product per row against all before it."""
    pairs: dict[int, list[tuple[int, float]]] = {}
    for start in range(0, len(vectors), block):
        stop = min(start + block, len(vectors))
        sims = vectors[start:stop] @ vectors[:stop].T
        rows, cols = np.nonzero(sims >= threshold)
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            if col < start + row:
                pairs.setdefault(start + row, []).append((col, float(sims[row, col])))
    return pairs


def merge_entity(existing: Entity | None, incoming: Entity) -> Entity:
    """What a store keeps when ``incoming`` is written over ``existing`` (both backends use this).

    The first write fixes name and type; aliases accumulate (compared normalised, never the
    name itself); description and embedding only fill gaps.
    """
    if existing is None:
        key = normalise_name(incoming.name)
        aliases = list(dict.fromkeys(a for a in incoming.aliases if normalise_name(a) != key))
        return incoming.model_copy(update={"aliases": _unique_normalised(aliases)})
    merged = _absorb(existing, incoming)
    if merged.embedding is None and incoming.embedding is not None:
        merged = merged.model_copy(update={"embedding": incoming.embedding})
    return merged


# What each document said about an entity, in the order the documents were written: doc id ->
# (name, type, aliases, description). The stored entity is these folded with merge_entity, so
# deleting a document takes back its name, type, aliases and description too, and the entity is
# what a clean ingest of the remaining documents would store. "" collects writes without a document.
EntitySources = dict[str, tuple[str, str, list[str], str]]


def entity_docs(mentions: Sequence[Mention]) -> dict[str, list[str]]:
    """Entity id -> the documents a write's mentions place it in (first seen first)."""
    docs: dict[str, dict[str, None]] = {}
    for mention in mentions:
        docs.setdefault(mention.entity_id, {})[mention.doc_id] = None
    return {entity_id: list(found) for entity_id, found in docs.items()}


def add_source(sources: EntitySources, doc_ids: Sequence[str], incoming: Entity) -> EntitySources:
    """``sources`` with ``incoming`` merged into what each of ``doc_ids`` (or "" when none) said."""
    updated = dict(sources)
    for doc_id in doc_ids or [""]:
        said = updated.get(doc_id)
        previous = None if said is None else Entity(entity_id=incoming.entity_id, name=said[0], type=said[1],
                                                    aliases=said[2], description=said[3])  # fmt: skip
        merged = merge_entity(previous, incoming.model_copy(update={"embedding": None}))
        updated[doc_id] = (merged.name, merged.type, merged.aliases, merged.description)
    return updated


def fold_sources(entity_id: str, sources: EntitySources) -> Entity | None:
    """The entity the documents in ``sources`` describe together (None when none is left); no embedding."""
    folded: Entity | None = None
    for name, type_, aliases, description in sources.values():
        said = Entity(entity_id=entity_id, name=name, type=type_, aliases=aliases, description=description)
        folded = merge_entity(folded, said)
    return folded


def _same_kind(a: Entity, b: Entity) -> bool:
    """Similar names may merge only within a type and with the same numerals ("3rd Earl" is not "4th Earl")."""
    return a.type == b.type and numerals(a.name) == numerals(b.name)


def _unique_normalised(names: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for name in names:
        key = normalise_name(name)
        if key and key not in seen:
            seen.add(key)
            kept.append(name)
    return kept


def _absorb(target: Entity, other: Entity) -> Entity:
    """``target`` with ``other``'s name and aliases added as aliases (names compared normalised)."""
    known = {normalise_name(n) for n in [target.name, *target.aliases]}
    aliases = list(target.aliases)
    for name in [other.name, *other.aliases]:
        key = normalise_name(name)
        if key and key not in known:
            known.add(key)
            aliases.append(name)
    description = target.description or other.description
    return target.model_copy(update={"aliases": aliases, "description": description})


def _merge_by_id(entities: Sequence[Entity]) -> list[Entity]:
    by_id: dict[str, Entity] = {}
    for entity in entities:
        current = by_id.get(entity.entity_id)
        if current is None:
            by_id[entity.entity_id] = entity
        else:
            merged = _absorb(current, entity)
            if merged.embedding is None and entity.embedding is not None:
                merged.embedding = entity.embedding
            if merged.type == "ENTITY" and entity.type != "ENTITY":
                merged.type = entity.type
            by_id[entity.entity_id] = merged
    return list(by_id.values())
