"""Crash trials of issue 12: SIGKILL `pagehop ingest` at random points, re-run it, compare with a clean ingest.

For each graph store (the embedded networkx store and, when a server is configured, Neo4j), builds
a small mixed folder in code (text-layer PDFs, a scanned PDF and a PNG that need OCR, Markdown,
text), ingests it cleanly with the real command line (tiny random ColModernVBERT page vectors,
spaCy graph extraction), then kills `pagehop ingest` (its whole process group, SIGKILL) at random
moments (seeded) ``--trials`` times, re-running it after each kill; whenever a run finishes by
itself its workspace is compared with the clean one: documents (ids, content hashes, status),
pages, chunks (ids and text), text-index rows and their MiniLM vectors, page vectors per page,
graph entities, relations with their evidence and mentions, orphan or temporary files. Last,
`pagehop ingest --delete` of one document must equal a clean ingest of the folder without it.
Prints one row per store; every difference is listed under the table.

    nice -n 10 .venv/bin/python benchmarks/crash_trials.py [--trials 20] [--seed 12] [--stores networkx,neo4j]

Neo4j: the server in PAGEHOP_NEO4J__URI / __USER / __PASSWORD / __DATABASE (or .cache/neo4j/env);
each workspace writes under its own label namespace, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from pagehop.testing.crash_trials import StoreConfig, format_table, run_store_trials
from pagehop.testing.tiny_models import tiny_colmodernvbert_path

REPO_ROOT = Path(__file__).resolve().parents[1]


def neo4j_settings() -> dict[str, str] | None:
    env = {k: v for k, v in os.environ.items() if k.startswith("PAGEHOP_NEO4J__")}
    env_file = REPO_ROOT / ".cache" / "neo4j" / "env"
    if "PAGEHOP_NEO4J__URI" not in env and env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
    if "PAGEHOP_NEO4J__URI" not in env:
        return None
    return {key.removeprefix("PAGEHOP_NEO4J__").lower(): value for key, value in env.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="kills per store")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--stores", default="networkx,neo4j")
    args = parser.parse_args()

    encoder = tiny_colmodernvbert_path()
    results = []
    started = time.monotonic()
    for name in args.stores.split(","):
        neo4j = neo4j_settings() if name == "neo4j" else None
        if name == "neo4j" and neo4j is None:
            print("neo4j: no server configured (PAGEHOP_NEO4J__URI or .cache/neo4j/env); skipped")
            continue
        with tempfile.TemporaryDirectory(prefix=f"pagehop-crash-{name}-") as tmp:
            result = run_store_trials(
                Path(tmp), StoreConfig(name, neo4j), encoder, trials=args.trials, seed=args.seed, log=print
            )
        results.append(result)
    print()
    print(format_table(results))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = children.ru_utime + children.ru_stime
    wall = time.monotonic() - started
    print(f"\nwall {wall:.0f} s; CPU of the ingest runs {cpu:.0f} s; load average {os.getloadavg()[0]:.1f}")
    return 0 if results and all(r.mismatches == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
