"""CPU of the graph's resolution and store writes on the whole 2Wiki corpus, with the models taken out.

Ingest's graph hook is spaCy -> entity-name embedding -> resolution -> networkx store. The two models cost
the same whatever the code around them does, so this times the rest alone: ``prepare`` runs spaCy over the
corpus's chunks (in groups of ``TEXT_BATCH``, as ingest does) and embeds every entity name once, and pickles
both; ``time`` replays the groups through ``GraphIndexer.store_extracted`` with the name vectors served from
that pickle, into a networkx store with its journal in a scratch folder, and prints the CPU seconds of the
whole and of the store calls (wrapped). Run ``time`` with another checkout on ``PYTHONPATH`` to compare code.

    .venv/bin/python benchmarks/graph_resolution_cpu.py prepare /tmp/2wiki-graph.pkl [--quantization int8]
    .venv/bin/python benchmarks/graph_resolution_cpu.py time /tmp/2wiki-graph.pkl
"""

from __future__ import annotations

import argparse
import functools
import pickle
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

WIKI_CORPUS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "multihop" / "2wikimultihopqa_corpus.json"
)
# before and after issue 14's third pass: resolution asked get_entity / find_entities per entity, now two batches
STORE_CALLS = ("get_entity", "find_entities", "get_entities", "entities_named", "similar_entities", "upsert",
               "_apply_upsert", "_append")  # fmt: skip


def passage_chunks(passages: Sequence[Any], settings: Any) -> list[Any]:
    """The chunks ingest makes of each passage's text file (title line, blank line, text)."""
    from pagehop.retrieval.chunking import chunk_pages

    cut = settings.ingest
    return [
        chunk
        for number, p in enumerate(passages)
        for chunk in chunk_pages(
            f"d{number}",
            p.title,
            [(1, f"{p.title}\n\n{p.text.strip()}\n")],
            chunk_chars=cut.chunk_chars,
            chunk_overlap=cut.chunk_overlap,
            with_context=cut.heading_context,
        )
    ]


def cpu_timed(spent: dict[str, float], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, adding the CPU seconds of each call to ``spent[name]``."""

    @functools.wraps(function)
    def wrapper(*a: Any, **k: Any) -> Any:
        started = time.process_time()
        try:
            return function(*a, **k)
        finally:
            spent[name] = spent.get(name, 0.0) + time.process_time() - started

    return wrapper


def prepare(args: argparse.Namespace) -> None:
    import torch

    from pagehop.config import Settings
    from pagehop.eval.datasets import load_corpus
    from pagehop.graph.extraction import SpacyExtractor
    from pagehop.ingest.pipeline import TEXT_BATCH
    from pagehop.models import load_sentence_embedder, text_embedder_id

    torch.set_num_threads(1)
    settings = Settings(models={"text_embedder_quantization": args.quantization})
    chunks = passage_chunks(load_corpus(args.wiki_corpus), settings)
    extractor = SpacyExtractor.from_settings(settings.models.spacy_model)
    groups = [extractor.extract(chunks[i : i + TEXT_BATCH]) for i in range(0, len(chunks), TEXT_BATCH)]
    names = sorted({e.name for group in groups for e in group.entities})
    embedder = load_sentence_embedder(text_embedder_id(settings), "cpu")
    vectors = embedder.encode(names, normalize_embeddings=True)
    with args.cache.open("wb") as handle:
        pickle.dump((groups, dict(zip(names, np.asarray(vectors, dtype=np.float32), strict=True))), handle)
    print(f"{len(chunks)} chunks in {len(groups)} groups, {len(names)} entity names -> {args.cache}")


class _CachedNames:
    """The name vectors ``prepare`` computed, served as an embedder (the model's cost is left out)."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def encode(self, sentences: Sequence[str], **options: object) -> np.ndarray:
        return np.stack([self.vectors[name] for name in sentences])


def replay(args: argparse.Namespace) -> None:
    import pagehop
    from pagehop.graph.indexer import GraphIndexer
    from pagehop.graph.networkx_store import NetworkxGraphStore
    from pagehop.graph.resolution import EntityResolver

    with args.cache.open("rb") as handle:
        groups, vectors = pickle.load(handle)  # this benchmark's own file
    spent: dict[str, float] = {}
    for call in STORE_CALLS:
        if hasattr(NetworkxGraphStore, call):  # the calls this checkout's store has
            setattr(NetworkxGraphStore, call, cpu_timed(spent, call, getattr(NetworkxGraphStore, call)))
    with tempfile.TemporaryDirectory(prefix="pagehop-graph-cpu-") as folder:
        store = NetworkxGraphStore(Path(folder) / "graph.pkl")
        indexer = GraphIndexer(store, None, EntityResolver(store, _CachedNames(vectors)))  # type: ignore[arg-type]
        cpu, wall = time.process_time(), time.perf_counter()
        for group in groups:
            indexer.store_extracted(group)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stats = store.stats()
    print(f"code: {Path(pagehop.__file__).parent}; {len(groups)} groups -> {stats}")
    print(f"resolution + store: {cpu:.1f} CPU s ({wall:.1f} s wall)")
    print("| store call | CPU s |\n|---|---|")
    for call, seconds in spent.items():
        print(f"| {call} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("prepare", "time"))
    parser.add_argument("cache", type=Path, help="the pickle prepare writes and time reads")
    parser.add_argument("--wiki-corpus", type=Path, default=WIKI_CORPUS)
    parser.add_argument("--quantization", choices=("none", "int8"), default="int8", help="MiniLM for the names")
    args = parser.parse_args()
    if args.mode == "prepare":
        prepare(args)
    else:
        replay(args)


if __name__ == "__main__":
    main()
