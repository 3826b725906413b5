"""The composition root: turn Settings into a workspace with every live channel, and an engine over it.

Every entry point (CLI, demo, eval, server) builds through here, so a channel is switched on or
off in one place. A channel whose model is missing is left out with a warning, never a crash:
without page-encoder weights, pages stay retrievable through the text channel.
"""

from __future__ import annotations

from collections.abc import Callable

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.config import Settings
from pagehop.engine import Pagehop
from pagehop.llm.base import LLM
from pagehop.models import ModelNotAvailable
from pagehop.retrieval.base import PageEncoder, PageIndex
from pagehop.workspace import Workspace

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    pass


def open_page_channel(settings: Settings, warn: Warn = _ignore) -> tuple[PageEncoder | None, PageIndex | None]:
    """The ColModernVBERT encoder and the configured page index, or (None, None) when weights are absent."""
    if not settings.models.page_encoder:
        return None, None
    from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
    from pagehop.retrieval.page_index import open_page_index

    try:
        encoder = ColModernVBertEncoder.from_settings(settings)
    except ModelNotAvailable as exc:
        warn(f"visual page channel off: {exc}")
        return None, None
    return encoder, open_page_index(settings, dim=encoder.embedding_dim)


def open_workspace(settings: Settings, *, graph: bool = True, warn: Warn = _ignore) -> Workspace:
    """The workspace with its page channel (when weights are present) and its knowledge graph."""
    encoder, page_index = open_page_channel(settings, warn)
    store = hooks = None
    if graph:
        from pagehop.graph.indexer import make_graph_indexer
        from pagehop.graph.store import make_graph_store

        store = make_graph_store(settings, settings.workspace.expanduser().resolve())
        hooks = [make_graph_indexer(settings, store)]
    return Workspace.open(settings, page_encoder=encoder, page_index=page_index, graph_store=store, hooks=hooks or ())


def open_retriever(workspace: Workspace) -> WorkspaceRetriever:
    """Every live channel of ``workspace`` behind the agent's retriever; the graph ranked by PageRank."""
    graph_retriever = None
    if workspace.graph_store is not None:
        from pagehop.graph.retrieval import make_graph_retriever

        graph_retriever = make_graph_retriever(workspace.settings, workspace.graph_store)
    return WorkspaceRetriever.from_workspace(workspace, graph_retriever)


def open_engine(workspace: Workspace, llm: LLM | None = None) -> Pagehop:
    """The GraphSearch engine over every live channel of ``workspace``, with the configured LLM if any,
    and Text2Cypher when the graph lives in Neo4j and an LLM can write the queries."""
    settings = workspace.settings
    graph_tool = None
    from pagehop.graph.neo4j_store import Neo4jGraphStore

    store = workspace.graph_store
    if (
        isinstance(store, Neo4jGraphStore)
        and settings.graph.cypher_tool
        and (llm is not None or settings.llm_configured)
    ):
        from pagehop.graph.text2cypher import Text2CypherTool

        graph_tool = Text2CypherTool.open(store, settings.graph.cypher_timeout_s, settings.graph.cypher_max_rows)
    return Pagehop.open(settings, open_retriever(workspace), llm, graph_tool)
