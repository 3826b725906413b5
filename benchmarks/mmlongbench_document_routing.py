"""Document routing and whole-page BM25 on MMLongBench-Doc: page recall, one row per mechanism.

The setting of ``mmlongbench_page_policy.py``: the answerable questions are asked against all 27
documents at once, the first five distinct pages count whatever their document, and only the
question's own document's evidence pages are found. Questions at even positions of ``samples.json``
are the development half the settings were chosen on, odd positions the held-out half.

The workspace is ``/work/ws/mmlb-base`` (the 27 PDFs ingested once); its pages are re-cut by the
current chunker in memory (tables kept whole, no heading context: today's defaults), reusing the
stored vectors of chunks whose text did not change, so only the re-cut chunks and the questions
are embedded.

    .venv/bin/python benchmarks/mmlongbench_document_routing.py --workspace /work/ws/mmlb-base
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mmlongbench_page_policy import Question, recut_corpus, timed_evaluation

from pagehop.retrieval import text_index
from pagehop.retrieval.page_scoring import PageScoring
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Hit
from pagehop.text import asking_part

DEPTH = 50  # hits read per question: enough for five distinct pages


def main() -> None:
    questions, index = recut_corpus(__doc__ or "")

    after = PageScoring()
    before = replace(after, routing_weight=0.0, page_text_weight=0.0)
    # (name, scoring, search only the question's own document, search the whole question)
    rows: list[tuple[str, PageScoring, bool, bool]] = [
        ("before (main): page-level fusion + page references", before, False, True),
        ("+ asking part of the question", before, False, False),
        ("+ whole-page BM25", replace(before, page_text_weight=after.page_text_weight), False, False),
        ("**after: + document routing (all defaults)**", after, False, False),
        ("ablation: without the asking part (whole question)", after, False, True),
        ("ablation: without document routing", replace(after, routing_weight=0.0), False, False),
        ("ablation: without whole-page BM25", replace(after, page_text_weight=0.0), False, False),
        ("routing views: full-text BM25 only", replace(after, document_views=("text",)), False, False),
        ("routing views: chunk-vector centroid only", replace(after, document_views=("centroid",)), False, False),
        ("routing views: rankings' documents only", replace(after, document_views=()), False, False),
        (
            "routing views: + profile (title, opening, headings)",
            replace(after, document_views=(*after.document_views, "profile")),
            False,
            False,
        ),
        ("routing weight 0.25", replace(after, routing_weight=0.25), False, False),
        ("routing weight 1.0", replace(after, routing_weight=1.0), False, False),
        ("whole-page BM25 weight 2.0", replace(after, page_text_weight=2.0), False, False),
        ("+ neighbouring pages 0.03", replace(after, neighbour_weight=0.03), False, False),
        ("bound: before, searching only the question's own document", before, True, False),
        ("bound: after, searching only the question's own document", after, True, False),
    ]
    print(f"MMLongBench-Doc evidence pages, text channel, all documents searched, k=5; {len(questions)} questions")
    print(
        "| page scoring | R@1 | R@5 | nDCG@5 | dev R@5 | test R@5 | first page's document right "
        "| ms/question wall | ms/question CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, scoring, own_document, whole_question in rows:
        index.scoring = scoring
        # The whole question's rows swap the asking part out of the text index for this row only.
        text_index.asking_part = (lambda question: question) if whole_question else asking_part  # type: ignore[assignment]
        index.prepare_queries([q.text for q in questions])  # embedded before the clock starts
        first_doc: list[bool] = []

        def search(
            question: Question,
            index: HybridTextIndex = index,
            own: bool = own_document,
            first_doc: list[bool] = first_doc,
        ) -> list[Hit]:
            hits = index.search(question.text, DEPTH, doc_ids=[question.doc_id] if own else None)
            first_doc.append(bool(hits) and hits[0].doc_id == question.doc_id)
            return hits

        result, wall, cpu_ms = timed_evaluation(search, questions)
        r1, r5, ndcg, _ = result["all"]
        print(
            f"| {name} | {r1:.3f} | {r5:.3f} | {ndcg:.3f} | {result['dev'][1]:.3f} | {result['test'][1]:.3f} | "
            f"{np.mean(first_doc):.3f} | {wall:.0f} | {cpu_ms:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
