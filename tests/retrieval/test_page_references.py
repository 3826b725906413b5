"""Page references: "page 14" means the page printed 14 (then the 14th of the file), "the cover page" and "the
last page" their place in the file. A real PDF written in code, ingested by the real pipeline into a real
workspace, and the pure functions on hand-written page texts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.retrieval.page_scoring import (
    LAST_PAGE,
    PageReference,
    PageScoring,
    page_references,
    printed_page_numbers,
)
from pagehop.testing.pdf import write_pdf
from pagehop.workspace import Workspace

# A field guide: a cover and a contents page, then chapters whose pages are printed 1, 2, 3, ... at their foot
# (so the page printed "2" is the 4th of the file), and a back cover without a number.
GUIDE = [
    "Field Guide to Coastal Birds\nSecond edition\nwww.coastal-birds.example",
    "Contents\nGulls 1\nTerns 2\nWaders 3\nPlovers 4",
    "Gulls\nHerring gulls nest on cliffs and roofs and eat almost anything they find.\n1",
    "Terns\nArctic terns fly from pole to pole every year, the longest migration known.\n2",
    "Waders\nOystercatchers probe the mud with long orange bills at low tide.\n3",
    "Plovers\nRinged plovers lay speckled eggs on bare shingle above the tide line.\n4",
    "Notes\nThe survey counted birds on twelve beaches in spring and autumn.\n5",
    "Back cover\nPrinted on recycled paper. Signed by the editors of the guide.",
]
# A second, unrelated document, so that references are resolved in the document the question matches.
MANUAL = [
    "Dishwasher manual\nModel DW-40\nRead before first use.",
    "Loading the racks\nPlace plates in the lower rack facing the centre.",
    "Detergent\nFill the dispenser with detergent before each wash cycle.",
    "Filters\nRinse the filter under running water once a week.",
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("page-references")
    docs = root / "docs"
    docs.mkdir()
    write_pdf(docs / "guide.pdf", GUIDE)
    write_pdf(docs / "manual.pdf", MANUAL)
    settings = Settings(workspace=root / "ws", ingest={"dpi": 50, "thumbnail_px": 64}, models={"page_encoder": ""})
    with Workspace.open(settings) as ws:
        report = ingest(ws, [docs], ocr="never", progress=False)
        assert not report.failed
        ws.guide = ws.find_document(docs / "guide.pdf").doc_id  # type: ignore[attr-defined,union-attr]
        yield ws


def guide_pages(workspace: Workspace, question: str, scoring: PageScoring | None = None) -> list[int]:
    index = workspace.text_index
    before, index.scoring = index.scoring, scoring or PageScoring()
    try:
        hits = index.search(question, 5)
    finally:
        index.scoring = before
    return [hit.page for hit in hits if hit.doc_id == workspace.guide]  # type: ignore[attr-defined]


def test_page_n_means_the_page_printed_n_first_then_the_nth_of_the_file(workspace: Workspace) -> None:
    question = "Which birds fly the longest migration according to the field guide on page 2?"
    ranked = guide_pages(workspace, question)
    assert ranked[:2] == [4, 2]  # printed "2" (the Terns page), then the file's 2nd page (contents)
    # Without page references nothing lifts the contents page: the printed page is found by its words alone.
    assert 2 not in guide_pages(workspace, question, replace(PageScoring(), page_references=False))[:2]


def test_a_page_named_by_its_number_is_found_though_its_words_match_nothing(workspace: Workspace) -> None:
    question = "In the coastal birds field guide, what is on page 4?"
    assert guide_pages(workspace, question)[:2] == [6, 4]  # printed 4 (Plovers), then the file's 4th page


def test_places_are_pages_of_the_file_not_printed_numbers(workspace: Workspace) -> None:
    # The cover is the first page of the file, though the page printed "1" is the third.
    assert guide_pages(workspace, "How many websites are on the cover page of the coastal birds guide?")[0] == 1
    assert guide_pages(workspace, "Who signed the last page of the coastal birds field guide?")[0] == len(GUIDE)


def test_references_are_read_by_number_and_by_place_each_once_in_order() -> None:
    assert page_references("Compare page 14 with p. 3 and slide 2; see page 14 again.") == [
        PageReference(14),
        PageReference(3),
        PageReference(2),
    ]
    assert page_references("What date is at the beginning of page(1)?") == [PageReference(1)]
    assert page_references("Is the last page signed, and what is on the cover page?") == [
        PageReference(LAST_PAGE, by_place=True),
        PageReference(1, by_place=True),
    ]
    assert page_references("How many pages does the report have?") == []


def test_printed_numbers_need_a_run_of_pages_counting_up_wherever_each_prints_it() -> None:
    pages = [
        (1, "Annual Report 2021\nA year of growth"),
        (2, "Contents\nLetter 1\nResults 2"),
        (3, "- 1 -\nLetter to shareholders"),
        (4, "Results\nRevenue rose in every region\n2"),  # at the foot on even pages, as manuals alternate
        (5, "3 Annual Report 2021\nOutlook"),
        (6, "Risk factors 4\nCurrency and rates"),
        (7, "Appendix\nShare of sales online 90%"),  # a figure at the end of a page, not a page number
        (8, "Glossary\nTerms used in this report 12"),  # one number alone does not make a count
    ]
    assert printed_page_numbers(pages) == {1: 3, 2: 4, 3: 5, 4: 6}
    # Numbering that restarts (an annex numbered from 1 again): the first page printed 1 keeps it.
    annex = [(9, "1\nAnnex"), (10, "2\nAnnex table"), (11, "3\nAnnex notes")]
    assert printed_page_numbers([*pages, *annex])[1] == 3
    assert printed_page_numbers([(1, ""), (2, "Only text here")]) == {}
