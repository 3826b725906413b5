"""Page references and BM25 terms on MMLongBench-Doc: page recall, one row per mechanism (issue 15, third pass).

The setting of ``mmlongbench_document_routing.py``: the answerable questions are asked against all 27
documents at once, the first five distinct pages count whatever their document, and only the question's own
document's evidence pages are found. Questions at even positions of ``samples.json`` are the development
half, odd positions the held-out half. The workspace's pages are re-cut in memory by the current chunker
(today's defaults), so chunking is the same in every row.

The "before" rows switch this pass's mechanisms off inside the running code (module constants the functions
read at call time): page references by number only and to the page of the file, BM25 terms as bm25s
splits them by default.

    nice -n 10 /usr/bin/time -v .venv/bin/python benchmarks/mmlongbench_page_references.py \\
        --workspace /work/ws/mmlb-base
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mmlongbench_page_policy import Question, recut_corpus, timed_evaluation

from pagehop.retrieval import page_scoring, text_index
from pagehop.retrieval.page_scoring import PageScoring
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Hit

DEPTH = 50  # hits read per question: enough for five distinct pages
# What main read before this pass: "page 14", "p. 14", "slide 3" only, and bm25s' default terms (\w, "_" included).
NUMBERS_ONLY = re.compile(r"\b(?:pages?|slides?|p\.)\s*(\d{1,4})\b", re.IGNORECASE)
NO_PLACES = re.compile(r"(?!)")  # matches nothing
DEFAULT_TERMS = r"(?u)\b\w\w+\b"
MECHANISMS = {
    "PAGE_REFERENCE": page_scoring.PAGE_REFERENCE,
    "PLACE_REFERENCE": page_scoring.PLACE_REFERENCE,
    "printed_page_numbers": text_index.printed_page_numbers,
    "TERM": text_index.TERM,
}


@dataclass(frozen=True)
class Row:
    name: str
    scoring: PageScoring = field(default_factory=PageScoring)
    parenthesised: bool = True  # "page(1)"
    places: bool = True  # "the cover page", "the last page"
    printed: bool = True  # "page 14" is first the page printed 14
    underscore_splits: bool = True  # BM25 terms split at "_"
    own_document: bool = False  # search only the question's own document (the routing's bound)


def switch(index: HybridTextIndex, row: Row) -> None:
    """Set this pass's mechanisms on or off for ``row`` (and drop the BM25 models built with other terms)."""
    page_scoring.PAGE_REFERENCE = MECHANISMS["PAGE_REFERENCE"] if row.parenthesised else NUMBERS_ONLY  # type: ignore[misc]
    page_scoring.PLACE_REFERENCE = MECHANISMS["PLACE_REFERENCE"] if row.places else NO_PLACES  # type: ignore[misc]
    text_index.printed_page_numbers = MECHANISMS["printed_page_numbers"] if row.printed else lambda pages: {}  # type: ignore[assignment]
    terms = MECHANISMS["TERM"] if row.underscore_splits else DEFAULT_TERMS
    if terms != text_index.TERM:
        text_index.TERM = terms  # type: ignore[misc]
        index._bm25 = index._documents = index._pages = None
    index._pages = None  # printed numbers are found on first use and kept with the whole pages
    index.scoring = row.scoring


def main() -> None:
    questions, index = recut_corpus(__doc__ or "")

    before = Row("before (main 70c09c5): page references by number, bm25s terms", parenthesised=False, places=False)
    before = replace(before, printed=False, underscore_splits=False)
    rows = [
        before,
        replace(before, name="+ page(1) and places (cover, first, last page)", parenthesised=True, places=True),
        Row("+ printed page numbers", underscore_splits=False),
        Row("**after: + underscores split BM25 terms (all defaults)**"),
        Row("ablation: without printed page numbers", printed=False),
        Row("ablation: without places", places=False),
        Row("ablation: without page references", scoring=replace(PageScoring(), page_references=False)),
        Row("ablation: without the underscore split", underscore_splits=False),
        replace(before, name="bound: before, searching only the question's own document", own_document=True),
        Row("bound: after, searching only the question's own document", own_document=True),
    ]
    print(f"MMLongBench-Doc evidence pages, text channel, all documents searched, k=5; {len(questions)} questions")
    print(
        "| page scoring | R@1 | R@5 | nDCG@5 | dev R@1 / R@5 / nDCG@5 | test R@1 / R@5 / nDCG@5 "
        "| first page's document right | ms/question wall | ms/question CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    index.prepare_queries([q.text for q in questions])  # embedded before the clocks start
    for row in rows:
        switch(index, row)
        first_doc: list[bool] = []

        def search(question: Question, row: Row = row, first_doc: list[bool] = first_doc) -> list[Hit]:
            hits = index.search(question.text, DEPTH, doc_ids=[question.doc_id] if row.own_document else None)
            first_doc.append(bool(hits) and hits[0].doc_id == question.doc_id)
            return hits

        search(questions[0])  # builds the BM25 models of this row's terms outside the clock
        first_doc.clear()
        result, wall, cpu_ms = timed_evaluation(search, questions)
        r1, r5, ndcg, _ = result["all"]
        dev, test = ("{:.3f} / {:.3f} / {:.3f}".format(*result[half][:3]) for half in ("dev", "test"))
        print(
            f"| {row.name} | {r1:.3f} | {r5:.3f} | {ndcg:.3f} | {dev} | {test} | {np.mean(first_doc):.3f} "
            f"| {wall:.0f} | {cpu_ms:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
