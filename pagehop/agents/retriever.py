"""What the agent needs from retrieval, as one small Protocol, and its workspace implementation.

The agent never touches indexes directly: `Retriever.search` returns page/text hits,
`graph_search` returns graph facts with their paths and provenance, `page_image` finds a
page's rendered image for the VLM. `WorkspaceRetriever` composes the real text index,
page index + encoder, and graph store behind that Protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel

from pagehop.graph.base import GRAPH_UNAVAILABLE, GraphPath, GraphStore, GraphUnavailable
from pagehop.graph.neo4j_store import UNREACHABLE
from pagehop.retrieval.base import PageEncoder, PageIndex, TextIndex
from pagehop.retrieval.fusion import page_key, reciprocal_rank_fusion
from pagehop.retrieval.passage_graph import CACHE_FILE, PassageRanking, WorkspacePassageGraph
from pagehop.retrieval.titles import NamedDocument, TitleIndex
from pagehop.schema import Chunk, Hit

if TYPE_CHECKING:
    from pagehop.workspace import Workspace


class GraphFact(BaseModel):
    """A fact from the knowledge graph, with the path that states it and where it came from."""

    text: str
    path: GraphPath | None = None
    doc_id: str
    page: int | None = None
    chunk_id: str | None = None
    score: float = 0.0
    title: str = ""  # the name of the document it came from, when the retriever knows it


@runtime_checkable
class Retriever(Protocol):
    def search(self, query: str, k: int) -> list[Hit]:
        """Best ``k`` page/text hits for ``query``, best first."""
        ...

    def graph_search(self, query: str, k: int) -> list[GraphFact]:
        """Graph facts for ``query``; raises GraphUnavailable when the graph's server does not answer."""
        ...

    def page_image(self, doc_id: str, page: int) -> Path | None: ...


@runtime_checkable
class QueryBatching(Protocol):
    """A retriever (or index) that does better when told the queries of a round before their searches."""

    def prepare_queries(self, queries: Sequence[str]) -> None:
        """Shared work for the searches about to run (one embedder call for all their queries)."""
        ...


@runtime_checkable
class DocumentNames(Protocol):
    """A retriever that knows its documents' names: which of them a text mentions."""

    def documents_named_in(self, text: str) -> list[NamedDocument]:
        """The documents whose name ``text`` mentions, in order of mention."""
        ...


class GraphFactSource(Protocol):
    def facts(self, query: str, k: int) -> list[GraphFact]: ...


class StoreGraphFacts:
    """Graph facts from any `GraphStore`: entities named in the query, then their 1-hop paths."""

    def __init__(self, store: GraphStore, max_entities: int = 3) -> None:
        self.store = store
        self.max_entities = max_entities

    def facts(self, query: str, k: int) -> list[GraphFact]:
        found: list[GraphFact] = []
        for entity in self.store.find_entities(query, limit=self.max_entities):
            for path in self.store.neighbours(entity.entity_id, hops=1, limit=k):
                if path.provenance:  # a fact we cannot cite is no evidence
                    found.append(_path_fact(path, 1.0 / (1 + len(found))))
        return found[:k]


class RankedGraphResult(Protocol):
    chunks: list[tuple[str, float]]
    paths: list[GraphPath]


class RankedGraphSearch(Protocol):
    """What `pagehop.graph.retrieval.GraphRetriever` offers: PPR-ranked chunks and connecting paths."""

    def search(self, query: str, k: int = 10) -> RankedGraphResult: ...


class GraphRetrieverFacts:
    """Graph facts from the graph channel's retriever: its paths first, then its ranked chunks."""

    def __init__(self, retriever: RankedGraphSearch, chunk: Callable[[str], Chunk | None]) -> None:
        self.retriever = retriever
        self.chunk = chunk

    def facts(self, query: str, k: int) -> list[GraphFact]:
        result = self.retriever.search(query, k)
        found = [_path_fact(path, 1.0) for path in result.paths if path.provenance]
        for chunk_id, score in result.chunks:
            chunk = self.chunk(chunk_id)
            if chunk is not None:
                found.append(
                    GraphFact(
                        text=chunk.text, doc_id=chunk.doc_id, page=chunk.page_start, chunk_id=chunk_id, score=score
                    )
                )
        return found[:k]


def _path_fact(path: GraphPath, score: float) -> GraphFact:
    mention = path.provenance[0]
    return GraphFact(
        text=path.render(), path=path, doc_id=mention.doc_id, page=mention.page, chunk_id=mention.chunk_id, score=score
    )


class WorkspaceRetriever:
    """Text, page, title and passage-graph channels fused by reciprocal rank, plus the graph channel; any
    may be absent.

    The title channel returns the documents a query names (exact title or alias match, see
    `TitleIndex`): asked about "Jacques Tourneur", the passage about him ranks first even when dense
    and BM25 scores prefer passages that merely mention him.
    """

    def __init__(
        self,
        text_index: TextIndex | None = None,
        page_index: PageIndex | None = None,
        page_encoder: PageEncoder | None = None,
        graph: GraphFactSource | None = None,
        page_text: Callable[[str, int], str] | None = None,
        page_image_path: Callable[[str, int], Path | None] | None = None,
        titles: Callable[[str], str] | None = None,
        names: Callable[[], list[tuple[str, str]]] | None = None,
        names_version: Callable[[], Hashable] | None = None,
        exact_page_search: bool = False,
        passage_graph: PassageRanking | None = None,
    ) -> None:
        """``exact_page_search=False`` lets the page index take its fast path (settings ``page_search``).
        ``names_version``, when given, changes whenever ``names`` would: the title index is rebuilt only
        then, instead of listing every document's name on each search."""
        if (page_index is None) != (page_encoder is None):
            raise ValueError("the page channel needs both a page index and a page encoder")
        self.text_index = text_index
        self.page_index = page_index
        self.page_encoder = page_encoder
        self.graph = graph
        self._page_text = page_text
        self._page_image_path = page_image_path
        self._titles = titles
        self._names = names  # (doc_id, name) of every document, for the title channel
        self._title_index: TitleIndex | None = None
        self._names_version = names_version
        self._title_version: object = None  # what the title index was built for (a version, or the names)
        self.exact_page_search = exact_page_search
        self.passage_graph = passage_graph

    @classmethod
    def from_workspace(
        cls, workspace: Workspace, graph_retriever: RankedGraphSearch | None = None
    ) -> WorkspaceRetriever:
        """All live channels of an open workspace. Without ``graph_retriever``, the graph channel
        (if the workspace has a graph store) looks up the question's entities and their neighbours."""

        def page_text(doc_id: str, page: int) -> str:
            found = workspace.get_page(doc_id, page)
            return found.text if found else ""

        graph: GraphFactSource | None = None
        if graph_retriever is not None:
            graph = GraphRetrieverFacts(graph_retriever, workspace.get_chunk)
        elif workspace.graph_store is not None:
            graph = StoreGraphFacts(workspace.graph_store)
        has_pages = workspace.page_index is not None and workspace.page_encoder is not None
        passage_graph = None
        if workspace.settings.agent.passage_graph:
            from pagehop.models import load_spacy_passages

            passage_graph = WorkspacePassageGraph(
                chunks=workspace.ready_chunks,
                version=workspace.ready_signature,
                names=workspace.document_names,
                chunk=workspace.get_chunk,
                nlp=lambda: load_spacy_passages(workspace.settings.models.spacy_model),
                # Synonymy edges need every entity name embedded: ~4 ms of CPU a name on one thread (tens of
                # thousands of names for a few thousand passages), so they are left out here.
                embed=None,
                cache_path=workspace.root / "text_index" / CACHE_FILE,
            )
        return cls(
            text_index=workspace.text_index,
            page_index=workspace.page_index if has_pages else None,
            page_encoder=workspace.page_encoder if has_pages else None,
            graph=graph,
            page_text=page_text,
            page_image_path=workspace.page_image,
            titles=workspace.document_name,
            names=workspace.document_names,
            names_version=workspace.ready_signature,
            exact_page_search=workspace.settings.page_search == "exact",
            passage_graph=passage_graph,
        )

    def search(self, query: str, k: int) -> list[Hit]:
        rankings: list[list[Hit]] = []
        text_hits = self.text_index.search(query, k) if self.text_index is not None else []
        rankings.append(text_hits)
        if self.page_index is not None and self.page_encoder is not None:
            rankings.append(self._page_hits(query, k))
        rankings.append(self.named_documents(query, k))
        if self.passage_graph is not None:  # seeded by the text hits: one candidate set, not a second path
            rankings.append(self.passage_graph.rank(query, text_hits, k))
        return [
            hit.model_copy(update={"score": score, "title": self._titles(hit.doc_id) if self._titles else hit.title})
            for hit, score in fuse_hits(rankings)[:k]
        ]

    def prepare_queries(self, queries: Sequence[str]) -> None:
        if isinstance(self.text_index, QueryBatching):
            self.text_index.prepare_queries(queries)

    def named_documents(self, text: str, k: int) -> list[Hit]:
        """The documents ``text`` names, as hits on their first page, longest name first."""
        index = self._current_title_index()
        if index is None:
            return []
        named = sorted(index.named_in(text), key=lambda found: -found.tokens)[:k]
        return [
            Hit(
                channel="text",
                doc_id=found.doc_id,
                page=1,
                score=float(found.tokens),
                text=self._page_text(found.doc_id, 1) if self._page_text else "",
                title=found.name,
            )
            for found in named
        ]

    def documents_named_in(self, text: str) -> list[NamedDocument]:
        index = self._current_title_index()
        return index.named_in(text) if index is not None else []

    def graph_search(self, query: str, k: int) -> list[GraphFact]:
        if self.graph is None or k <= 0:
            return []
        try:
            facts = self.graph.facts(query, k)
        except UNREACHABLE as exc:  # the graph channel's door: a stopped Neo4j must not fail the question
            raise GraphUnavailable(f"{GRAPH_UNAVAILABLE} ({type(exc).__name__})") from exc
        if self._titles is None:
            return facts
        return [fact.model_copy(update={"title": self._titles(fact.doc_id)}) for fact in facts]

    def page_image(self, doc_id: str, page: int) -> Path | None:
        return self._page_image_path(doc_id, page) if self._page_image_path else None

    def _current_title_index(self) -> TitleIndex | None:
        """The title index, rebuilt when documents were added or removed since it was built."""
        if self._names is None:
            return None
        # Without a version, the names are their own version: a delete plus an add keeps the count but
        # changes the names.
        names = None if self._names_version is not None else self._names()
        version = self._names_version() if self._names_version is not None else names
        if self._title_index is None or version != self._title_version:
            self._title_index = TitleIndex(names if names is not None else self._names())
            self._title_version = version
        return self._title_index

    def _page_hits(self, query: str, k: int) -> list[Hit]:
        assert self.page_index is not None and self.page_encoder is not None
        query_vectors = self.page_encoder.encode_queries([query])[0]
        return [
            Hit(
                channel="page",
                doc_id=doc_id,
                page=page,
                score=score,
                text=self._page_text(doc_id, page) if self._page_text else "",
                title=self._titles(doc_id) if self._titles else "",
            )
            for doc_id, page, score in self.page_index.search(query_vectors, k, exact=self.exact_page_search)
        ]


def fuse_hits(rankings: list[list[Hit]]) -> list[tuple[Hit, float]]:
    """Channels' hits fused per page: a page hit and a text hit of the same page take one slot.

    The kept copy is the best-ranked one; what it lacks (a chunk id, text) comes from the other copies,
    so a merged slot still points at its chunk.
    """
    fused = reciprocal_rank_fusion(rankings, key=page_key)
    chunk_of: dict[tuple[str, int | None], str] = {}
    text_of: dict[tuple[str, int | None], str] = {}
    for ranking in rankings:
        for hit in ranking:
            if hit.chunk_id:
                chunk_of.setdefault(page_key(hit), hit.chunk_id)
            if hit.text:
                text_of.setdefault(page_key(hit), hit.text)
    out = []
    for hit, score in fused:
        key = page_key(hit)
        update = {"chunk_id": hit.chunk_id or chunk_of.get(key), "text": hit.text or text_of.get(key, "")}
        out.append((hit.model_copy(update=update), score))
    return out
