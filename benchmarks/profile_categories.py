"""Where an ingest's CPU samples go: py-spy's raw (collapsed) stacks summed into ingest stages.

    py-spy record --format raw --threads -o prof.txt -- \\
        .venv/bin/python benchmarks/ingest_throughput.py --passages 1000 --quantization int8 --row 2wiki
    .venv/bin/python benchmarks/profile_categories.py prof.txt

Each stack counts once, for the first category in ``CATEGORIES`` that one of its frames matches (so the model
threads count as the model, a look-up inside resolution as the look-up); stacks matching none are listed by
their innermost frame.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (category, pattern on one frame, "function (file:line)" as py-spy writes it), first match wins
CATEGORIES = [
    ("MiniLM ONNX worker threads (chunk texts and entity names)", r"(_embed_one |encode\.<locals>\.run )"),
    ("entity-name vectors (character trigrams)", r"(^|\.)name_vector "),
    ("chunk embedding, calling thread (waits for the workers)", r"(^|\.)embed_chunks "),
    ("similar_entities", r"(^|\.)similar_entities "),
    ("resolution look-ups (by id, by alias)", r"(^|\.)(_by_alias|get_entity|get_entities|entities_named) "),
    ("resolution, the rest (merging)", r"(^|\.)resolve \(pagehop/graph/resolution"),
    ("networkx journal", r"(^|\.)_append "),
    ("graph write validation", r"(^|\.)validate_write "),
    ("networkx upsert in memory", r"(^|\.)_apply_upsert "),
    ("relation and mention dedupe (indexer)", r"(^|\.)store_extracted "),
    ("extraction's dependency walk", r"(^|\.)_extract_one "),
    ("spaCy nlp.pipe", r"(^|\.)extract \(pagehop/graph/extraction"),
    ("networkx snapshot", r"_save \(pagehop/graph/networkx"),
    ("Python imports", r"importlib"),
    ("catalog commit (SQLite)", r"(^|\.)commit_documents "),
    ("begin_document (SQLite)", r"(^|\.)begin_document "),
    ("page images", r"(^|\.)_write_page_images "),
    ("text index add", r"(^|\.)add \(pagehop/retrieval/text_index"),
    ("text index save", r"(^|\.)save \(pagehop/retrieval/text_index"),
    ("chunking", r"(^|\.)chunk_pages "),
    ("file check, read, load", r"(^|\.)(_build_document|inspect_file|_prepare_one) "),
    ("workspace open, recovery", r"(^|\.)(recover|open_workspace) "),
    ("benchmark set-up (corpus files)", r"(^|\.)(write_corpus_documents|load_corpus|inputs) "),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--most", type=int, default=25, help="rows to print")
    args = parser.parse_args()
    patterns = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
    counts: Counter[str] = Counter()
    for line in args.profile.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        stack, samples = line.rsplit(" ", 1)
        frames = stack.split(";")
        category = next(
            (name for name, pattern in patterns if any(pattern.search(f) for f in frames)),
            f"other: {frames[-1][:90]}",
        )
        counts[category] += int(samples)
    total = sum(counts.values())
    print(f"{total} samples\n| where (stack contains) | samples | share |\n|---|---|---|")
    for name, samples in counts.most_common(args.most):
        print(f"| {name} | {samples} | {100 * samples / total:.1f} % |")


if __name__ == "__main__":
    main()
