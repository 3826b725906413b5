"""Evidence-page retrieval on MMLongBench-Doc through the text channel: recall@1, recall@5, nDCG@5.

For each answerable question (non-empty ``evidence_pages``, 1-based), chunks are retrieved
and collapsed to a ranking of pages (a page ranks where its best chunk ranks). The standard
setting searches only the question's own document; "corpus" searches all 27 documents and
counts only pages of the right one. Hybrid (RRF), dense and BM25 are reported side by side.

    .venv/bin/python benchmarks/mmlongbench_pages.py [--workspace DIR] [--limit N]

``--workspace`` reuses a workspace where the documents are already ingested (e.g. the one
``ingest_throughput.py --keep-workspace`` leaves); otherwise they are ingested first (text
layer only, --ocr to change that).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import torch

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.schema import Hit
from pagehop.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data" / "mmlongbench"
CHUNK_DEPTH = 100  # chunks fetched per question: enough for 5 distinct pages


@dataclass
class Question:
    text: str
    doc_id: str
    evidence: set[int]
    text_evidence: bool  # the evidence includes plain text (vs. only charts, tables, layout, figures)


def page_ranking(hits: list[Hit], doc_id: str) -> list[int]:
    pages: list[int] = []
    for hit in hits:
        if hit.doc_id == doc_id and hit.page not in pages:
            pages.append(hit.page)
    return pages


def recall_at(ranking: list[int], evidence: set[int], k: int) -> float:
    return len(evidence & set(ranking[:k])) / len(evidence)


def ndcg_at(ranking: list[int], evidence: set[int], k: int) -> float:
    dcg = sum(1 / math.log2(rank + 2) for rank, page in enumerate(ranking[:k]) if page in evidence)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(evidence))))
    return dcg / ideal


def load_questions(workspace: Workspace, documents: Path, limit: int | None) -> list[Question]:
    questions = []
    for sample in json.loads((DATA / "samples.json").read_text()):
        evidence = set(json.loads(sample["evidence_pages"]))
        if not evidence:
            continue  # unanswerable
        doc = workspace.find_document(documents / sample["doc_id"])
        if doc is None:
            raise SystemExit(f"{sample['doc_id']} is not ingested in {workspace.root}")
        questions.append(Question(sample["question"], doc.doc_id, evidence, "Pure-text" in sample["evidence_sources"]))
    return questions[:limit]


Search = Callable[[str, int, Collection[str] | None], list[Hit]]


def evaluate(search: Search, questions: list[Question], per_document: bool) -> tuple[float, float, float]:
    r1 = r5 = ndcg = 0.0
    for q in questions:
        hits = search(q.text, CHUNK_DEPTH, {q.doc_id} if per_document else None)
        ranking = page_ranking(hits, q.doc_id)
        r1 += recall_at(ranking, q.evidence, 1)
        r5 += recall_at(ranking, q.evidence, 5)
        ndcg += ndcg_at(ranking, q.evidence, 5)
    n = len(questions)
    return r1 / n, r5 / n, ndcg / n


def row(name: str, scope: str, questions: list[Question], metrics: tuple[float, float, float]) -> list[str]:
    return [name, scope, str(len(questions)), *(f"{m:.3f}" for m in metrics)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None, help="already-ingested workspace to reuse")
    parser.add_argument("--documents", type=Path, default=DATA / "documents")
    parser.add_argument("--ocr", choices=["auto", "always", "never"], default="never")
    parser.add_argument("--limit", type=int, default=None, help="first N answerable questions")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    scratch = None
    if args.workspace is None:
        scratch = Path(tempfile.mkdtemp(prefix="pagehop-mmlb-"))
        args.workspace = scratch / "ws"
    workspace = Workspace.open(Settings(workspace=args.workspace))
    try:
        if scratch is not None:
            report = ingest(workspace, [args.documents], ocr=args.ocr, progress=True)
            print(report.summary())
        index = workspace.text_index
        questions = load_questions(workspace, args.documents, args.limit)
        text_only = [q for q in questions if q.text_evidence]
        searches: list[tuple[str, Search]] = [
            ("hybrid (RRF)", index.search),
            ("dense", index.search_dense),
            ("bm25", index.search_bm25),
        ]
        rows: list[list[str]] = []
        for name, search in searches:
            rows.append(row(name, "own document", questions, evaluate(search, questions, True)))
        rows.append(row("hybrid (RRF)", "all 27 documents", questions, evaluate(index.search, questions, False)))
        rows.append(row("hybrid (RRF)", "own doc, text evidence", text_only, evaluate(index.search, text_only, True)))
    finally:
        workspace.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"\nMMLongBench-Doc evidence-page retrieval, text channel ({len(index)} chunks, {workspace.root})")
    header = ["retriever", "search scope", "questions", "recall@1", "recall@5", "nDCG@5"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
