"""From ranked chunks to ranked pages: how the text channel scores a page of a long document.

A long report is many chunks; a question is about a page. Each of the text index's rankings
(dense, BM25) is collapsed to its pages — a page ranks where its best chunks rank — and the
rankings are fused by the one fusion of pagehop (:func:`reciprocal_rank_fusion`, keyed on the page).
On top of that page score:

- *document support*: a page of the document that holds many of the question's good pages is
  more likely the right one than an equally good page of a document that matches once (questions
  about "this report" do not name it, but its other pages match too);
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


@dataclass(frozen=True)
class PageScoring:
    depth: int = 200  # chunks each ranking is read to: deep enough for the neighbours and the document support
    chunks_per_page: int = 1  # a page's place in a ranking comes from its best n chunks there
    # Off by default: on the long-PDF benchmark both cost recall (docs/benchmarks.md, issue 15).
    document_weight: float = 0.0  # share of a page's document's support added to its score
    neighbour_weight: float = 0.0  # share of each neighbouring page's score a page receives
    support_pages: int = 5  # a document's support: its pages' scores among the best n (a long one has many)
    page_references: bool = True  # "page 14" in the question promotes page 14 of the best-supported documents


def page_of(chunk: Chunk) -> PageKey:
    return (chunk.doc_id, chunk.page_start)


def rank_pages(
    rankings: Sequence[Sequence[Chunk]],
    query: str,
    scoring: PageScoring,
    chunk_at: Callable[[str, int], Chunk | None] | None = None,
) -> list[tuple[Chunk, float]]:
    """Pages of the chunk ``rankings`` (best first), each as its best chunk with the page's score.

    ``chunk_at(doc_id, page)`` finds a chunk of a page no ranking holds, so that a referenced page
    can join the candidates.
    """
    trimmed = [_best_per_page(ranking, scoring.chunks_per_page) for ranking in rankings]
    fused = reciprocal_rank_fusion(trimmed, key=page_of)
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
    if scoring.document_weight > 0:
        for key in scores:
            scores[key] += scoring.document_weight * top * support.get(key[0], 0.0) / strongest
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


def _best_per_page(ranking: Sequence[Chunk], per_page: int) -> list[Chunk]:
    seen: Counter[PageKey] = Counter()
    kept = []
    for chunk in ranking:
        key = page_of(chunk)
        if seen[key] < per_page:
            seen[key] += 1
            kept.append(chunk)
    return kept
