"""How long a graph written before the trigram name vectors takes to migrate (``GraphStore.revector_entities``).

A graph built before issue 14's fourth pass holds a 384-d MiniLM vector per entity; the first entity
resolution of a newer pagehop gives every entity its 512-d trigram vector (Neo4j: the vector index dropped,
the vectors written a batch per transaction, the index built again). This builds such a graph — as many
entities as the whole 2Wiki corpus yields, named after its titles, with random 384-d vectors — in a fresh
store and times the one migration call, wall and CPU of this process (Neo4j's own CPU is the server's).

    .venv/bin/python benchmarks/graph_revector.py --entities 34000 --backends networkx neo4j

Neo4j connection as in ``graph_2wiki.py`` (PAGEHOP_NEO4J__*, else .cache/neo4j/env); the run writes under a
namespace of its own and drops it at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from graph_2wiki import open_store

from pagehop.graph.base import Entity
from pagehop.graph.networkx_store import NetworkxGraphStore
from pagehop.graph.resolution import NAME_VECTOR_DIMS, entity_id_for, name_vector

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "multihop" / "2wikimultihopqa_corpus.json"
OLD_DIMS = 384  # all-MiniLM-L6-v2, the name vectors before the trigrams
WRITE_BATCH = 2_000


def older_entities(count: int) -> list[Entity]:
    """About ``count`` distinct entities named after the corpus's titles, each with a random unit 384-d vector."""
    titles = [row["title"] for row in json.loads(CORPUS.read_text())]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, OLD_DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [titles[i % len(titles)] + ("" if i < len(titles) else f" {i // len(titles)}") for i in range(count)]
    by_id = {  # titles that differ only in case or punctuation are one entity
        entity_id_for(name): Entity(entity_id=entity_id_for(name), name=name, type="ORG", embedding=vector.tolist())
        for name, vector in zip(names, vectors, strict=True)
    }
    return list(by_id.values())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(backend: str, entities: list[Entity]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        if backend == "networkx":
            store = NetworkxGraphStore(Path(scratch) / "graph.pkl")
        else:
            store = open_store(backend, f"R{uuid.uuid4().hex[:10]}_")
        try:
            for start in range(0, len(entities), WRITE_BATCH):
                store.upsert(entities[start : start + WRITE_BATCH], [], [])
            wall, cpu = time.perf_counter(), cpu_seconds()
            changed = store.revector_entities(lambda name: name_vector(name).tolist(), NAME_VECTOR_DIMS)
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            again = store.revector_entities(lambda name: name_vector(name).tolist(), NAME_VECTOR_DIMS)
            sample = store.get_entity(entities[-1].entity_id)
            assert changed == len(entities) and again == 0, (changed, again)
            assert sample is not None and len(sample.embedding or []) == NAME_VECTOR_DIMS
        finally:
            if backend == "neo4j":
                store.drop_all()  # type: ignore[attr-defined]
            store.close()
    return {"entities": changed, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=34_000)
    parser.add_argument("--backends", nargs="+", default=["networkx", "neo4j"], choices=["networkx", "neo4j"])
    args = parser.parse_args()
    entities = older_entities(args.entities)
    print(f"| store | entities migrated ({OLD_DIMS}-d -> {NAME_VECTOR_DIMS}-d) | wall s | CPU s (this process) |")
    print("|---|---|---|---|")
    for backend in args.backends:
        row = run(backend, entities)
        print(f"| {backend} | {row['entities']:,} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} |", flush=True)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
