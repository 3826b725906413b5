"""The read-only Cypher tool: the lexer refuses writes before they run, the read transaction
stops any it misses, and real reads over the graph store's data work."""

from __future__ import annotations

import pytest

from pagehop.graph.base import Entity, Mention
from pagehop.graph.cypher import (
    CypherError,
    CypherRefused,
    CypherUnavailable,
    ReadOnlyCypher,
    check_read_only,
    make_cypher_tool,
)
from pagehop.graph.networkx_store import NetworkxGraphStore

REFUSED = [
    "CREATE (n:Person {name: 'x'})",
    "create (n)",
    "MATCH (n) SET n.name = 'x'",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n) delete n",
    "MATCH (n) REMOVE n.name",
    "MERGE (n:Person {name: 'x'})",
    "MATCH (n) WITH n MERGE (m {id: n.id}) ON CREATE SET m.x = 1",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "MATCH (n) FOREACH (x IN [1] | SET n.y = x)",
    "CALL db.createLabel('Evil')",
    "CALL apoc.create.node(['X'], {})",
    "RETURN apoc.cypher.runFirstColumnSingle('CREATE (n) RETURN n', {})",
    "CALL dbms.security.createUser('eve', 'pw', false)",
    "call DBMS.killQuery('q-1')",
    "CREATE USER eve SET PASSWORD 'secret'",
    "DROP INDEX entity_names",
    "DROP DATABASE neo4j",
    "START DATABASE neo4j",
    "SHOW USERS",
    "USE system MATCH (n) RETURN n",
    "CALL { MATCH (n) RETURN n } IN TRANSACTIONS OF 10 ROWS",
    "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS",
    "MATCH (n) RETURN n; CREATE (m)",
    "MATCH (n) /* harmless? */ CREATE (m)",
    "MATCH (n) // a comment\nSET n.x = 1",
    "MATCH (n) WHERE n.name = 'unterminated RETURN n",
    "MATCH (n) /* unterminated RETURN n",
    "",
]
ALLOWED = [
    "MATCH (n) WHERE n.name = 'CREATE' RETURN n",
    'MATCH (n) WHERE n.name = "DETACH DELETE n" RETURN n.name',
    "MATCH (n) WHERE n.name = 'it\\'s SET' RETURN n",
    "MATCH (n) // we never DELETE here\nRETURN count(n)",
    "MATCH (n) /* SET n.x = 1 */ RETURN n LIMIT 5",
    "MATCH (n:`CREATE`) RETURN n",
    "MATCH (n) RETURN n.set, n.delete",
    "CALL db.labels() YIELD label RETURN label",
    "CALL db.index.fulltext.queryNodes('idx', 'curie') YIELD node RETURN node",
    "MATCH (n) CALL (n) { MATCH (n)-->(m) RETURN count(m) AS c } RETURN n, c",
    "MATCH p = (a)-[*1..2]-(b) RETURN p LIMIT 3;",
    "EXPLAIN MATCH (n) RETURN n",
    "MATCH (n) WHERE n.created_at > $since RETURN n",
]


@pytest.mark.parametrize("query", REFUSED)
def test_writes_and_admin_are_refused_before_running(query: str) -> None:
    with pytest.raises(CypherRefused):
        check_read_only(query)


@pytest.mark.parametrize("query", ALLOWED)
def test_reads_pass_the_lexer(query: str) -> None:
    check_read_only(query)


def test_networkx_store_has_no_cypher(tmp_path) -> None:
    with pytest.raises(CypherUnavailable, match="neo4j"):
        make_cypher_tool(NetworkxGraphStore(tmp_path / "g.pkl"))


@pytest.mark.neo4j
def test_reads_run_with_a_row_limit(session_neo4j_store) -> None:
    store = session_neo4j_store
    store.clear()
    people = [Entity(entity_id=f"p{i}", name=f"Person {i}", type="PERSON") for i in range(7)]
    store.upsert(people, [], [Mention(entity_id="p0", doc_id="d", chunk_id="c", page=1)])
    tool = make_cypher_tool(store, max_rows=5)
    label = store.entity_label
    result = tool.run(f"MATCH (e:{label}) WHERE e.name STARTS WITH $prefix RETURN e ORDER BY e.id", {"prefix": "Per"})
    assert result.columns == ["e"]
    assert len(result.rows) == 5 and result.truncated
    assert result.rows[0]["e"]["name"] == "Person 0" and "embedding" not in result.rows[0]["e"]
    counted = tool.run(f"MATCH (e:{label}) WHERE e.name = 'CREATE' RETURN count(e) AS n")
    assert counted.rows == [{"n": 0}] and not counted.truncated
    store.clear()


@pytest.mark.neo4j
def test_read_transaction_stops_writes_the_lexer_missed(session_neo4j_store) -> None:
    store = session_neo4j_store
    tool = make_cypher_tool(store)
    label = store.entity_label
    with pytest.raises(CypherError, match=r"(?i)write|access"):
        tool._run_in_read_transaction(f"CREATE (:{label} {{id: 'sneaky', name: 'x', type: 'X'}})", {})
    assert store.get_entity("sneaky") is None


@pytest.mark.neo4j
def test_slow_queries_time_out(session_neo4j_store) -> None:
    tool = ReadOnlyCypher(session_neo4j_store.driver(), session_neo4j_store.database, timeout_s=0.5)
    with pytest.raises(CypherError):
        tool.run("UNWIND range(1, 1000000000) AS x WITH x WHERE x < 0 RETURN count(x)")


@pytest.mark.neo4j
def test_syntax_errors_are_reported(session_neo4j_store) -> None:
    tool = make_cypher_tool(session_neo4j_store)
    with pytest.raises(CypherError, match="Syntax"):
        tool.run("MATCH (n RETURN n")
