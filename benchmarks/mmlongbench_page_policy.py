"""Page recall of the text channel's page scoring on MMLongBench-Doc, one row per mechanism.

All answerable questions are asked against all 27 documents at once (the setting of
``pagehop eval``: the question does not say which PDF it is about); a question's evidence
pages count only in its own document. Questions at even positions of ``samples.json`` are
the development half the mechanisms were tuned on, odd positions the held-out half.

The page texts come from a workspace where the PDFs are already ingested (``pagehop ingest``);
the chunks are re-cut here with and without heading context and indexed in memory, so each
row is the same page texts under another chunking or page scoring. Embeddings are cached by
text in ``--cache`` so the rows share them.

    .venv/bin/python benchmarks/mmlongbench_page_policy.py --workspace /work/ws/mmlb-base
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mmlongbench_pages import DATA, ndcg_at, recall_at

from pagehop.config import Settings
from pagehop.retrieval.chunking import chunk_pages, indexed_text
from pagehop.retrieval.fusion import reciprocal_rank_fusion
from pagehop.retrieval.page_scoring import PageScoring
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk, Hit
from pagehop.workspace import Workspace

K = 5
PAGE_FUSION_ONLY = PageScoring(document_weight=0.0, neighbour_weight=0.0, page_references=False)


@dataclass
class Question:
    position: int  # in samples.json: even = development half
    text: str
    doc_id: str
    evidence: set[int]


def load(workspace: Workspace, documents: Path) -> tuple[list[Question], dict[str, list[tuple[int, str]]], dict]:
    questions = []
    for position, sample in enumerate(json.loads((DATA / "samples.json").read_text())):
        evidence = set(json.loads(sample["evidence_pages"])) - {0}
        doc = workspace.find_document(documents / sample["doc_id"])
        if doc is None:
            raise SystemExit(f"{sample['doc_id']} is not ingested in {workspace.root}")
        if evidence:
            questions.append(Question(position, sample["question"], doc.doc_id, evidence))
    pages = {}
    titles = {}
    for doc_id in workspace.ready_doc_ids():
        pages[doc_id] = [(p.page, p.text) for p in workspace.get_pages(doc_id)]
        titles[doc_id] = workspace.get_document(doc_id).title  # type: ignore[union-attr]
    return questions, pages, titles


class EmbeddingCache:
    def __init__(self, path: Path | None, index: HybridTextIndex) -> None:
        self.path, self.index = path, index
        self.vectors: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            with np.load(path) as data:
                self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def __call__(self, chunks: list[Chunk]) -> np.ndarray:
        keys = [hashlib.sha1(indexed_text(c).encode()).hexdigest() for c in chunks]
        missing = sorted({key for key in keys if key not in self.vectors})
        if missing:
            texts = {hashlib.sha1(indexed_text(c).encode()).hexdigest(): indexed_text(c) for c in chunks}
            for key, vector in zip(missing, self.index.embed([texts[key] for key in missing]), strict=True):
                self.vectors[key] = vector
            if self.path is not None:
                np.savez(self.path, keys=np.array(list(self.vectors)), vectors=np.stack(list(self.vectors.values())))
        return np.stack([self.vectors[key] for key in keys])


def build_index(
    pages: dict, titles: dict, with_context: bool, settings: Settings, cache: EmbeddingCache
) -> HybridTextIndex:
    index = HybridTextIndex(None, device="cpu")
    for doc_id, doc_pages in pages.items():
        chunks = chunk_pages(
            doc_id,
            titles[doc_id],
            doc_pages,
            chunk_chars=settings.ingest.chunk_chars,
            chunk_overlap=settings.ingest.chunk_overlap,
            with_context=with_context,
        )
        chunks = [c for c in chunks if c.text.strip()]
        if chunks:
            index.add(chunks, cache(chunks))
    return index


def chunk_rrf(index: HybridTextIndex, query: str, k: int) -> list[Hit]:
    """Main's ranking before this change: dense + BM25 fused per chunk (50 deep), pages in order of first chunk."""
    dense = index.search_dense(query, 50)
    lexical = index.search_bm25(query, 50)
    fused = reciprocal_rank_fusion([dense, lexical], key=lambda hit: hit.chunk_id)
    return [hit for hit, _ in fused]


def evaluate(search, questions: list[Question]) -> dict[str, tuple[float, float, float, int]]:
    per_half: dict[str, list[tuple[float, float, float]]] = {"all": [], "dev": [], "test": []}
    for q in questions:
        ranking: list[int] = []
        for hit in search(q.text):
            if hit.doc_id == q.doc_id and hit.page not in ranking:
                ranking.append(hit.page)
        scores = (recall_at(ranking, q.evidence, 1), recall_at(ranking, q.evidence, K), ndcg_at(ranking, q.evidence, K))
        per_half["all"].append(scores)
        per_half["dev" if q.position % 2 == 0 else "test"].append(scores)
    return {
        half: (*(float(np.mean([s[i] for s in rows])) for i in range(3)), len(rows)) for half, rows in per_half.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True, help="workspace with the 27 PDFs ingested")
    parser.add_argument("--documents", type=Path, default=DATA / "documents")
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (.npz) shared by the rows")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    parser.add_argument("--rows", default="", help="comma-separated row names to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    settings = Settings(workspace=args.workspace)
    workspace = Workspace.open(settings)
    try:
        questions, pages, titles = load(workspace, args.documents)
    finally:
        workspace.close()
    cache = EmbeddingCache(args.cache, HybridTextIndex(None, device="cpu"))
    indexes = {flag: build_index(pages, titles, flag, settings, cache) for flag in (False, True)}

    best = PageScoring()
    rows: list[tuple[str, bool, PageScoring | None]] = [
        ("before: chunk RRF, pages by best chunk", False, None),
        ("page-level fusion only", False, PAGE_FUSION_ONLY),
        ("after: all mechanisms", True, best),
        ("  without heading context", False, best),
        ("  without document support", True, replace(best, document_weight=0.0)),
        ("  without neighbouring pages", True, replace(best, neighbour_weight=0.0)),
        ("  without page references", True, replace(best, page_references=False)),
        ("  best 2 chunks per page", True, replace(best, chunks_per_page=2)),
    ]
    wanted = {name.strip() for name in args.rows.split(",") if name.strip()}
    print(f"MMLongBench-Doc evidence pages, text channel, all {len(pages)} documents searched, k={K}")
    print(f"{sum(len(p) for p in pages.values())} pages; {len(questions)} answerable questions")
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
        chunks = "headings" if with_context else "plain"
        print(
            f"| {name} | {chunks} | {r1:.3f} | {r5:.3f} | {ndcg:.3f} | {result['dev'][1]:.3f} | "
            f"{result['test'][1]:.3f} | {wall:.0f} | {cpu_ms:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
