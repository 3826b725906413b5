"""Page scoring of the text channel: chunk hits become page hits, helped by their neighbours and page references
(document routing: test_document_routing.py)."""

from __future__ import annotations

from pagehop.retrieval.page_scoring import PageReference, PageScoring, rank_pages
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk
from pagehop.testing.chunks import make_chunk

FUSION_ONLY = PageScoring(routing_weight=0.0, neighbour_weight=0.0, page_references=False)
REFERENCES_ONLY = PageScoring(routing_weight=0.0, neighbour_weight=0.0, page_references=True)


def chunk(doc_id: str, page: int, seq: int = 0, text: str = "") -> Chunk:
    return make_chunk(doc_id, page, text or f"text of {doc_id} page {page} part {seq}", seq=seq)


def pages(ranked: list[tuple[Chunk, float]]) -> list[tuple[str, int]]:
    return [(c.doc_id, c.page_start) for c, _ in ranked]


def test_chunk_hits_of_one_page_fuse_into_one_page_hit_kept_as_its_best_chunk() -> None:
    dense = [chunk("a", 1, 1), chunk("a", 1, 0), chunk("a", 2), chunk("b", 1)]
    lexical = [chunk("a", 2), chunk("a", 1, 0), chunk("b", 1)]
    ranked = rank_pages([dense, lexical], "q", FUSION_ONLY)
    assert pages(ranked) == [("a", 1), ("a", 2), ("b", 1)]  # each page once
    assert ranked[0][0].chunk_id == "a:1:1"  # the page's best-ranked chunk stands for it
    # A page's place in each ranking is its best chunk's: a:1 is first and second in the two rankings.
    assert ranked[0][1] == 1 / 61 + 1 / 62


def test_a_page_with_several_good_chunks_counts_them_when_asked() -> None:
    dense = [chunk("a", 1, 0), chunk("b", 1, 0), chunk("b", 1, 1), chunk("b", 1, 2)]
    assert pages(rank_pages([dense], "q", FUSION_ONLY))[0] == ("a", 1)
    assert pages(rank_pages([dense], "q", PageScoring(chunks_per_page=3, routing_weight=0.0)))[0] == ("b", 1)


def test_a_page_between_strong_pages_gains_from_its_neighbours() -> None:
    dense = [chunk("d", 3), chunk("d", 5), chunk("d", 9), chunk("d", 4)]
    lexical = [chunk("d", 5), chunk("d", 3), chunk("d", 9), chunk("d", 4)]
    plain = pages(rank_pages([dense, lexical], "q", FUSION_ONLY))
    assert plain.index(("d", 9)) < plain.index(("d", 4))
    smoothed = pages(rank_pages([dense, lexical], "q", PageScoring(routing_weight=0.0, neighbour_weight=0.3)))
    assert smoothed.index(("d", 4)) < smoothed.index(("d", 9))


def test_a_page_the_question_names_joins_and_leads_even_unretrieved() -> None:
    dense = [chunk("d", 2), chunk("d", 3), chunk("e", 1)]
    elsewhere = {("d", 14): chunk("d", 14), ("e", 14): chunk("e", 14)}

    def named(doc_id: str, reference: PageReference) -> list[Chunk]:
        found = elsewhere.get((doc_id, reference.number))
        return [found] if found else []

    ranked = rank_pages([dense], "What does the chart on page 14 show?", REFERENCES_ONLY, named)
    assert pages(ranked)[0] == ("d", 14)  # the page of the best-matching document
    assert ("e", 14) in pages(ranked)
    unnamed = rank_pages([dense], "What does the chart show?", REFERENCES_ONLY, named)
    assert ("d", 14) not in pages(unnamed)


def test_the_text_index_returns_distinct_pages_ranked_by_page_scoring() -> None:
    index = HybridTextIndex(None, device="cpu")
    index.add(
        [
            chunk("zoo", 1, 0, "Giraffes are the tallest land animals and feed on acacia leaves."),
            chunk("zoo", 1, 1, "Young giraffes stand within an hour of birth on the savanna."),
            chunk("zoo", 2, 0, "Penguins cannot fly but swim in cold Antarctic water."),
            chunk("fin", 1, 0, "Net revenue for fiscal 2023 was 43.5 billion dollars."),
        ]
    )
    hits = index.search("giraffes on the savanna", k=3)
    assert (hits[0].doc_id, hits[0].page) == ("zoo", 1)
    assert len({(h.doc_id, h.page) for h in hits}) == len(hits) == 3  # two chunks of zoo:1, one slot
    assert hits[0].score >= hits[1].score >= hits[2].score
