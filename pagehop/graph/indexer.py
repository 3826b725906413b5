"""The ingestion hook: documents in, graph facts out (extract -> resolve -> store)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

from pagehop.config import Settings
from pagehop.graph.base import GraphStore, GraphUnavailable, Relation
from pagehop.graph.extraction import ExtractedGraph, ExtractionCache, Extractor, ExtractsAhead, LLMExtractor
from pagehop.graph.neo4j_store import UNREACHABLE, unreachable_message
from pagehop.graph.resolution import EntityResolver
from pagehop.llm.base import LLM
from pagehop.schema import Chunk, Document, Page


class GraphIndexer:
    """Registered with the ingestion pipeline: ``add_documents`` after a group of documents' chunks exist,
    ``delete_document`` when it is removed. Writing a document twice changes nothing (ids are
    content-derived and store writes idempotent)."""

    def __init__(self, store: GraphStore, extractor: Extractor, resolver: EntityResolver) -> None:
        self.store = store
        self.extractor = extractor
        self.resolver = resolver

    def add_document(self, doc: Document, pages: Sequence[Page], chunks: Sequence[Chunk]) -> None:
        self.add_documents([(doc, pages, chunks)])

    def add_documents(self, documents: Sequence[tuple[Document, Sequence[Page], Sequence[Chunk]]]) -> None:
        """Several documents in one pass: one extraction batch, one resolution, one store write."""
        chunks = _own_chunks(documents)
        with self._reachable():
            self.add_chunks(chunks)

    def prepare_ahead(self) -> None:
        """Start the extractor's parsing process now, if it has one (ingest calls this when a group of
        documents is coming, so the process has loaded its model by the time the group starts)."""
        if isinstance(self.extractor, ExtractsAhead) and self.extractor.model is not None:
            self.extractor.prepare_ahead()

    def start_documents(
        self, documents: Sequence[tuple[Document, Sequence[Page], Sequence[Chunk]]]
    ) -> StartedExtraction | None:
        """``add_documents`` in two steps: extraction starts now in the extractor's parsing process
        (``ExtractsAhead``), and the returned work's ``finish`` resolves and stores. Resolution reads what
        earlier writes stored, so finishes must come in the order the documents are to be written; a start
        never finished stores nothing. None when the extractor cannot work ahead (an LLM): call
        ``add_documents`` then."""
        chunks = _own_chunks(documents)
        if not chunks or not isinstance(self.extractor, ExtractsAhead) or self.extractor.model is None:
            return None
        return StartedExtraction(self, self.extractor, self.extractor.extract_ahead(chunks))

    def stop_ahead(self) -> None:
        """Stop the extractor's parsing process, if it has one (ingest calls this when it ends)."""
        if isinstance(self.extractor, ExtractsAhead):
            self.extractor.stop_ahead()

    def add_chunks(self, chunks: Sequence[Chunk]) -> ExtractedGraph:
        """Extract, resolve and store ``chunks`` (any documents) in one write; returns what was stored."""
        if not chunks:
            return ExtractedGraph()
        return self.store_extracted(self.extractor.extract(chunks))

    def store_extracted(self, extracted: ExtractedGraph) -> ExtractedGraph:
        """Resolve already-extracted facts against the store and write them."""
        resolution = self.resolver.resolve(extracted.entities)
        canonical = resolution.canonical
        # Copied only when resolution renamed an end: most keep their ids, and a passage yields ~20 relations.
        relations = [
            r
            if canonical(r.source_id) == r.source_id and canonical(r.target_id) == r.target_id
            else r.model_copy(update={"source_id": canonical(r.source_id), "target_id": canonical(r.target_id)})
            for r in extracted.relations
        ]
        relations = _dedupe_relations(r for r in relations if r.source_id != r.target_id)
        mentions = list(
            {
                (m.entity_id, m.chunk_id): m
                for m in (
                    m
                    if canonical(m.entity_id) == m.entity_id
                    else m.model_copy(update={"entity_id": canonical(m.entity_id)})
                    for m in extracted.mentions
                )
            }.values()
        )
        self.store.upsert(resolution.entities, relations, mentions)
        return ExtractedGraph(resolution.entities, relations, mentions)

    def delete_document(self, doc_id: str) -> None:
        with self._reachable():
            self.store.delete_document(doc_id)

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """The graph's door for ingest: a server that does not answer fails the document with a clear message."""
        try:
            yield
        except UNREACHABLE as exc:
            raise GraphUnavailable(unreachable_message(getattr(self.store, "uri", "the graph store"), exc)) from exc

    def take_summary(self) -> str | None:
        """A line for the ingest report on what LLM extraction did since the last call (None with spaCy)."""
        if not isinstance(self.extractor, LLMExtractor):
            return None
        line = self.extractor.stats.summary()
        self.extractor.stats = type(self.extractor.stats)()
        return line


@dataclass
class StartedExtraction:
    """A group's extraction running in the parsing process; ``finish`` resolves and stores it."""

    indexer: GraphIndexer
    extractor: ExtractsAhead
    extracted: Future[ExtractedGraph]

    def ready(self) -> bool:
        """Whether ``finish`` would not wait for the parse."""
        return self.extracted.done()

    def finish(self) -> None:
        with self.indexer._reachable():
            self.indexer.store_extracted(self.extractor.result_ahead(self.extracted))


def _own_chunks(documents: Sequence[tuple[Document, Sequence[Page], Sequence[Chunk]]]) -> list[Chunk]:
    """The documents' chunks, refusing a chunk filed under another document."""
    for doc, _, chunks in documents:
        foreign = [c.chunk_id for c in chunks if c.doc_id != doc.doc_id]
        if foreign:
            raise ValueError(f"chunks {foreign[:3]} do not belong to document {doc.doc_id}")
    return [chunk for _, _, chunks in documents for chunk in chunks]


def _dedupe_relations(relations: Iterable[Relation]) -> list[Relation]:
    unique: dict[tuple[str, str, str, str, str], Relation] = {}
    for r in relations:
        unique.setdefault((r.source_id, r.target_id, r.type, r.doc_id, r.chunk_id), r)
    return list(unique.values())


EXTRACTION_CACHE_FILE = "graph_extraction.sqlite"


def extractor_name(settings: Settings) -> str:
    """Which extractor ``graph.extractor`` selects: "llm" or "spacy"."""
    choice = settings.graph.extractor
    return "llm" if choice == "llm" or (choice == "auto" and settings.llm_configured) else "spacy"


def make_graph_indexer(settings: Settings, store: GraphStore, llm: LLM | None = None) -> GraphIndexer:
    """spaCy extraction, or LLM extraction (spaCy per failed chunk) when ``graph.extractor`` selects it;
    entity resolution by name (``EntityResolver``) either way."""
    from pagehop.graph.extraction import SpacyExtractor

    extractor: Extractor = SpacyExtractor.from_settings(settings.models.spacy_model)
    if extractor_name(settings) == "llm":
        if llm is None:
            from pagehop.llm.base import make_llm

            llm = make_llm(settings)
        if llm is None:  # unreachable through Settings' own check; kept for a clear message
            raise ValueError("graph.extractor selects the LLM but none is configured")
        cache = ExtractionCache(settings.workspace.expanduser().resolve() / EXTRACTION_CACHE_FILE)
        extractor = LLMExtractor(llm, fallback=extractor, cache=cache, max_concurrency=settings.llm.max_concurrency)
    return GraphIndexer(store, extractor, EntityResolver(store))
