"""The GraphSearch engine as the runner's ``QASystem``, with an ablation applied.

``Pagehop.ask`` already returns an ``Answer`` the runner reads, so the adapter only applies the ablation:
settings for rounds, DocPruner k and the LLM, and a retriever wrapper that hides a channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pagehop.agents.retriever import DocumentNames, GraphFact, QueryBatching, Retriever
from pagehop.config import Settings
from pagehop.engine import Pagehop
from pagehop.eval.runner import Ablation
from pagehop.retrieval.titles import NamedDocument
from pagehop.schema import Hit


def ablated_settings(settings: Settings, ablation: Ablation) -> Settings:
    """``settings`` with the ablation's rounds, DocPruner k (an ingest setting: ingest the corpus into a
    workspace of its own for each k) and, with ``use_llm=False``, no LLM."""
    agent = settings.agent
    if ablation.max_rounds is not None:
        agent = agent.model_copy(update={"max_rounds": ablation.max_rounds})
    ingest = settings.ingest
    if ablation.docpruner_k is not None:
        ingest = ingest.model_copy(update={"docpruner_k": ablation.docpruner_k})
    llm = settings.llm if ablation.use_llm else settings.llm.model_copy(update={"base_url": None})
    return settings.model_copy(update={"agent": agent, "ingest": ingest, "llm": llm})


class ChannelFilter:
    """A retriever with a channel switched off: ``documents`` hides the graph, ``graph`` hides text + pages."""

    def __init__(self, retriever: Retriever, channels: str) -> None:
        if channels not in ("both", "documents", "graph"):
            raise ValueError(f"channels must be 'both', 'documents' or 'graph', got {channels!r}")
        self.retriever, self.channels = retriever, channels

    def search(self, query: str, k: int) -> list[Hit]:
        return [] if self.channels == "graph" else self.retriever.search(query, k)

    def graph_search(self, query: str, k: int) -> list[GraphFact]:
        return [] if self.channels == "documents" else self.retriever.graph_search(query, k)

    def prepare_queries(self, queries: Sequence[str]) -> None:
        if self.channels != "graph" and isinstance(self.retriever, QueryBatching):
            self.retriever.prepare_queries(queries)

    def page_image(self, doc_id: str, page: int) -> Path | None:
        return self.retriever.page_image(doc_id, page)

    def documents_named_in(self, text: str) -> list[NamedDocument]:
        if self.channels == "graph" or not isinstance(self.retriever, DocumentNames):
            return []
        return self.retriever.documents_named_in(text)


def engine_for_eval(settings: Settings, retriever: Retriever, ablation: Ablation) -> Pagehop:
    """A Pagehop engine for ``run_eval(system=...)``: the ablation applied, conversation threads in memory
    (an evaluation must not fill the workspace's thread store). Close it when the run is done."""
    from pagehop.llm.base import make_llm

    settings = ablated_settings(settings, ablation)
    return Pagehop(
        ChannelFilter(retriever, ablation.channels),
        make_llm(settings),
        settings.agent,
        threads_path=None,
        spacy_model=settings.models.spacy_model,
    )
