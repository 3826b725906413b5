"""The real Neo4j that scripts/neo4j-local started answers, takes writes and returns them."""

import uuid

import neo4j
import pytest

pytestmark = pytest.mark.neo4j


def test_write_and_read_back_a_node(neo4j_conn: dict[str, str]) -> None:
    marker = uuid.uuid4().hex
    auth = (neo4j_conn["user"], neo4j_conn["password"])
    with neo4j.GraphDatabase.driver(neo4j_conn["uri"], auth=auth) as driver:
        driver.execute_query(
            "CREATE (:FoundationProbe {marker: $marker, n: 42})", marker=marker, database_=neo4j_conn["database"]
        )
        records, _, _ = driver.execute_query(
            "MATCH (p:FoundationProbe {marker: $marker}) RETURN p.n AS n",
            marker=marker,
            database_=neo4j_conn["database"],
        )
        assert [r["n"] for r in records] == [42]
        driver.execute_query("MATCH (p:FoundationProbe) DELETE p", database_=neo4j_conn["database"])
        version = driver.get_server_info().agent
    assert version.startswith("Neo4j/5.26")


def test_routing_uri_works_against_a_single_server(neo4j_conn: dict[str, str]) -> None:
    uri = neo4j_conn["uri"].replace("bolt://", "neo4j://")
    with neo4j.GraphDatabase.driver(uri, auth=(neo4j_conn["user"], neo4j_conn["password"])) as driver:
        records, _, _ = driver.execute_query("RETURN 1 AS one", database_=neo4j_conn["database"])
    assert records[0]["one"] == 1


def test_wrong_password_is_refused(neo4j_conn: dict[str, str]) -> None:
    with (
        neo4j.GraphDatabase.driver(neo4j_conn["uri"], auth=(neo4j_conn["user"], "wrong")) as driver,
        pytest.raises(neo4j.exceptions.AuthError),
    ):
        driver.verify_connectivity()
