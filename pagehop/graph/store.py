"""Choosing the graph backend from the settings."""

from __future__ import annotations

from pathlib import Path

from pagehop.config import Settings
from pagehop.graph.base import GraphStore

GRAPH_FILE = Path("graph") / "graph.pkl"


def make_graph_store(settings: Settings, workspace_dir: Path) -> GraphStore:
    """The networkx store in ``workspace_dir/graph/graph.pkl``, or the Neo4j server in ``settings.neo4j``."""
    if settings.graph_store == "networkx":
        from pagehop.graph.networkx_store import NetworkxGraphStore

        return NetworkxGraphStore(workspace_dir / GRAPH_FILE)
    from pagehop.graph.neo4j_store import Neo4jGraphStore

    neo = settings.neo4j
    if not neo.uri:  # Settings already refuses this; kept for stores built from hand-made settings
        raise ValueError("graph_store is 'neo4j' but neo4j.uri is empty")
    password = neo.password.get_secret_value() if neo.password else ""
    return Neo4jGraphStore(
        neo.uri,
        neo.user,
        password,
        database=neo.database,
        namespace=neo.namespace,
        outage_cool_down_s=settings.graph.outage_cool_down_s,
    )
