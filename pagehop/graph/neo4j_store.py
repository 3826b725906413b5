"""The server graph store: Neo4j 5.26+ through the official driver (bolt:// or neo4j:// routing).

Layout, all labels prefixed by ``namespace`` (so several workspaces or test runs share one
database without touching each other's data):

    (:<ns>Entity {id, name, type, aliases, alias_text, description, embedding})
    (:<ns>Entity)-[:<RELATION_TYPE> {description, ev_docs, ev_chunks, ev_pages}]->(:<ns>Entity)
    (:<ns>Entity)-[:MENTIONED_IN]->(:<ns>Chunk {id, doc_id, page})

A relation's evidence is three parallel lists (doc, chunk, page; page 0 = unknown). Values always
travel as parameters; the only names formatted into Cypher are labels, index names and relation
types, each checked against a strict identifier pattern first. Writes are batched
(UNWIND + MERGE) and idempotent. Community Edition has no GDS, so PageRank pulls the bounded
subgraph into Python (``pagehop.graph.ranking``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import networkx as nx
from neo4j import Driver, GraphDatabase, ManagedTransaction, RoutingControl

from pagehop.graph import walks
from pagehop.graph.base import Entity, GraphPath, GraphUnavailable, Mention, Relation, Subgraph
from pagehop.graph.breaker import UNREACHABLE, CircuitBreaker
from pagehop.graph.ranking import personalized_pagerank
from pagehop.graph.resolution import EntitySources, add_source, entity_docs, fold_sources, normalise_name
from pagehop.graph.validation import RELATION_TYPE, validate_write

BATCH = 1000
_NAMESPACE = re.compile(r"^([A-Za-z][A-Za-z0-9_]{0,40})?$")
MENTIONED_IN = "MENTIONED_IN"
VECTOR_OVERSAMPLING = 4
VECTOR_MIN_CANDIDATES = 40
NO_PAGE = 0  # Neo4j lists cannot hold null
# The driver retries a transaction on a lost server for 30 s by default (66 s measured against a closed
# port): enough for a cluster's leader change, far too long for a question waiting on a stopped server.
RETRY_SECONDS = 5.0
OUTAGE_COOL_DOWN_S = 30.0  # graph.outage_cool_down_s: how long a failed server is skipped before a probe


def unreachable_message(uri: str, exc: BaseException) -> str:
    """What to tell a user whose configured Neo4j does not answer, and what to do about it."""
    return (
        f"Neo4j at {uri} does not answer ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
        "start the server (scripts/neo4j-local start for a local one) or check neo4j.uri / PAGEHOP_NEO4J__URI, "
        "or set graph_store = 'networkx' to use the embedded graph"
    )


class Neo4jGraphStore:
    def __init__(
        self,
        uri: str,
        user: str,
        password: str,
        database: str = "neo4j",
        namespace: str = "",
        ppr_hops: int = 2,
        ppr_max_entities: int = 5000,
        embedding_dims: int | None = None,
        outage_cool_down_s: float = OUTAGE_COOL_DOWN_S,
    ) -> None:
        if not _NAMESPACE.match(namespace):
            raise ValueError(f"namespace {namespace!r} must be letters, digits and _ (starting with a letter)")
        self.database = database
        self.ppr_hops = ppr_hops
        self.ppr_max_entities = ppr_max_entities
        self.entity_label = f"{namespace}Entity"
        self.chunk_label = f"{namespace}Chunk"
        self._names = {
            "entity_id": f"{namespace}entity_id",
            "chunk_id": f"{namespace}chunk_id",
            "chunk_doc": f"{namespace}chunk_doc",
            "fulltext": f"{namespace}entity_names",
            "vector": f"{namespace}entity_embedding",
        }
        self.uri = uri
        # A connection attempt is bounded too (30 s by default): a healthy server answers in milliseconds.
        self._driver: Driver = GraphDatabase.driver(
            uri, auth=(user, password), max_transaction_retry_time=RETRY_SECONDS, connection_timeout=RETRY_SECONDS
        )
        self.breaker = CircuitBreaker(outage_cool_down_s, probe=self._driver.verify_connectivity)
        try:
            self._driver.verify_connectivity()
        except UNREACHABLE as exc:
            self._driver.close()
            raise GraphUnavailable(unreachable_message(uri, exc)) from exc
        self._ensure_schema()
        self._dims = self._vector_index_dims()
        if self._dims is None and embedding_dims is not None:
            self._create_vector_index(embedding_dims)

    # ---- schema -------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        e, c, n = self.entity_label, self.chunk_label, self._names
        statements = [
            f"CREATE CONSTRAINT {n['entity_id']} IF NOT EXISTS FOR (e:{e}) REQUIRE e.id IS UNIQUE",
            f"CREATE CONSTRAINT {n['chunk_id']} IF NOT EXISTS FOR (c:{c}) REQUIRE c.id IS UNIQUE",
            f"CREATE INDEX {n['chunk_doc']} IF NOT EXISTS FOR (c:{c}) ON (c.doc_id)",
            f"CREATE FULLTEXT INDEX {n['fulltext']} IF NOT EXISTS FOR (e:{e}) ON EACH [e.name, e.alias_text]",
        ]
        for statement in statements:
            self._driver.execute_query(statement, database_=self.database)
        self._driver.execute_query("CALL db.awaitIndexes(120)", database_=self.database)

    def _vector_index_dims(self) -> int | None:
        records, _, _ = self._driver.execute_query(
            "SHOW VECTOR INDEXES YIELD name, options WHERE name = $name RETURN options",
            name=self._names["vector"],
            database_=self.database,
        )
        if not records:
            return None
        return int(records[0]["options"]["indexConfig"]["vector.dimensions"])

    def _create_vector_index(self, dims: int) -> None:
        if not 0 < dims <= 4096:
            raise ValueError(f"embedding size {dims} is outside Neo4j's 1..4096")
        self._driver.execute_query(
            f"CREATE VECTOR INDEX {self._names['vector']} IF NOT EXISTS "
            f"FOR (e:{self.entity_label}) ON e.embedding "
            f"OPTIONS {{indexConfig: {{`vector.dimensions`: {int(dims)}, "
            "`vector.similarity_function`: 'cosine', `vector.quantization.enabled`: false}}",
            database_=self.database,
        )
        self._driver.execute_query(
            "CALL db.awaitIndex($name, 120)", name=self._names["vector"], database_=self.database
        )
        self._dims = dims

    def clear(self) -> None:
        """Delete this namespace's nodes and relations; constraints and indexes stay."""
        # CALL ... IN TRANSACTIONS needs an auto-commit transaction: session.run, not execute_query.
        with self._driver.session(database=self.database) as session:
            for label in (self.entity_label, self.chunk_label):
                session.run(f"MATCH (n:{label}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 5000 ROWS").consume()

    def drop_all(self) -> None:
        """Delete this namespace's nodes, constraints and indexes (tests and benchmarks clean up)."""
        self.clear()
        for key in ("entity_id", "chunk_id"):
            self._driver.execute_query(f"DROP CONSTRAINT {self._names[key]} IF EXISTS", database_=self.database)
        for key in ("chunk_doc", "fulltext", "vector"):
            self._driver.execute_query(f"DROP INDEX {self._names[key]} IF EXISTS", database_=self.database)
        self._dims = None

    # ---- writes -------------------------------------------------------------------------------

    def upsert(self, entities: Sequence[Entity], relations: Sequence[Relation], mentions: Sequence[Mention]) -> None:
        batch_ids = {e.entity_id for e in entities}
        referenced = {r.source_id for r in relations} | {r.target_id for r in relations}
        referenced |= {m.entity_id for m in mentions}
        stored = self._existing_ids(sorted(referenced - batch_ids))
        validate_write(entities, relations, mentions, known=stored.__contains__)
        dims = next((len(e.embedding) for e in entities if e.embedding is not None), None)
        if dims is not None and self._dims is not None and dims != self._dims:
            raise ValueError(f"embeddings have {dims} dims, the store's vector index holds {self._dims}")
        if dims is not None and self._dims is None:
            self._create_vector_index(dims)
        rows = self._merged_entity_rows(entities, mentions)
        with self.breaker.guard(), self._driver.session(database=self.database) as session:
            session.execute_write(self._write_all, rows, relations, mentions)

    def _write_all(
        self,
        tx: ManagedTransaction,
        entity_rows: list[dict[str, Any]],
        relations: Sequence[Relation],
        mentions: Sequence[Mention],
    ) -> None:
        """One transaction: a failure midway stores nothing."""
        e, c = self.entity_label, self.chunk_label
        for batch in _batches(entity_rows):
            tx.run(
                f"UNWIND $rows AS row MERGE (e:{e} {{id: row.id}}) "
                "SET e.name = row.name, e.type = row.type, e.aliases = row.aliases, "
                "e.alias_text = row.alias_text, e.description = row.description, e.sources = row.sources "
                "WITH e, row WHERE row.embedding IS NOT NULL AND e.embedding IS NULL "
                "SET e.embedding = row.embedding",
                rows=batch,
            ).consume()
        by_type: dict[str, dict[tuple[str, str, str, str], dict[str, Any]]] = defaultdict(dict)
        for r in relations:
            key = (r.source_id, r.target_id, r.doc_id, r.chunk_id)
            by_type[r.type][key] = {
                "source": r.source_id,
                "target": r.target_id,
                "description": r.description,
                "doc": r.doc_id,
                "chunk": r.chunk_id,
                "page": r.page or NO_PAGE,
            }
        for rel_type, keyed in by_type.items():
            assert RELATION_TYPE.match(rel_type)  # validate_write checked it; this guards the f-string
            for batch in _batches(list(keyed.values())):
                tx.run(
                    f"UNWIND $rows AS row MATCH (a:{e} {{id: row.source}}), (b:{e} {{id: row.target}}) "
                    f"MERGE (a)-[r:`{rel_type}`]->(b) "
                    "ON CREATE SET r.description = row.description, r.ev_docs = [], r.ev_chunks = [], "
                    "r.ev_pages = [] "
                    "WITH r, row WHERE NONE(i IN range(0, size(r.ev_docs) - 1) "
                    "  WHERE r.ev_docs[i] = row.doc AND r.ev_chunks[i] = row.chunk) "
                    "SET r.ev_docs = r.ev_docs + row.doc, r.ev_chunks = r.ev_chunks + row.chunk, "
                    "r.ev_pages = r.ev_pages + row.page, "
                    "r.description = CASE WHEN r.description = '' THEN row.description "
                    "ELSE r.description END",
                    rows=batch,
                ).consume()
        mention_rows = {
            (m.entity_id, m.chunk_id): {
                "entity": m.entity_id,
                "chunk": m.chunk_id,
                "doc": m.doc_id,
                "page": m.page or NO_PAGE,
            }
            for m in mentions
        }
        for batch in _batches(list(mention_rows.values())):
            tx.run(
                f"UNWIND $rows AS row MATCH (e:{e} {{id: row.entity}}) "
                f"MERGE (c:{c} {{id: row.chunk}}) ON CREATE SET c.doc_id = row.doc, c.page = row.page "
                f"MERGE (e)-[:{MENTIONED_IN}]->(c)",
                rows=batch,
            ).consume()

    def delete_document(self, doc_id: str) -> None:
        with self.breaker.guard(), self._driver.session(database=self.database) as session:
            session.execute_write(self._delete_document, doc_id)

    def _delete_document(self, tx: ManagedTransaction, doc_id: str) -> None:
        e, c = self.entity_label, self.chunk_label
        touched = set(
            tx.run(
                f"MATCH (e:{e})-[:{MENTIONED_IN}]->(:{c} {{doc_id: $doc}}) RETURN DISTINCT e.id AS id",
                doc=doc_id,
            ).value("id")
        )
        tx.run(f"MATCH (c:{c} {{doc_id: $doc}}) DETACH DELETE c", doc=doc_id).consume()
        ends = tx.run(
            f"MATCH (a:{e})-[r]->(b:{e}) WHERE $doc IN r.ev_docs "
            "WITH a, b, r, [i IN range(0, size(r.ev_docs) - 1) WHERE r.ev_docs[i] <> $doc] AS keep "
            "SET r.ev_docs = [i IN keep | r.ev_docs[i]], r.ev_chunks = [i IN keep | r.ev_chunks[i]], "
            "r.ev_pages = [i IN keep | r.ev_pages[i]] "
            "WITH a, b, r, size(keep) AS left "
            "CALL (r, left) { WITH r, left WHERE left = 0 DELETE r } "
            "RETURN a.id AS a, b.id AS b",
            doc=doc_id,
        )
        for record in ends:
            touched.update((record["a"], record["b"]))
        tx.run(f"UNWIND $ids AS id MATCH (e:{e} {{id: id}}) WHERE NOT (e)--() DELETE e", ids=sorted(touched)).consume()
        # The survivors lose what this document said about them (name, type, aliases, description).
        updates = []
        for record in tx.run(
            f"UNWIND $ids AS id MATCH (e:{e} {{id: id}}) RETURN e.id AS id, e.sources AS sources", ids=sorted(touched)
        ):
            sources = _parse_sources(record["sources"])
            if doc_id not in sources:
                continue
            left = {doc: said for doc, said in sources.items() if doc != doc_id}
            remaining = fold_sources(record["id"], left)
            if remaining is not None:
                updates.append(_entity_row(remaining, left))
        for batch in _batches(updates):
            tx.run(
                f"UNWIND $rows AS row MATCH (e:{e} {{id: row.id}}) SET e.name = row.name, e.type = row.type, "
                "e.aliases = row.aliases, e.alias_text = row.alias_text, e.description = row.description, "
                "e.sources = row.sources",
                rows=batch,
            ).consume()

    def close(self) -> None:
        self._driver.close()

    # ---- reads --------------------------------------------------------------------------------

    def _read(self, cypher: str, **params: Any) -> list[Any]:
        with self.breaker.guard():
            records, _, _ = self._driver.execute_query(
                cypher, params, database_=self.database, routing_=RoutingControl.READ
            )
        return records

    def _existing_ids(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return {
            r["id"]
            for r in self._read(
                f"UNWIND $ids AS id MATCH (e:{self.entity_label} {{id: id}}) RETURN e.id AS id", ids=ids
            )
        }

    def _entities(self, ids: Sequence[str]) -> dict[str, Entity]:
        records = self._read(f"UNWIND $ids AS id MATCH (e:{self.entity_label} {{id: id}}) RETURN e", ids=list(ids))
        return {r["e"]["id"]: _entity(r["e"]) for r in records}

    def _merged_entity_rows(self, entities: Sequence[Entity], mentions: Sequence[Mention]) -> list[dict[str, Any]]:
        ids = sorted({e.entity_id for e in entities})
        stored: dict[str, EntitySources] = {}
        for record in self._read(
            f"UNWIND $ids AS id MATCH (e:{self.entity_label} {{id: id}}) "
            "RETURN e.id AS id, e.sources AS sources, e {.name, .type, .aliases, .description} AS said",
            ids=ids,
        ):
            said = record["said"]  # a node written before sources were kept: its attributes, without a document
            stored[record["id"]] = _parse_sources(record["sources"]) or {
                "": (said["name"], said["type"], list(said["aliases"] or []), said["description"] or "")
            }
        docs = entity_docs(mentions)
        sources: dict[str, EntitySources] = {}
        embeddings: dict[str, list[float] | None] = {}
        for entity in entities:
            known = sources.get(entity.entity_id, stored.get(entity.entity_id, {}))
            sources[entity.entity_id] = add_source(known, docs.get(entity.entity_id, []), entity)
            if embeddings.get(entity.entity_id) is None:
                embeddings[entity.entity_id] = entity.embedding  # the store keeps an embedding it already has
        rows = []
        for entity_id, said_by in sources.items():
            merged = fold_sources(entity_id, said_by)
            assert merged is not None
            rows.append({**_entity_row(merged, said_by), "embedding": embeddings[entity_id]})
        return rows

    def get_entity(self, entity_id: str) -> Entity | None:
        return self._entities([entity_id]).get(entity_id)

    def get_entities(self, entity_ids: Sequence[str]) -> dict[str, Entity]:
        return self._entities(list(dict.fromkeys(entity_ids))) if entity_ids else {}

    def entities_named(self, names: Sequence[str]) -> dict[str, Entity]:
        """The full-text index ranks an exact normalised match first (``find_entities``); one query per name."""
        found: dict[str, Entity] = {}
        for name in dict.fromkeys(names):
            key = normalise_name(name)
            for candidate in self.find_entities(name, limit=5) if key else []:
                if any(normalise_name(n) == key for n in [candidate.name, *candidate.aliases]):
                    found[name] = candidate
                    break
        return found

    def find_entities(self, text: str, limit: int = 10) -> list[Entity]:
        """Lucene full-text over names and aliases; an exact normalised match is moved to the front."""
        key = normalise_name(text)
        tokens = key.split()
        if not tokens:
            return []
        # Normalised tokens hold only word characters, so nothing needs Lucene escaping.
        lucene = f'"{" ".join(tokens)}"^4 OR ' + " OR ".join(tokens)
        records = self._read(
            "CALL db.index.fulltext.queryNodes($index, $query, {limit: $fetch}) YIELD node, score "
            f"RETURN {_WITHOUT_EMBEDDING} AS node, score",
            index=self._names["fulltext"],
            query=lucene,
            fetch=max(limit * 3, 20),
        )
        scored = []
        for record in records:
            entity = _entity(record["node"])
            exact = key in {normalise_name(n) for n in [entity.name, *entity.aliases]}
            scored.append((not exact, -record["score"], entity.entity_id, entity))
        scored.sort(key=lambda t: t[:3])
        return [t[3] for t in scored[:limit]]

    def revector_entities(self, vector_of: Callable[[str], Sequence[float]], dims: int) -> int:
        """A vector index holds one length: one of another length is dropped first and built again over the
        new vectors. Vectors are written a batch per transaction; after a crash the rest are found again."""
        with self.breaker.guard():
            records, _, _ = self._driver.execute_query(
                f"MATCH (e:{self.entity_label}) WHERE e.embedding IS NULL OR size(e.embedding) <> $dims "
                "RETURN e.id AS id, e.name AS name",
                dims=dims,
                database_=self.database,
                routing_=RoutingControl.READ,
            )
            if self._dims not in (None, dims):
                self._driver.execute_query(f"DROP INDEX {self._names['vector']} IF EXISTS", database_=self.database)
                self._dims = None
            rows = [{"id": r["id"], "embedding": list(map(float, vector_of(r["name"])))} for r in records]
            for batch in _batches(rows):
                self._driver.execute_query(
                    f"UNWIND $rows AS row MATCH (e:{self.entity_label} {{id: row.id}}) SET e.embedding = row.embedding",
                    rows=batch,
                    database_=self.database,
                )
            if rows and self._dims is None:
                self._create_vector_index(dims)
        return len(rows)

    def similar_entities(
        self, embeddings: Sequence[Sequence[float]], limit: int = 10, min_score: float | None = None
    ) -> list[list[tuple[Entity, float]]]:
        if self._dims is None or not len(embeddings):
            return [[] for _ in embeddings]
        if any(len(vector) != self._dims for vector in embeddings):
            raise ValueError(f"embeddings must have {self._dims} dims, the dimension of the stored vectors")
        records = self._read(
            "UNWIND range(0, size($vectors) - 1) AS i "
            "CALL (i) { CALL db.index.vector.queryNodes($index, $k, $vectors[i]) YIELD node, score "
            "WHERE score >= $floor RETURN node, score } "
            f"RETURN i, {_WITHOUT_EMBEDDING} AS node, score",
            index=self._names["vector"],
            # The index is approximate (HNSW) and misses true neighbours on small or heavily rewritten
            # graphs; asking for more candidates than wanted widens its search.
            k=max(limit * VECTOR_OVERSAMPLING, VECTOR_MIN_CANDIDATES),
            vectors=[list(map(float, vector)) for vector in embeddings],
            # Neo4j reports cosine as (1 + cos) / 2: the floor in its units (nothing when none is given).
            floor=-1.0 if min_score is None else (1.0 + min_score) / 2.0,
        )
        found: list[list[tuple[Entity, float]]] = [[] for _ in embeddings]
        for r in records:  # back to the plain cosine, as the embedded store reports it
            found[r["i"]].append((_entity(r["node"]), 2.0 * r["score"] - 1.0))
        return [sorted(hits, key=lambda hit: -hit[1])[:limit] for hits in found]

    def neighbours(self, entity_id: str, hops: int = 1, limit: int = 50) -> list[GraphPath]:
        local = self._local_graph([entity_id], hops, max(limit * 10, 500))
        return walks.neighbour_paths(local, entity_id, hops, limit)

    def paths(self, source_id: str, target_id: str, max_hops: int = 3, limit: int = 10) -> list[GraphPath]:
        local = self._local_graph([source_id], max_hops, self.ppr_max_entities)
        return walks.simple_paths(local, source_id, target_id, max_hops, limit)

    def subgraph(self, seed_ids: Sequence[str], hops: int = 2, limit: int = 500) -> Subgraph:
        selected = self._neighbourhood(seed_ids, hops, limit)
        entities = self._entities(selected)
        local = self._graph_of(selected)
        return Subgraph(
            entities=[entities[i] for i in selected if i in entities],
            relations=walks.relations_in(local, selected),
        )

    def personalized_pagerank(
        self, seeds: Mapping[str, float], top_k: int = 20
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        selected = self._neighbourhood(list(seeds), self.ppr_hops, self.ppr_max_entities)
        local = self._graph_of(selected)
        chunk_mentions: dict[str, list[str]] = defaultdict(list)
        for record in self._read(
            f"UNWIND $ids AS id MATCH (:{self.entity_label} {{id: id}})-[:{MENTIONED_IN}]->(c:{self.chunk_label}) "
            "RETURN id, c.id AS chunk",
            ids=selected,
        ):
            chunk_mentions[record["id"]].append(record["chunk"])
        return personalized_pagerank(selected, walks.edges_among(local, selected), chunk_mentions, seeds, top_k)

    def chunk_mention_counts(self, entity_ids: Sequence[str]) -> dict[str, int]:
        records = self._read(
            f"UNWIND $ids AS id MATCH (e:{self.entity_label} {{id: id}}) "
            f"RETURN id, COUNT {{ (e)-[:{MENTIONED_IN}]->() }} AS n",
            ids=list(entity_ids),
        )
        return {r["id"]: r["n"] for r in records}

    def stats(self) -> dict[str, int]:
        e, c = self.entity_label, self.chunk_label
        entities = self._read(f"MATCH (e:{e}) RETURN count(e) AS n")[0]["n"]
        relations = self._read(f"MATCH (:{e})-[r]->(:{e}) RETURN count(r) AS n")[0]["n"]
        mentions = self._read(f"MATCH (:{e})-[r:{MENTIONED_IN}]->(:{c}) RETURN count(r) AS n")[0]["n"]
        return {"entities": entities, "relations": relations, "mentions": mentions}

    def driver(self) -> Driver:
        """The driver, for the read-only Cypher tool."""
        return self._driver

    # ---- pulling neighbourhoods into Python -----------------------------------------------------

    def _fetch_neighbours(self, frontier: list[str]) -> dict[str, set[str]]:
        e = self.entity_label
        records = self._read(
            f"UNWIND $ids AS id MATCH (a:{e} {{id: id}})-[r]-(b:{e}) RETURN id, collect(DISTINCT b.id) AS ns",
            ids=frontier,
        )
        return {r["id"]: set(r["ns"]) for r in records}

    def _neighbourhood(self, seed_ids: Sequence[str], hops: int, limit: int) -> list[str]:
        known = self._existing_ids(list(dict.fromkeys(seed_ids)))
        return walks.bounded_neighbourhood(self._fetch_neighbours, seed_ids, known.__contains__, hops, limit)

    def _local_graph(self, seed_ids: Sequence[str], hops: int, limit: int) -> nx.MultiDiGraph:
        return self._graph_of(self._neighbourhood(seed_ids, hops, limit))

    def _graph_of(self, ids: Sequence[str]) -> nx.MultiDiGraph:
        """The entities ``ids`` and the relations among them as a walkable MultiDiGraph."""
        e = self.entity_label
        graph = nx.MultiDiGraph()
        for record in self._read(
            f"UNWIND $ids AS id MATCH (e:{e} {{id: id}}) RETURN id, e.name AS name", ids=list(ids)
        ):
            graph.add_node(record["id"], name=record["name"])
        for record in self._read(
            f"UNWIND $ids AS id MATCH (a:{e} {{id: id}})-[r]->(b:{e}) WHERE b.id IN $ids "
            "RETURN a.id AS a, b.id AS b, type(r) AS type, r.description AS description, "
            "r.ev_docs AS docs, r.ev_chunks AS chunks, r.ev_pages AS pages",
            ids=list(ids),
        ):
            evidence = {
                (doc, chunk): (page or None)
                for doc, chunk, page in zip(record["docs"], record["chunks"], record["pages"], strict=True)
            }
            graph.add_edge(
                record["a"], record["b"], key=record["type"], description=record["description"], evidence=evidence
            )
        return graph


# Look-ups return names, not vectors: decoding 384 floats per candidate in Python dominated ingestion.
_WITHOUT_EMBEDDING = "node {.id, .name, .type, .aliases, .description}"


def _entity(node: Any) -> Entity:
    embedding = node.get("embedding")
    return Entity(
        entity_id=node["id"],
        name=node["name"],
        type=node["type"],
        aliases=list(node.get("aliases") or []),
        description=node.get("description") or "",
        embedding=None if embedding is None else list(embedding),
    )


def _entity_row(entity: Entity, sources: EntitySources) -> dict[str, Any]:
    return {
        "id": entity.entity_id,
        "name": entity.name,
        "type": entity.type,
        "aliases": entity.aliases,
        "alias_text": " | ".join(entity.aliases),
        "description": entity.description,
        "sources": json.dumps([[doc, *said] for doc, said in sources.items()]),
    }


def _parse_sources(stored: str | None) -> EntitySources:
    """``e.sources`` (JSON: [doc, name, type, aliases, description] per document); {} when absent."""
    if not stored:
        return {}
    return {
        doc: (name, type_, list(aliases), description) for doc, name, type_, aliases, description in json.loads(stored)
    }


def _batches(rows: list[dict[str, Any]], size: int = BATCH) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]
