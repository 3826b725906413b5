"""A hand-made corpus of titled passages in a real hybrid text index, searched through the agent's retriever:
the small worlds the multi-hop mechanisms are tested on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.config import AgentSettings
from pagehop.engine import Pagehop
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk
from pagehop.testing.chunks import make_chunk


@dataclass
class PassageWorld:
    """Each passage is one document whose page opens with its title line, as passage collections do; the
    catalog title is a file stem ("003-Mirela-Vostan"), so a document's name comes from its text."""

    passages: dict[str, str]  # title -> body
    first_number: int = 0  # doc ids are d<first_number>, d<first_number + 1>, ...
    chunks: list[Chunk] = field(init=False)
    doc_of: dict[str, str] = field(init=False)  # title -> doc id

    def __post_init__(self) -> None:
        self.chunks = [
            make_chunk(
                f"d{number}",
                text=f"{title}\n\n{body}",
                title=f"{number:03d}-{title.replace(' ', '-')}",
                chunk_id=f"c{number}",
            )
            for number, (title, body) in enumerate(self.passages.items(), start=self.first_number)
        ]
        self.doc_of = {title: chunk.doc_id for title, chunk in zip(self.passages, self.chunks, strict=True)}

    def index(self) -> HybridTextIndex:
        built = HybridTextIndex(None, device="cpu")
        built.add(self.chunks)
        return built

    def retriever(self, index: HybridTextIndex, *, titles: bool = True) -> WorkspaceRetriever:
        """The retriever over ``index``; ``titles=False`` leaves the title channel out."""
        title_of = {doc_id: title for title, doc_id in self.doc_of.items()}
        text_of = {chunk.doc_id: chunk.text for chunk in self.chunks}
        return WorkspaceRetriever(
            text_index=index,
            page_text=lambda doc_id, page: text_of.get(doc_id, ""),
            titles=lambda doc_id: title_of.get(doc_id, ""),
            names=(lambda: list(title_of.items())) if titles else None,
        )

    @contextmanager
    def engine(self, settings: AgentSettings) -> Iterator[Pagehop]:
        """The agent (no LLM, no saved threads) over a fresh index of the world, with the title channel."""
        with Pagehop(self.retriever(self.index()), None, settings, threads_path=None) as built:
            yield built
