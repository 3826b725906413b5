"""Text2Cypher: the live schema an LLM needs to write Cypher for this graph, and its query results
as the agent's graph evidence.

The LLM calls themselves belong to the agent's refine stage (``pagehop.agents.stages``), which
meters them; this module only reads Neo4j, through ``ReadOnlyCypher`` (the lexer guard, a read
transaction, a row limit and a server-side timeout).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from pydantic import BaseModel, Field

from pagehop.graph.cypher import CypherResult, ReadOnlyCypher, make_cypher_tool
from pagehop.graph.neo4j_store import MENTIONED_IN, Neo4jGraphStore

SCHEMA_RELATION_TYPES = 40  # the most frequent relation types shown to the LLM
SAMPLED_NODES = 200  # nodes read to list property keys


class GraphQueryTool(Protocol):
    """What the agent needs to answer a sub-query from the graph by Cypher."""

    def schema(self) -> str: ...

    def run(self, query: str) -> CypherResult: ...


class PlannedCypher(BaseModel):
    id: str
    cypher: str = Field("", max_length=2000, description='one read-only query, or "" when the graph cannot answer')


class CypherPlan(BaseModel):
    """The LLM's reply: one query (or none) per sub-query."""

    queries: list[PlannedCypher] = Field(default_factory=list)


class Text2CypherTool:
    """The Neo4j graph store's schema (read live, from its own labels) and its read-only Cypher."""

    def __init__(self, store: Neo4jGraphStore, cypher: ReadOnlyCypher) -> None:
        self.store = store
        self.cypher = cypher

    @classmethod
    def open(cls, store: Neo4jGraphStore, timeout_s: float, max_rows: int) -> Text2CypherTool:
        return cls(store, make_cypher_tool(store, timeout_s=timeout_s, max_rows=max_rows))

    def run(self, query: str) -> CypherResult:
        return self.cypher.run(query)

    def schema(self) -> str:
        """Labels, relation types (most frequent first, with counts) and property keys, as the prompt shows them."""
        entity, chunk = self.store.entity_label, self.store.chunk_label
        relation_counts = self.cypher.run(
            f"MATCH (:`{entity}`)-[r]->(:`{entity}`) RETURN type(r) AS type, count(*) AS n "
            f"ORDER BY n DESC LIMIT {SCHEMA_RELATION_TYPES}"
        ).rows
        entity_keys = self._keys(entity)
        chunk_keys = self._keys(chunk)
        relation_keys = ["description", "ev_docs", "ev_chunks", "ev_pages"]
        lines = [
            "<graph_schema>",
            f"(:`{entity}` {{{', '.join(entity_keys)}}})  -- named things; `type` is PERSON, PLACE, WORK, ...",
            f"(:`{chunk}` {{{', '.join(chunk_keys)}}})  -- a passage of a document",
            f"(:`{entity}`)-[:`{MENTIONED_IN}`]->(:`{chunk}`)",
            f"(:`{entity}`)-[r]->(:`{entity}`) with r {{{', '.join(relation_keys)}}} and these types (count):",
        ]
        lines += [f"  `{row['type']}` ({row['n']})" for row in relation_counts if row["type"] != MENTIONED_IN]
        lines.append("</graph_schema>")
        return "\n".join(lines)

    def _keys(self, label: str) -> list[str]:
        rows = self.cypher.run(
            f"MATCH (n:`{label}`) WITH n LIMIT {SAMPLED_NODES} UNWIND keys(n) AS key RETURN DISTINCT key ORDER BY key"
        ).rows
        return [row["key"] for row in rows if row["key"] not in ("embedding", "alias_text")]


def render_rows(query: str, result: CypherResult) -> str:
    """The rows as the LLM reads them (and the answer's citation shows them)."""
    more = " (more rows were cut)" if result.truncated else ""
    body = "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in result.rows)
    return f"Graph query result, {len(result.rows)} rows{more}:\n{body}"


def provenance(rows: list[dict[str, Any]]) -> tuple[str | None, int | None]:
    """The first document id and page the rows name (columns with "doc" / "page" in their names)."""
    doc_id: str | None = None
    page: int | None = None
    for row in rows:
        for column, value in row.items():
            first = value[0] if isinstance(value, list) and value else value
            if isinstance(first, list):  # collect() of ev_docs lists
                first = first[0] if first else None
            name = column.lower()
            if doc_id is None and "doc" in name and isinstance(first, str) and first:
                doc_id = first
            if page is None and "page" in name and isinstance(first, int) and first > 0:
                page = first
    return doc_id, page
