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
- *page references*: a question that says "on page 14", "slide 3", "the cover page" or "the last page"
  points at that page of the documents it matches: the page *printed* 14 (what a reader of the document
  sees, :func:`printed_page_numbers`) and the 14th page of the file (what a PDF viewer shows).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pagehop.retrieval.fusion import reciprocal_rank_fusion
from pagehop.schema import Chunk

PageKey = tuple[str, int]
# "page 14", "p. 14", "slide 3", "page(1)": a reader's way of pointing at a page of the document.
PAGE_REFERENCE = re.compile(r"\b(?:pages?|slides?|p\.)\s*\(?(\d{1,4})\b", re.IGNORECASE)
# "the cover page", "the first slide", "the last page": pages named by their place in the document.
PLACE_REFERENCE = re.compile(
    r"\b(first|cover|front|title|second|third|last|final|back)\s+(?:pages?|slides?)\b", re.IGNORECASE
)
LAST_PAGE = -1  # the number a place reference gives for the document's last page
_PLACES = {"first": 1, "cover": 1, "front": 1, "title": 1, "second": 2, "third": 3}
# A page number as printed in a page's first or last line: "3", "- 3 -", "(1)", "Page 3", "2021 FORM 10-K 59",
# "Copyright ... Ltd. 2", "Slide 5", "3 User Manual".
_LEADING_NUMBER = re.compile(r"^\W*(\d{1,4})\b")
_TRAILING_NUMBER = re.compile(r"\b(\d{1,4})\W*$")
PRINTED_RUN = 3  # pages in a row whose numbers count up: what makes a number at a page's edge a page number

DOCUMENT_VIEWS = ("text", "centroid", "profile")


class PageReference(NamedTuple):
    """A page a question points at: by its number ("page 14": printed, or of the file), or by its place in
    the file ("the cover page", "the last page": ``number`` 1 or :data:`LAST_PAGE`, never a printed number)."""

    number: int
    by_place: bool = False


@dataclass(frozen=True)
class PageScoring:
    depth: int = 200  # chunks each ranking is read to: deep enough for the neighbours and the routing
    chunks_per_page: int = 1  # a page's place in a ranking comes from its best n chunks there
    # Off by default: on the long-PDF benchmark it costs recall (docs/benchmarks.md, issue 15).
    neighbour_weight: float = 0.0  # share of each neighbouring page's score a page receives
    support_pages: int = 5  # page references look in the documents of the best n pages
    page_references: bool = True  # "page 14" in the question promotes page 14 (printed, and of the file) there
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
    pages_named: Callable[[str, PageReference], Sequence[Chunk]] | None = None,
    document_rankings: Sequence[Sequence[str]] = (),
    weights: Sequence[float] | None = None,
) -> list[tuple[Chunk, float]]:
    """Pages of the chunk ``rankings`` (best first), each as its best chunk with the page's score.

    ``pages_named(doc_id, reference)`` gives a chunk of each page a reader may mean by a
    :class:`PageReference` to a document, the likeliest first, so that a referenced page can join the
    candidates though no ranking reached it. ``document_rankings`` rank whole documents (doc ids, best first)
    for document routing; ``weights`` weigh the chunk rankings in the fusion (default: equal).
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
    named: dict[PageKey, int] = {}  # a named page -> its place among the pages its reference may mean
    for reference in page_references(query) if scoring.page_references else []:
        for doc_id, weight in support.items():  # the documents among the best pages
            if pages_named is not None:
                candidates = list(pages_named(doc_id, reference))
            else:
                key = (doc_id, reference.number)
                candidates = [best[key]] if key in best else []
            for place, found in enumerate(candidates):
                key = page_of(found)
                if key not in best:
                    best[key], scores[key] = found, 0.0
                # as strong as the best page for the document the question matches best, less for others
                scores[key] += top * weight / strongest
                named[key] = min(place, named.get(key, place))
    unnamed = len(named) + 1
    ordered = sorted(scores, key=lambda key: (-scores[key], named.get(key, unnamed)))
    return [(best[key], scores[key]) for key in ordered]


def page_references(query: str) -> list[PageReference]:
    """The pages ``query`` points at by number ("page 14", "slide 3", "page(1)") or by place ("the cover page",
    "the last page"), each once, in the order they are named."""
    found = [(m.start(), PageReference(int(m.group(1)))) for m in PAGE_REFERENCE.finditer(query)]
    for m in PLACE_REFERENCE.finditer(query):
        found.append((m.start(), PageReference(_PLACES.get(m.group(1).lower(), LAST_PAGE), by_place=True)))
    return list(dict.fromkeys(reference for _, reference in sorted(found)))


def printed_page_numbers(pages: Sequence[tuple[int, str]]) -> dict[int, int]:
    """Printed page number -> page (1-based, in the file) for a document's ``(page, text)`` pairs.

    Reports number their pages after a cover and front matter, so the page printed "14" is often the 16th of
    the file, and a reader who says "page 14" means the printed one. A number counts as printed only where it
    leads or ends the page's first or last line **and** the pages around it continue the count (a run of
    :data:`PRINTED_RUN` pages numbered one after the other, wherever each prints it: manuals alternate sides),
    so a figure that happens to end a page (a table's "90%") is not a page number. Where several pages carry
    one number (numbering restarts), the first keeps it.
    """
    numbers: dict[int, set[int]] = {}
    for page, text in pages:
        lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
        ends = {lines[0], lines[-1]} if lines else set()
        found = (pattern.search(line) for line in ends for pattern in (_LEADING_NUMBER, _TRAILING_NUMBER))
        numbers[page] = {int(match.group(1)) for match in found if match}
    printed: dict[int, int] = {}
    for page in sorted(numbers):
        for number in sorted(numbers[page]):
            run = 1 + _count(numbers, page, number, -1) + _count(numbers, page, number, +1)
            if run >= PRINTED_RUN:
                printed.setdefault(number, page)
    return printed


def _count(numbers: dict[int, set[int]], page: int, number: int, step: int) -> int:
    """How many pages from ``page`` on (towards ``step``) continue its ``number`` one by one."""
    count = 0
    while number + step * (count + 1) in numbers.get(page + step * (count + 1), ()):
        count += 1
        if count >= PRINTED_RUN:
            break
    return count


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
