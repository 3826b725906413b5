"""From ranked chunks to ranked pages: how the text channel scores a page of a long document.

A long report is many chunks; a question is about a page. Each of the text index's rankings
(dense, BM25, whole-page BM25) is collapsed to its pages — a page ranks where its best chunks rank —
and the rankings are fused by the one fusion of pagehop (:func:`reciprocal_rank_fusion`, keyed on
the page). On top of that:

- *document routing*: a question is usually about one document among many (users with many reports
  ask about one of them). Documents are ranked first — each ranking collapsed to documents, fused
  with the index's whole-document rankings — and the pages, regrouped best document first, join the
  same fusion as one more ranking;
- *neighbouring pages*: a page next to strong pages gets a share of their score (a table continued
  over a page break, a chart whose explanation sits on the facing page);
- *page references*: a question that says "on page 14" or "slide 3" points at that page of the
  documents it matches.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pagehop.retrieval.fusion import reciprocal_rank_fusion
from pagehop.schema import Chunk

PageKey = tuple[str, int]
# "page 14", "p. 14", "slide 3": a reader's way of pointing at a page of the document.
PAGE_REFERENCE = re.compile(r"\b(?:pages?|slides?|p\.)\s*(\d{1,4})\b", re.IGNORECASE)

DOCUMENT_VIEWS = ("text", "centroid", "profile")


@dataclass(frozen=True)
class PageScoring:
    depth: int = 200  # chunks each ranking is read to: deep enough for the neighbours and the routing
    chunks_per_page: int = 1  # a page's place in a ranking comes from its best n chunks there
    # Off by default: on the long-PDF benchmark it costs recall (docs/benchmarks.md, issue 15).
    neighbour_weight: float = 0.0  # share of each neighbouring page's score a page receives
    support_pages: int = 5  # page references look in the documents of the best n pages
    page_references: bool = True  # "page 14" in the question promotes page 14 of the best-supported documents
    # The two below apply where documents have several pages (``HybridTextIndex.search``); weights in the fusion,
    # 0 turns them off. Chosen on the development half of the long-PDF benchmark (docs/benchmarks.md).
    routing_weight: float = 0.5  # the pages regrouped by their document's rank, as one more ranking
    page_text_weight: float = 1.0  # BM25 over whole pages: a question whose terms are spread over a page's chunks
    # Whole-document views the routing reads beside the rankings (``_DocumentIndex``): "text" (BM25 over the full
    # text), "centroid" (the mean of its chunk vectors), "profile" (title, opening, headings; off: it cost recall).
    document_views: tuple[str, ...] = ("text", "centroid")

    def __post_init__(self) -> None:
        unknown = set(self.document_views) - set(DOCUMENT_VIEWS)
        if unknown:
            raise ValueError(f"unknown document views {sorted(unknown)}; known: {', '.join(DOCUMENT_VIEWS)}")


def page_of(chunk: Chunk) -> PageKey:
    return (chunk.doc_id, chunk.page_start)


def rank_pages(
    rankings: Sequence[Sequence[Chunk]],
    query: str,
    scoring: PageScoring,
    chunk_at: Callable[[str, int], Chunk | None] | None = None,
    document_rankings: Sequence[Sequence[str]] = (),
    weights: Sequence[float] | None = None,
) -> list[tuple[Chunk, float]]:
    """Pages of the chunk ``rankings`` (best first), each as its best chunk with the page's score.

    ``chunk_at(doc_id, page)`` finds a chunk of a page no ranking holds, so that a referenced page
    can join the candidates. ``document_rankings`` rank whole documents (doc ids, best first) for
    document routing; ``weights`` weigh the chunk rankings in the fusion (default: equal).
    """
    trimmed = [_best_per_page(ranking, scoring.chunks_per_page) for ranking in rankings]
    weights = list(weights) if weights is not None else [1.0] * len(trimmed)
    fused = reciprocal_rank_fusion(trimmed, key=page_of, weights=weights)
    if fused and scoring.routing_weight > 0:
        routed = route_by_document([chunk for chunk, _ in fused], trimmed, document_rankings)
        fused = reciprocal_rank_fusion([*trimmed, routed], key=page_of, weights=[*weights, scoring.routing_weight])
    if not fused:
        return []
    best = {page_of(chunk): chunk for chunk, _ in fused}
    base = {page_of(chunk): score for chunk, score in fused}
    scores = dict(base)
    top = fused[0][1]
    if scoring.neighbour_weight > 0:
        for (doc_id, page), score in base.items():
            for near in (page - 1, page + 1):
                if (doc_id, near) in scores:
                    scores[(doc_id, near)] += scoring.neighbour_weight * score
    support: dict[str, float] = defaultdict(float)
    for chunk, score in fused[: scoring.support_pages]:
        support[chunk.doc_id] += score
    strongest = max(support.values())
    named: set[PageKey] = set()
    if scoring.page_references:
        for number in {int(n) for n in PAGE_REFERENCE.findall(query)}:
            for doc_id, weight in support.items():  # the documents among the best pages
                key = (doc_id, number)
                if key not in best:
                    found = chunk_at(doc_id, number) if chunk_at else None
                    if found is None:
                        continue
                    best[key], scores[key] = found, 0.0
                # as strong as the best page for the document the question matches best, less for others
                scores[key] += top * weight / strongest
                named.add(key)
    ordered = sorted(scores, key=lambda key: (-scores[key], key not in named))
    return [(best[key], scores[key]) for key in ordered]


def rank_documents(rankings: Sequence[Sequence[Chunk]], document_rankings: Sequence[Sequence[str]]) -> list[str]:
    """Documents best first: each chunk ranking collapsed to documents (a document ranks where its best
    chunk ranks) fused with the document-level rankings."""
    by_chunks = [list(dict.fromkeys(chunk.doc_id for chunk in ranking)) for ranking in rankings]
    return [doc_id for doc_id, _ in reciprocal_rank_fusion([*by_chunks, *document_rankings], key=lambda d: d)]


def route_by_document(
    pages: Sequence[Chunk], rankings: Sequence[Sequence[Chunk]], document_rankings: Sequence[Sequence[str]]
) -> list[Chunk]:
    """``pages`` (best first) regrouped by document: the best document's pages first, in their order."""
    order = {doc_id: rank for rank, doc_id in enumerate(rank_documents(rankings, document_rankings))}
    return sorted(pages, key=lambda chunk: order.get(chunk.doc_id, len(order)))


def _best_per_page(ranking: Sequence[Chunk], per_page: int) -> list[Chunk]:
    seen: Counter[PageKey] = Counter()
    kept = []
    for chunk in ranking:
        key = page_of(chunk)
        if seen[key] < per_page:
            seen[key] += 1
            kept.append(chunk)
    return kept
