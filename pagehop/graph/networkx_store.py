"""The embedded graph store: a networkx MultiDiGraph in one file in the workspace, no server.

Nodes are entity ids; edges are relations keyed by their type and carry their evidence
(doc_id, chunk_id) -> page. Mentions (entity -> chunk) live beside the graph.

Persistence is a snapshot plus a journal: every write appends one length-prefixed record to
``<file>.journal`` and fsyncs it, so a write costs what it adds, not the size of the graph
(saving the whole graph per document made ingesting 6,119 passages quadratic). Opening replays
the journal over the snapshot; a record torn by a crash is dropped. When the journal outgrows
the snapshot, the snapshot is rewritten atomically (temp file + os.replace) and the journal
emptied. Replaying a record twice changes nothing (upserts merge, deletes are idempotent), so a
crash between those two steps is harmless.

Other processes: every call first looks at the files (two stats) and applies what another
process appended, or reloads after another process rewrote the snapshot, so a running server
sees what ``pagehop ingest`` adds beside it. Appends hold an exclusive ``flock`` on the journal
and reads a shared one, so nobody reads half a record of a live writer. One writing process at a
time, which the workspace's writer lock ensures.
"""

from __future__ import annotations

import fcntl
import functools
import math
import os
import pickle
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Concatenate, ParamSpec, TypeVar

import networkx as nx
import numpy as np

from pagehop.durable import replacing
from pagehop.graph import walks
from pagehop.graph.base import Entity, GraphPath, Mention, Relation, Subgraph
from pagehop.graph.ranking import Matrix, rank_by_pagerank, relation_matrix
from pagehop.graph.resolution import (
    EntitySources,
    add_source,
    entity_docs,
    fold_sources,
    merge_entity,
    normalise_name,
)
from pagehop.graph.validation import validate_write

FORMAT_VERSION = 1
RECORD_HEADER = 8  # bytes of big-endian record length before each journal record
MIN_COMPACT_BYTES = 4 << 20  # below this the journal is never folded into the snapshot
P = ParamSpec("P")
R = TypeVar("R")
EXACT_MATCH_BONUS = 1000.0  # an exact name or alias match outranks any token overlap


def _locked(method: Callable[Concatenate[NetworkxGraphStore, P], R]) -> Callable[Concatenate[NetworkxGraphStore, P], R]:
    """One caller at a time: the server may read while an ingestion writes."""

    @functools.wraps(method)
    def guarded(self: NetworkxGraphStore, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            self._follow_disk()
            return method(self, *args, **kwargs)

    return guarded


class NetworkxGraphStore:
    """``GraphStore`` over networkx; ``path=None`` keeps it in memory only (tests, benchmarks)."""

    def __init__(self, path: Path | None = None, ppr_hops: int = 2, ppr_max_entities: int = 5000) -> None:
        self.path = path
        self._lock = threading.RLock()
        self.ppr_hops = ppr_hops
        self.ppr_max_entities = ppr_max_entities
        self._swept = False  # temp snapshots of a crashed writer are removed before this one first writes
        self._reload()

    def _reset(self) -> None:
        self._graph: nx.MultiDiGraph = nx.MultiDiGraph()
        self._mentions: dict[str, dict[str, Mention]] = defaultdict(dict)  # entity -> chunk -> mention
        self._embeddings: dict[str, np.ndarray] = {}
        self._tokens: dict[str, set[str]] = defaultdict(set)  # name token -> entity ids
        # entity id -> its normalised name and aliases: look-ups compare keys without re-normalising
        self._keys: dict[str, set[str]] = {}
        self._named: dict[str, set[str]] = defaultdict(set)  # normalised name or alias -> entity ids
        # similar_entities' normalised matrix; entities embedded since it was built wait in _unmatrixed
        self._matrix: tuple[list[str], np.ndarray] | None = None
        self._relations: tuple[dict[str, int], Matrix] | None = None  # PageRank's matrix, dropped by every write
        self._unmatrixed: list[str] = []
        self._journal_bytes = 0  # how much of the journal is applied here
        self._snapshot_id: tuple[int, int] | None = None  # (inode, mtime) of the snapshot loaded

    def _reload(self) -> None:
        """Empty state, then the snapshot and journal on disk (if any)."""
        self._reset()
        if self.path is None:
            return
        if self.path.exists():
            self._load(self.path)
            self._snapshot_id = _file_id(self.path)
        self._replay_journal()

    def _follow_disk(self) -> None:
        """Apply what another process wrote since this one last looked."""
        if self.path is None:
            return
        if _file_id(self.path) != self._snapshot_id:
            self._reload()  # compacted elsewhere: snapshot replaced, journal emptied
            return
        size = self._journal_path.stat().st_size if self._journal_path.exists() else 0
        if size < self._journal_bytes:
            self._reload()
        elif size > self._journal_bytes:
            self._replay_journal()

    # ---- writes -------------------------------------------------------------------------------

    @_locked
    def upsert(self, entities: Sequence[Entity], relations: Sequence[Relation], mentions: Sequence[Mention]) -> None:
        validate_write(entities, relations, mentions, known=self._graph.__contains__)
        self._apply_upsert(entities, relations, mentions)
        self._append(("upsert", list(entities), list(relations), list(mentions)))

    def _apply_upsert(
        self, entities: Sequence[Entity], relations: Sequence[Relation], mentions: Sequence[Mention]
    ) -> None:
        self._relations = None
        docs = entity_docs(mentions)
        for entity in entities:
            self._upsert_entity(entity, docs.get(entity.entity_id, []))
        for relation in relations:
            self._upsert_relation(relation)
        for mention in mentions:
            self._mentions[mention.entity_id][mention.chunk_id] = mention

    @_locked
    def delete_document(self, doc_id: str) -> None:
        self._apply_delete(doc_id)
        self._append(("delete", doc_id))

    def _apply_delete(self, doc_id: str) -> None:
        self._relations = None
        touched: set[str] = set()
        for entity_id, by_chunk in list(self._mentions.items()):
            stale = [chunk for chunk, m in by_chunk.items() if m.doc_id == doc_id]
            for chunk in stale:
                del by_chunk[chunk]
            if stale:
                touched.add(entity_id)
            if not by_chunk:
                del self._mentions[entity_id]
        for source, target, key, data in list(self._graph.edges(keys=True, data=True)):
            evidence = data["evidence"]
            stale_keys = [k for k in evidence if k[0] == doc_id]
            if not stale_keys:
                continue
            touched.update((source, target))
            for k in stale_keys:
                del evidence[k]
            if not evidence:
                self._graph.remove_edge(source, target, key=key)
        for entity_id in touched:
            if entity_id not in self._mentions and self._graph.degree(entity_id) == 0:
                self._remove_entity(entity_id)
            elif doc_id in (sources := self._graph.nodes[entity_id].get("sources", {})):
                left = {doc: said for doc, said in sources.items() if doc != doc_id}
                remaining = fold_sources(entity_id, left)
                if remaining is not None:  # else only writes without a document describe it: keep them
                    self._set_entity(remaining, left)

    @_locked
    def close(self) -> None:
        """Nothing is pending: every write is already in the journal."""

    # ---- reads --------------------------------------------------------------------------------

    @_locked
    def get_entity(self, entity_id: str) -> Entity | None:
        return self._entity(entity_id)

    def _entity(self, entity_id: str, with_embedding: bool = True) -> Entity | None:
        if entity_id not in self._graph:
            return None
        data = self._graph.nodes[entity_id]
        embedding = self._embeddings.get(entity_id) if with_embedding else None
        return Entity(
            entity_id=entity_id,
            name=data["name"],
            type=data["type"],
            aliases=list(data["aliases"]),
            description=data["description"],
            embedding=None if embedding is None else embedding.tolist(),
        )

    @_locked
    def get_entities(self, entity_ids: Sequence[str]) -> dict[str, Entity]:
        return {i: entity for i in entity_ids if (entity := self._entity(i)) is not None}

    @_locked
    def entities_named(self, names: Sequence[str]) -> dict[str, Entity]:
        found: dict[str, Entity] = {}
        for name in names:
            holders = self._named.get(normalise_name(name))
            if holders and (entity := self._entity(min(holders), with_embedding=False)) is not None:
                found[name] = entity
        return found

    @_locked
    def find_entities(self, text: str, limit: int = 10) -> list[Entity]:
        """Entities sharing name tokens with ``text`` (IDF-weighted); exact matches first."""
        key = normalise_name(text)
        scores: dict[str, float] = defaultdict(float)
        total = max(1, self._graph.number_of_nodes())
        for token in set(key.split()):
            holders = self._tokens.get(token, set())
            idf = math.log(1 + total / (1 + len(holders)))
            for entity_id in holders:
                scores[entity_id] += idf
        for entity_id in scores:
            if key in self._keys[entity_id]:
                scores[entity_id] += EXACT_MATCH_BONUS
        ranked = sorted(scores, key=lambda e: (-scores[e], e))[:limit]
        return [entity for e in ranked if (entity := self._entity(e, with_embedding=False)) is not None]

    @_locked
    def similar_entities(
        self, embeddings: Sequence[Sequence[float]], limit: int = 10, min_score: float | None = None
    ) -> list[list[tuple[Entity, float]]]:
        ids, matrix = self._embedding_matrix()
        if not ids or not len(embeddings):
            return [[] for _ in embeddings]
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != matrix.shape[1]:
            raise ValueError(
                f"embeddings must have {matrix.shape[1]} dims (the stored vectors), got shape {queries.shape}"
            )
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        sims = (queries / np.where(norms == 0, 1.0, norms)) @ matrix.T
        floor = -np.inf if min_score is None else min_score
        found: list[list[tuple[Entity, float]]] = []
        for row, best in zip(sims, sims.max(axis=1), strict=True):
            if best < floor:  # the usual case when resolving fresh names: nothing to sort or build
                found.append([])
                continue
            top = np.argpartition(-row, limit)[:limit] if limit < len(ids) else np.arange(len(ids))
            top = top[np.lexsort((top, -row[top]))]  # best first, ties by id order
            found.append(
                [
                    (entity, float(row[i]))
                    for i in top
                    if row[i] >= floor and (entity := self._entity(ids[i], with_embedding=False)) is not None
                ]
            )
        return found

    @_locked
    def neighbours(self, entity_id: str, hops: int = 1, limit: int = 50) -> list[GraphPath]:
        return walks.neighbour_paths(self._graph, entity_id, hops, limit)

    @_locked
    def paths(self, source_id: str, target_id: str, max_hops: int = 3, limit: int = 10) -> list[GraphPath]:
        return walks.simple_paths(self._graph, source_id, target_id, max_hops, limit)

    @_locked
    def subgraph(self, seed_ids: Sequence[str], hops: int = 2, limit: int = 500) -> Subgraph:
        selected = self._neighbourhood(seed_ids, hops, limit)
        entities = [e for n in selected if (e := self._entity(n)) is not None]
        return Subgraph(entities=entities, relations=walks.relations_in(self._graph, selected))

    @_locked
    def personalized_pagerank(
        self, seeds: Mapping[str, float], top_k: int = 20
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        selected = self._neighbourhood(list(seeds), self.ppr_hops, self.ppr_max_entities)
        index, adjacency = self._relation_matrix()
        rows = np.array([index[e] for e in selected], dtype=np.int64)
        # an entity's mentions are keyed by chunk id: read in place, not copied for every entity
        return rank_by_pagerank(selected, adjacency[rows][:, rows], self._mentions, seeds, top_k)

    @_locked
    def chunk_mention_counts(self, entity_ids: Sequence[str]) -> dict[str, int]:
        return {e: len(self._mentions.get(e, {})) for e in entity_ids if e in self._graph}

    @_locked
    def stats(self) -> dict[str, int]:
        return {
            "entities": self._graph.number_of_nodes(),
            "relations": self._graph.number_of_edges(),
            "mentions": sum(len(m) for m in self._mentions.values()),
        }

    # ---- internals ----------------------------------------------------------------------------

    def _neighbourhood(self, seed_ids: Sequence[str], hops: int, limit: int) -> list[str]:
        fetch = walks.local_fetcher(self._graph)
        return walks.bounded_neighbourhood(fetch, seed_ids, self._graph.__contains__, hops, limit)

    def _upsert_entity(self, entity: Entity, doc_ids: Sequence[str]) -> None:
        stored = self._entity(entity.entity_id, with_embedding=False)
        known: EntitySources | None = None if stored is None else self._graph.nodes[entity.entity_id].get("sources")
        if stored is None:
            sources: EntitySources = {}
        else:  # a graph written before sources were kept: what it holds counts as written without a document
            sources = known or {"": (stored.name, stored.type, stored.aliases, stored.description)}
        sources = add_source(sources, doc_ids, entity)
        new_docs = list(doc_ids) or [""]
        if stored is not None and known and not any(doc in known for doc in new_docs):
            # Only new documents: the stored entity is the fold of what the others said, and a left fold
            # extends by the new ones. Folding every document again made a name found in k documents cost
            # k² over an ingest (a hub such as a country is in thousands of passages).
            merged: Entity | None = stored
            for doc in new_docs:
                name, type_, aliases, description = sources[doc]
                said = Entity(
                    entity_id=entity.entity_id, name=name, type=type_, aliases=aliases, description=description
                )
                merged = merge_entity(merged, said)
        else:
            merged = fold_sources(entity.entity_id, sources)
        assert merged is not None
        self._set_entity(merged, sources)
        if entity.embedding is not None and entity.entity_id not in self._embeddings:
            self._embeddings[entity.entity_id] = np.asarray(entity.embedding, dtype=np.float32)
            self._unmatrixed.append(entity.entity_id)

    def _set_entity(self, entity: Entity, sources: EntitySources) -> None:
        """Store ``entity``'s attributes (and what each document said) and index exactly its names."""
        self._unindex_names(entity.entity_id)
        self._graph.add_node(
            entity.entity_id,
            name=entity.name,
            type=entity.type,
            aliases=entity.aliases,
            description=entity.description,
            sources=sources,
        )
        self._index_names(entity.entity_id, [entity.name, *entity.aliases])

    def _upsert_relation(self, relation: Relation) -> None:
        source, target, key = relation.source_id, relation.target_id, relation.type
        if not self._graph.has_edge(source, target, key=key):
            self._graph.add_edge(source, target, key=key, description=relation.description, evidence={})
        data = self._graph.edges[source, target, key]
        data["evidence"][(relation.doc_id, relation.chunk_id)] = relation.page
        data["description"] = data["description"] or relation.description

    def _index_names(self, entity_id: str, names: Sequence[str]) -> None:
        keys = self._keys.setdefault(entity_id, set())
        for key in map(normalise_name, names):
            if key not in keys:
                keys.add(key)
                self._named[key].add(entity_id)
                for token in key.split():
                    self._tokens[token].add(entity_id)

    def _unindex_names(self, entity_id: str) -> None:
        for key in self._keys.pop(entity_id, set()):
            self._named[key].discard(entity_id)
            if not self._named[key]:
                del self._named[key]
            for token in key.split():
                self._tokens[token].discard(entity_id)
                if not self._tokens[token]:
                    del self._tokens[token]

    def _remove_entity(self, entity_id: str) -> None:
        self._unindex_names(entity_id)
        self._graph.remove_node(entity_id)
        if self._embeddings.pop(entity_id, None) is not None:
            self._matrix = None

    def _relation_matrix(self) -> tuple[dict[str, int], Matrix]:
        """Every entity's row, and the relations between entities counted (``ranking.relation_matrix``);
        built by the first PageRank after a write: listing a neighbourhood's relations in Python on each
        query took a quarter of the graph channel's time on the 2Wiki graph (py-spy)."""
        if self._relations is None:
            edges = ((source, target) for source, target, _ in self._graph.edges(keys=True))
            nodes, adjacency = relation_matrix(self._graph.nodes, edges)
            self._relations = ({node: i for i, node in enumerate(nodes)}, adjacency)
        return self._relations

    def _embedding_matrix(self) -> tuple[list[str], np.ndarray]:
        """Rebuilt after a removal; otherwise new rows are appended (a rebuild per ingested document
        would copy every stored vector each time)."""
        if self._matrix is None:
            self._matrix, self._unmatrixed = ([], np.zeros((0, 0), dtype=np.float32)), list(self._embeddings)
        if self._unmatrixed:
            ids, matrix = self._matrix
            rows = np.stack([self._embeddings[i] for i in self._unmatrixed])
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            rows = rows / np.where(norms == 0, 1.0, norms)
            self._matrix = (ids + self._unmatrixed, np.vstack([matrix, rows]) if ids else rows)
            self._unmatrixed = []
        return self._matrix

    @property
    def _journal_path(self) -> Path:
        assert self.path is not None
        return self.path.with_name(self.path.name + ".journal")

    @contextmanager
    def _journal_lock(self) -> Iterator[IO[bytes]]:
        """The journal, locked against other writers, with what they appended since applied here."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._journal_path.open("a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            if not self._swept:  # snapshots are written under this lock: a temp file here is a dead writer's
                for stale in self.path.parent.glob(f"*{self.path.name}*.tmp"):  # also an older pagehop's names
                    stale.unlink(missing_ok=True)
                self._swept = True
            end = os.fstat(handle.fileno()).st_size
            if end > self._journal_bytes:  # another process appended since we looked: apply it first
                handle.seek(self._journal_bytes)
                self._apply_records(handle.read())
            elif end < self._journal_bytes:
                self._snapshot_id = None  # compacted elsewhere: reload at the next call
            self._journal_bytes = end
            yield handle

    def _append(self, record: tuple[Any, ...]) -> None:
        if self.path is None:
            return
        payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        with self._journal_lock() as handle:
            handle.write(len(payload).to_bytes(RECORD_HEADER, "big") + payload)
            handle.flush()
            os.fsync(handle.fileno())
            self._journal_bytes += RECORD_HEADER + len(payload)
            snapshot = self.path.stat().st_size if self.path.exists() else 0
            if self._journal_bytes > max(MIN_COMPACT_BYTES, snapshot):
                self._compact()

    def _compact(self) -> None:
        """Fold the journal into the snapshot (under the journal's lock)."""
        self._save()
        self._journal_path.unlink()
        self._journal_bytes = 0

    @_locked
    def revector_entities(self, vector_of: Callable[[str], Sequence[float]], dims: int) -> int:
        """Rewritten vectors are not journaled (a record of every vector would be as large as the snapshot):
        they go straight into a new snapshot, written under the journal's lock from a state that holds
        every write (another process's compaction in between means reading the disk again first)."""
        while True:
            stale = [e for e in self._graph.nodes if len(self._embeddings.get(e, ())) != dims]
            if not stale:
                return 0
            if self.path is None:
                self._set_vectors(stale, vector_of)
                return len(stale)
            with self._journal_lock():
                if self._snapshot_id == _file_id(self.path):
                    self._set_vectors(stale, vector_of)
                    self._compact()
                    return len(stale)
            self._reload()

    def _set_vectors(self, entity_ids: Sequence[str], vector_of: Callable[[str], Sequence[float]]) -> None:
        for entity_id in entity_ids:
            self._embeddings[entity_id] = np.asarray(vector_of(self._graph.nodes[entity_id]["name"]), np.float32)
        self._matrix, self._unmatrixed = None, []

    def _replay_journal(self) -> None:
        """Apply the journal from ``_journal_bytes`` on; cut off a record torn by a crashed writer."""
        if not self._journal_path.exists():
            return
        with self._journal_path.open("r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)  # a live writer finishes its record first
            handle.seek(self._journal_bytes)
            data = handle.read()
            applied = self._apply_records(data)
            if applied < len(data):
                handle.truncate(self._journal_bytes + applied)
        self._journal_bytes += applied

    def _apply_records(self, data: bytes) -> int:
        """Apply the whole records at the start of ``data``; returns how many bytes they took."""
        offset = 0
        while offset + RECORD_HEADER <= len(data):
            end = offset + RECORD_HEADER + int.from_bytes(data[offset : offset + RECORD_HEADER], "big")
            if end > len(data):
                break  # torn by a crash mid-append
            try:
                record = pickle.loads(data[offset + RECORD_HEADER : end])  # the workspace's own journal
            except (pickle.UnpicklingError, EOFError, ValueError):
                break
            if record[0] == "upsert":
                self._apply_upsert(*record[1:])
            else:
                self._apply_delete(record[1])
            offset = end
        return offset

    def _save(self) -> None:
        if self.path is None:
            return
        state: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "graph": self._graph,
            "mentions": dict(self._mentions),
            "embeddings": self._embeddings,
        }
        with replacing(self.path) as handle:
            pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        self._snapshot_id = _file_id(self.path)

    def _load(self, path: Path) -> None:
        try:
            with path.open("rb") as handle:
                state = pickle.load(handle)  # the workspace's own file, written by _save
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            raise ValueError(f"{path} is not a readable pagehop graph file: {exc}") from exc
        if not isinstance(state, dict) or state.get("version") != FORMAT_VERSION:
            version = state.get("version") if isinstance(state, dict) else None
            raise ValueError(f"{path} holds graph format {version}, expected {FORMAT_VERSION}")
        self._graph = state["graph"]
        self._mentions = defaultdict(dict, state["mentions"])
        self._embeddings = state["embeddings"]
        for entity_id, data in self._graph.nodes(data=True):
            self._index_names(entity_id, [data["name"], *data["aliases"]])


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns
