"""Document routing: among several reports that share their vocabulary, the page of the report a question
names or matches wins. Real PDFs written in code, ingested by the real pipeline into a real workspace."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.retrieval.page_scoring import PageScoring, rank_documents, rank_pages
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk
from pagehop.testing.chunks import make_chunk
from pagehop.testing.pdf import write_pdf
from pagehop.workspace import Workspace

# Three annual reviews built from one template: their staff and safety pages are word for word the same, so
# which report such a page belongs to is said only by the report's other pages (its cover names the company,
# its operations page uses the words of its business).
COMPANIES = {
    "a-review.pdf": ("Alder Creek Bakeries", "bread ovens and bakery vans"),
    "b-review.pdf": ("Birchwood Ferries", "ferry crossings and harbour terminals"),
    "c-review.pdf": ("Cobalt Ridge Mining", "ore trucks and open-pit mines"),
}
TURNOVER_PAGE = 2


def review_pages(company: str, business: str) -> list[str]:
    return [
        f"{company}\nAnnual Review 2021\nA year of steady growth for our customers and our people.",
        "Staff turnover\nLeavers per 100 employees were 12 this year across every site of the group.\n"
        "Hiring plans and training budgets for the year ahead are set by each site manager.",
        "Safety\nRecorded safety incidents were 4, and each site reviewed its procedures with the auditors.",
        f"Operations\nOur {business} ran every day of the year.\nDemand for {business} grew in every region we serve.",
    ]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("routing")
    docs = root / "docs"
    docs.mkdir()
    for name, (company, business) in COMPANIES.items():
        write_pdf(docs / name, review_pages(company, business))
    settings = Settings(workspace=root / "ws", ingest={"dpi": 50, "thumbnail_px": 64}, models={"page_encoder": ""})
    with Workspace.open(settings) as ws:
        report = ingest(ws, [docs], ocr="never", progress=False)
        assert not report.failed
        ws.docs = {name: ws.find_document(docs / name).doc_id for name in COMPANIES}  # type: ignore[attr-defined,union-attr]
        yield ws


def turnover_pages(workspace: Workspace, question: str, scoring: PageScoring) -> list[tuple[str, float]]:
    """The reports, with their score, in the order their (identical) staff turnover pages rank for ``question``."""
    index = workspace.text_index
    before, index.scoring = index.scoring, scoring
    try:
        hits = index.search(question, 12)
    finally:
        index.scoring = before
    names = {doc_id: name for name, doc_id in workspace.docs.items()}  # type: ignore[attr-defined]
    return [(names[hit.doc_id], hit.score) for hit in hits if hit.page == TURNOVER_PAGE]


@pytest.mark.parametrize(
    "question",
    [
        "What were leavers per 100 employees at Birchwood Ferries?",  # names the report's company (on its cover)
        "What were leavers per 100 employees at the operator of ferry crossings?",  # in its business's words
    ],
)
def test_the_page_of_the_report_a_question_names_or_matches_wins(workspace: Workspace, question: str) -> None:
    routed = turnover_pages(workspace, question, PageScoring())
    assert sorted(name for name, _ in routed) == sorted(COMPANIES)
    assert routed[0][0] == "b-review.pdf"
    assert routed[0][1] > routed[1][1]
    # Without routing the three identical pages keep the order they have for a question about no report (the
    # index's order, in which another report's page is first): routing is what puts the right one first.
    unrouted = replace(PageScoring(), routing_weight=0.0)
    neutral = [name for name, _ in turnover_pages(workspace, "What were leavers per 100 employees?", unrouted)]
    assert neutral[0] != "b-review.pdf"
    assert [name for name, _ in turnover_pages(workspace, question, unrouted)] == neutral


def chunk(doc_id: str, page: int) -> Chunk:
    return page_chunks(doc_id, page, f"text of {doc_id} page {page}")[0]


def test_documents_are_ranked_by_their_best_chunks_and_the_document_rankings_together() -> None:
    dense = [chunk("x", 1), chunk("y", 4), chunk("y", 5)]
    lexical = [chunk("y", 4), chunk("x", 2)]
    # Each ranking collapsed to documents: x is first and second, y second and first (a tie: first seen).
    assert rank_documents([dense, lexical], []) == ["x", "y"]
    assert rank_documents([dense, lexical], [["y", "x"]]) == ["y", "x"]


def test_routing_lifts_the_best_documents_page_through_the_one_fusion() -> None:
    dense, lexical = [chunk("x", 1), chunk("y", 5)], [chunk("y", 5), chunk("x", 1)]
    plain = PageScoring(routing_weight=0.0, page_references=False)
    routed = PageScoring(routing_weight=0.5, page_references=False)
    assert pages(rank_pages([dense, lexical], "q", plain)) == [("x", 1), ("y", 5)]  # a tie: first seen
    assert pages(rank_pages([dense, lexical], "q", routed, None, [["y"]])) == [("y", 5), ("x", 1)]
    assert pages(rank_pages([dense, lexical], "q", routed, None, [["x"]])) == [("x", 1), ("y", 5)]
    ranked = rank_pages([dense, lexical], "q", routed, None, [["y"]])
    # One fusion: the routed ranking is a third ranking of weight 0.5 (y:5 is first in it, x:1 second).
    assert ranked[0][1] == 1 / 62 + 1 / 61 + 0.5 / 61


def test_an_unknown_document_view_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown document views"):
        PageScoring(document_views=("text", "abstract"))


def pages(ranked: list[tuple[Chunk, float]]) -> list[tuple[str, int]]:
    return [(c.doc_id, c.page_start) for c, _ in ranked]


def page_chunks(doc_id: str, page: int, *texts: str) -> list[Chunk]:
    """The chunks of one page whose text is ``texts`` joined by newlines (offsets as the chunker sets them)."""
    chunks, start = [], 0
    for seq, text in enumerate(texts):
        chunks.append(make_chunk(doc_id, page, text, seq=seq, char_start=start))
        start += len(text) + 1
    return chunks


def test_a_page_whose_chunks_together_hold_the_question_wins_by_whole_page_bm25() -> None:
    index = HybridTextIndex(None, device="cpu")
    index.add(
        [
            *page_chunks("r", 1, "Glacier retreat measured at twelve alpine stations over a decade of fieldwork."),
            *page_chunks(
                "r",
                2,
                "Meltwater discharge rose sharply in the late summer months.",
                "Sediment cores from the lake bed were dated with lead isotopes.",
            ),
            *page_chunks("r", 3, "Meltwater discharge was logged hourly by pressure sensors."),
            *page_chunks("r", 4, "Sediment cores were shipped to the laboratory in cooled crates."),
        ]
    )
    question = "meltwater discharge and sediment cores"
    index.scoring = replace(PageScoring(), page_text_weight=0.0)
    assert index.search(question, 1)[0].page != 2  # each of its chunks holds half the question
    index.scoring = PageScoring()
    assert index.search(question, 1)[0].page == 2


def test_passages_of_one_page_each_are_ranked_as_without_routing() -> None:
    index = HybridTextIndex(None, device="cpu")
    index.add([chunk(f"p{i}", 1) for i in range(6)])
    index.add(page_chunks("p0", 1, "text of p0 page 1 part 0", "a second chunk of the first passage"))
    question = "text of p3 page 1"
    ranked = [(h.doc_id, h.page, h.score) for h in index.search(question, 6)]
    index.scoring = replace(PageScoring(), routing_weight=0.0, page_text_weight=0.0)
    assert [(h.doc_id, h.page, h.score) for h in index.search(question, 6)] == ranked


def test_an_instruction_after_the_question_does_not_steer_the_search(workspace: Workspace) -> None:
    index = workspace.text_index
    question = "How many safety incidents were recorded?"
    # "operations" and "demand" are words of the operations pages: as search terms they would pull those up.
    instructed = f"{question} Answer with the number only, ignoring operations and demand."
    assert [(h.doc_id, h.page) for h in index.search(instructed, 5)] == [
        (h.doc_id, h.page) for h in index.search(question, 5)
    ]
    assert [h.page for h in index.search_bm25("ignoring operations and demand", 3)] == [4, 4, 4]
