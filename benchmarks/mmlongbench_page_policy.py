"""Page recall of the text channel's page scoring on MMLongBench-Doc, one row per mechanism.

All answerable questions are asked against all 27 documents at once (the setting of
``pagehop eval``: the question does not say which PDF it is about); the first five distinct
pages are scored, whatever their document, and only the question's own document's evidence
pages count as found. Questions at even positions of ``samples.json`` are
the development half the mechanisms were tuned on, odd positions the held-out half.

Two workspaces with the same 27 PDFs ingested (the same page texts) are compared: ``--before``
chunked by the previous chunker (no headings, cuts anywhere), ``--workspace`` by the current one
(heading context, tables kept whole); the second can be made from a copy of the first with
``benchmarks/rechunk_workspace.py``. Every row reads the workspaces' stored text indexes, so only
the questions are embedded.

    .venv/bin/python benchmarks/mmlongbench_page_policy.py --workspace /work/ws/mmlb-after \
        --before /work/ws/mmlb-base
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mmlongbench_pages import DATA, ndcg_at, recall_at

from pagehop.config import Settings
from pagehop.retrieval.chunking import chunk_pages
from pagehop.retrieval.fusion import reciprocal_rank_fusion
from pagehop.retrieval.page_scoring import PageScoring
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Hit
from pagehop.workspace import Workspace

K = 5


@dataclass
class Question:
    position: int  # in samples.json: even = development half
    text: str
    doc_id: str
    evidence: set[int]


def load(workspace: Workspace, documents: Path) -> list[Question]:
    questions = []
    for position, sample in enumerate(json.loads((DATA / "samples.json").read_text())):
        evidence = set(json.loads(sample["evidence_pages"])) - {0}
        doc = workspace.find_document(documents / sample["doc_id"])
        if doc is None:
            raise SystemExit(f"{sample['doc_id']} is not ingested in {workspace.root}")
        if evidence:
            questions.append(Question(position, sample["question"], doc.doc_id, evidence))
    return questions


def recut_without_headings(workspace: Workspace, before: HybridTextIndex) -> HybridTextIndex:
    """The before workspace's pages cut by the current chunker without heading context (tables kept whole);
    chunks whose text did not change keep their stored vectors, so only the re-cut ones are embedded."""
    stored = {chunk.text: row for row, chunk in enumerate(before._chunks)}
    index = HybridTextIndex(None, embedder=before.embedder_ref, device="cpu")
    for doc_id in workspace.ready_doc_ids():
        doc = workspace.get_document(doc_id)
        assert doc is not None
        chunks = chunk_pages(
            doc_id,
            doc.title,
            [(page.page, page.text) for page in workspace.get_pages(doc_id)],
            chunk_chars=workspace.settings.ingest.chunk_chars,
            chunk_overlap=workspace.settings.ingest.chunk_overlap,
            with_context=False,
        )
        chunks = [c for c in chunks if c.text.strip()]
        if not chunks:
            continue
        assert before._embeddings is not None
        vectors = np.zeros((len(chunks), before._embeddings.shape[1]), dtype=np.float32)
        fresh = [i for i, c in enumerate(chunks) if c.text not in stored]
        for i, c in enumerate(chunks):
            if c.text in stored:
                vectors[i] = before._embeddings[stored[c.text]]
        if fresh:
            vectors[fresh] = index.embed_chunks([chunks[i] for i in fresh])
        index.add(chunks, vectors)
    return index


def recut_corpus(description: str) -> tuple[list[Question], HybridTextIndex]:
    """The command line of the single-workspace benchmarks (``--workspace``, ``--documents``, ``--threads``): the
    answerable questions and the workspace's pages re-cut by the current chunker (:func:`recut_without_headings`)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True, help="the 27 PDFs ingested (read only)")
    parser.add_argument("--documents", type=Path, default=DATA / "documents")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with Workspace.open(Settings(workspace=args.workspace)) as workspace:
        return load(workspace, args.documents), recut_without_headings(workspace, workspace.text_index)


def timed_evaluation(
    search: Callable[[Question], list[Hit]], questions: list[Question]
) -> tuple[dict[str, tuple[float, float, float, int]], float, float]:
    """:func:`evaluate` by question, with the milliseconds per question it took: wall, then CPU (user + system)."""
    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    result = evaluate(search, questions, by_question=True)
    wall = (time.perf_counter() - started) / len(questions) * 1000
    used = resource.getrusage(resource.RUSAGE_SELF)
    return result, wall, (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime) / len(questions) * 1000


def chunk_rrf(index: HybridTextIndex, query: str, k: int) -> list[Hit]:
    """Main's ranking before this change: dense + BM25 fused per chunk (50 deep), pages in order of first chunk."""
    dense = index.search_dense(query, 50)
    lexical = index.search_bm25(query, 50)
    fused = reciprocal_rank_fusion([dense, lexical], key=lambda hit: hit.chunk_id)
    return [hit for hit, _ in fused]


def evaluate(
    search, questions: list[Question], by_question: bool = False
) -> dict[str, tuple[float, float, float, int]]:
    """R@1, R@5, nDCG@5 and the count per half; ``search`` takes the question's text, or the question
    itself when ``by_question``."""
    per_half: dict[str, list[tuple[float, float, float]]] = {"all": [], "dev": [], "test": []}
    for q in questions:
        # Pages of every document take the slots, as they do for a user: a wrong document's page is a miss.
        ranking: list[tuple[str, int]] = []
        for hit in search(q if by_question else q.text):
            if (hit.doc_id, hit.page) not in ranking:
                ranking.append((hit.doc_id, hit.page))
        evidence = {(q.doc_id, page) for page in q.evidence}
        scores = (recall_at(ranking, evidence, 1), recall_at(ranking, evidence, K), ndcg_at(ranking, evidence, K))
        per_half["all"].append(scores)
        per_half["dev" if q.position % 2 == 0 else "test"].append(scores)
    return {
        half: (*(float(np.mean([s[i] for s in rows])) for i in range(3)), len(rows)) for half, rows in per_half.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True, help="the 27 PDFs chunked by the current code")
    parser.add_argument("--before", type=Path, required=True, help="the same PDFs chunked by the previous code")
    parser.add_argument("--documents", type=Path, default=DATA / "documents")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    parser.add_argument("--rows", default="", help="comma-separated row names to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    workspaces = {
        flag: Workspace.open(Settings(workspace=path)) for flag, path in ((True, args.workspace), (False, args.before))
    }
    try:
        questions = load(workspaces[True], args.documents)
        if [(q.doc_id, q.evidence) for q in load(workspaces[False], args.documents)] != [
            (q.doc_id, q.evidence) for q in questions
        ]:
            raise SystemExit("the two workspaces hold different documents")
        indexes: dict[bool | str, HybridTextIndex] = {flag: ws.text_index for flag, ws in workspaces.items()}
        indexes["tables"] = recut_without_headings(workspaces[False], indexes[False])
        num_pages = sum(len(workspaces[True].get_pages(doc_id)) for doc_id in workspaces[True].ready_doc_ids())
        num_docs = len(workspaces[True].ready_doc_ids())
    finally:
        for workspace in workspaces.values():
            workspace.close()

    # The page scoring of this table: document routing and whole-page BM25 (later) off.
    best = PageScoring(routing_weight=0.0, page_text_weight=0.0)
    rows: list[tuple[str, bool | str, PageScoring | None]] = [
        ("before: chunk RRF, pages by best chunk", False, None),
        ("page-level fusion", False, replace(best, page_references=False)),
        ("+ page references", False, best),
        ("+ tables kept whole (no headings)", "tables", best),
        ("after: + layout-aware chunks", True, best),
        ("  without page references", True, replace(best, page_references=False)),
        ("  with neighbouring pages 0.03", True, replace(best, neighbour_weight=0.03)),
        ("  best 2 chunks per page", True, replace(best, chunks_per_page=2)),
    ]
    wanted = {name.strip() for name in args.rows.split(",") if name.strip()}
    print(f"MMLongBench-Doc evidence pages, text channel, all {num_docs} documents searched, k={K}")
    chunks = f"{len(indexes[False])} chunks before, {len(indexes[True])} after"
    print(f"{num_pages} pages; {len(questions)} answerable questions; {chunks}")
    print("| page scoring | chunks | R@1 | R@5 | nDCG@5 | dev R@5 | test R@5 | ms/question wall | ms/question CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, with_context, scoring in rows:
        if wanted and name.strip() not in wanted:
            continue
        index = indexes[with_context]
        if scoring is not None:
            index.scoring = scoring

            def search(query: str, index: HybridTextIndex = index) -> list[Hit]:
                return index.search(query, 50)
        else:

            def search(query: str, index: HybridTextIndex = index) -> list[Hit]:
                return chunk_rrf(index, query, 50)

        started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        result = evaluate(search, questions)
        wall = (time.perf_counter() - started) / len(questions) * 1000
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_ms = (after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime) / len(questions) * 1000
        r1, r5, ndcg, _ = result["all"]
        chunks = {True: "tables + headings", False: "previous", "tables": "tables"}[with_context]
        print(
            f"| {name} | {chunks} | {r1:.3f} | {r5:.3f} | {ndcg:.3f} | {result['dev'][1]:.3f} | "
            f"{result['test'][1]:.3f} | {wall:.0f} | {cpu_ms:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
