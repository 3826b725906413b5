"""Thirty write and procedure-call attempts against the read-only Cypher guard, tricks included.

Each must be refused by the lexer before it reaches Neo4j; on the real server, running all of them
through the tool leaves the database exactly as it was.
"""

from __future__ import annotations

import pytest

from pagehop.graph.cypher import CypherRefused, ReadOnlyCypher, check_read_only

ATTACKS = [
    # plain clauses
    "CREATE (n:Evil) RETURN n",
    "MATCH (n) MERGE (m:Evil {id: 1}) RETURN m",
    "MATCH (n) SET n += {owned: true}",
    "MATCH (n) DELETE n",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n:Entity) REMOVE n:Entity",
    "LOAD CSV WITH HEADERS FROM 'https://example.org/x.csv' AS row CREATE (:Row {v: row.v})",
    "MATCH (n) FOREACH (x IN [1, 2] | MERGE (:Evil {x: x}))",
    "MATCH (n) UNWIND [1] AS x MERGE (n)-[:OWNS]->(n)",
    # procedures and functions
    "CALL dbms.killQueries(['query-1'])",
    "CALL dbms.setConfigValue('db.logs.query.enabled', 'OFF')",
    "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {batchSize: 100})",
    "MATCH (n) CALL apoc.refactor.rename.label('Entity', 'Gone') YIELD total RETURN total",
    "RETURN apoc.cypher.runWrite('CREATE (n:Evil)', {})",
    "CALL db.index.fulltext.createNodeIndex('evil', ['Entity'], ['name'])",
    "CALL gds.graph.drop('g')",
    # case and spacing tricks
    "cReAtE (n:Evil)",
    "match (n) DeTaCh dElEtE n",
    "CALL db . createLabel('Evil')",
    "CALL `apoc`.`create`.`node`(['Evil'], {})",
    "CALL\tDBMS.security.createUser('eve', 'pw', false)",
    # comments and statement tricks
    "MATCH (n) /* just reading */ DELETE n",
    "MATCH (n) RETURN n // harmless\n; CREATE (m:Evil)",
    "MATCH (n) RETURN n;\nMATCH (m) DETACH DELETE m",
    "CREATE/**/(n:Evil)",
    "MATCH (n) WHERE n.name = 'x' /* ' */ SET n.name = 'y'",
    # subqueries, admin and other databases
    "MATCH (n) CALL (n) { SET n.x = 1 } RETURN count(*)",
    "CALL { MATCH (n) DETACH DELETE n } IN TRANSACTIONS OF 100 ROWS",
    "USE system CREATE USER eve SET PASSWORD 'secret'",
    "GRANT ALL ON DATABASE * TO PUBLIC",
]


def test_the_corpus_is_thirty_distinct_attempts() -> None:
    assert len(ATTACKS) == len(set(ATTACKS)) == 30


@pytest.mark.parametrize("query", ATTACKS)
def test_every_attempt_is_refused_before_it_runs(query: str) -> None:
    with pytest.raises(CypherRefused):
        check_read_only(query)


@pytest.mark.neo4j
def test_the_real_database_is_unchanged_after_every_attempt(session_neo4j_store) -> None:  # type: ignore[no-untyped-def]
    driver = session_neo4j_store.driver()
    tool = ReadOnlyCypher(driver, session_neo4j_store.database)

    def census() -> tuple[int, int, list[str], int]:
        with driver.session(database=session_neo4j_store.database) as session:
            nodes = session.run("MATCH (n) RETURN count(n) AS c").single()["c"]
            edges = session.run("MATCH ()-[r]->() RETURN count(r) AS c").single()["c"]
            labels = sorted(r["label"] for r in session.run("CALL db.labels() YIELD label RETURN label"))
            users = session.run("SHOW USERS YIELD user RETURN count(user) AS c").single()["c"]
        return nodes, edges, labels, users

    before = census()
    for query in ATTACKS:
        with pytest.raises(CypherRefused):
            tool.run(query)
    assert census() == before
    assert tool.run("MATCH (n) RETURN count(n) AS c").rows == [{"c": before[0]}]  # reads still work
