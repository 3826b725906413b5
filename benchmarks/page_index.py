"""Visual page channel benchmark: DocPruner storage savings and LocalPageIndex search latency.

Part 1 (pruning): renders real MMLongBench-Doc pages, encodes them with the tiny random
ColModernVBERT (``pagehop.testing.tiny_models``: 208 image tokens per A4 page instead of
the real model's ~800-1,100) and applies DocPruner at several ``k`` to the model's real
last-layer attention. With random weights the attention carries no page semantics, so
the kept fractions show the mechanics of the rule, not the real model's savings.

Part 2 (search): synthetic clustered vectors (each page mixes a few of many "topic"
directions plus token noise, L2-normalised, float16, 128-d) in a ``LocalPageIndex``;
32-token queries are noisy samples of a random page's tokens. Reports build time, disk
bytes, p50/p95 latency of exact MaxSim and of the first stage (summary vectors ->
candidates -> exact re-rank), and the first stage's recall@10 against exact search.

    .venv/bin/python benchmarks/page_index.py                 # full run
    .venv/bin/python benchmarks/page_index.py --sizes 10000   # quicker
"""

from __future__ import annotations

import os

# One BLAS / torch thread by default: the machine is shared, and per-query latency on one
# core is the easiest number to compare. Must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = REPO_ROOT.parent / "shared" / "data" / "mmlongbench" / "documents"
DIM = 128
REAL_TOKENS_PER_PAGE = 1088  # US-letter page, real ColModernVBERT (16 tiles + global)


def pruning_table(num_docs: int, pages_per_doc: int, ks: list[float]) -> None:
    import pypdfium2
    import torch

    from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
    from pagehop.retrieval.docpruner import prune_page
    from pagehop.testing.tiny_models import tiny_colmodernvbert_path

    torch.set_num_threads(1)
    images = []
    for pdf_path in sorted(DOCUMENTS.glob("*.pdf"))[:num_docs]:
        pdf = pypdfium2.PdfDocument(pdf_path)
        for number in range(min(pages_per_doc, len(pdf))):
            images.append(pdf[number].render(scale=72 / 72).to_pil())
        pdf.close()
    encoder = ColModernVBertEncoder(tiny_colmodernvbert_path(), device="cpu", docpruner_k=None, batch_size=4)
    started = time.perf_counter()
    patches = encoder.page_patches(images)
    seconds = time.perf_counter() - started
    tokens = np.array([len(scores) for _, scores in patches])
    print(
        f"\n## DocPruner on {len(images)} MMLongBench-Doc pages ({num_docs} PDFs x first {pages_per_doc} pages), "
        f"tiny random ColModernVBERT, encoded in {seconds:.1f} s\n"
    )
    print("| k | image tokens/page (tiny) | kept/page | kept % | bytes/page (128-d fp16) | real page, same % |")
    print("|---|---|---|---|---|---|")
    full = tokens.mean()
    print(f"| none | {full:.0f} | {full:.1f} | 100.0 | {full * DIM * 2:,.0f} | {REAL_TOKENS_PER_PAGE * DIM * 2:,} |")
    for k in ks:
        kept = np.array([prune_page(scores, k).kept for _, scores in patches])
        share = kept.sum() / tokens.sum()
        print(
            f"| {k:+.2f} | {full:.0f} | {kept.mean():.1f} | {100 * share:.1f} | "
            f"{kept.mean() * DIM * 2:,.0f} | {REAL_TOKENS_PER_PAGE * share * DIM * 2:,.0f} |"
        )


def synthetic_pages(
    rng: np.random.Generator, topics: np.ndarray, count: int, vectors_per_page: int, noise: float
) -> np.ndarray:
    """(count, vectors_per_page, DIM) float16 pages, each mixing 4 topics."""
    chosen = rng.integers(0, len(topics), size=(count, 4))
    which = rng.integers(0, 4, size=(count, vectors_per_page))
    base = topics[np.take_along_axis(chosen, which, axis=1)]
    v = base + noise * rng.normal(size=base.shape).astype(np.float32)
    v /= np.linalg.norm(v, axis=2, keepdims=True)
    return v.astype(np.float16)


def search_table(
    sizes: list[int], vectors_per_page: list[int], queries: int, candidates: list[int], num_topics: int
) -> None:
    from pagehop.retrieval.page_index import LocalPageIndex

    rows = []
    for size, per_page in zip(sizes, vectors_per_page, strict=True):
        rng = np.random.default_rng(size)
        topics = rng.normal(size=(num_topics, DIM)).astype(np.float32)
        topics /= np.linalg.norm(topics, axis=1, keepdims=True)
        noise = 0.06  # token-to-topic cosine ~0.83
        with tempfile.TemporaryDirectory(prefix="pagehop-bench-") as folder:
            index = LocalPageIndex(Path(folder), dim=DIM)
            started = time.perf_counter()
            sample_pages: list[np.ndarray] = []
            for start in range(0, size, 2000):
                block = synthetic_pages(rng, topics, min(2000, size - start), per_page, noise)
                index.add_many((f"doc{(start + i) // 20}", (start + i) % 20 + 1, block[i]) for i in range(len(block)))
                sample_pages.extend(block[: max(1, queries // max(1, size // 2000))])
            build_s = time.perf_counter() - started
            disk = index.stats()["bytes_on_disk"]
            qs = []
            for i in range(queries):
                page = sample_pages[i % len(sample_pages)].astype(np.float32)
                q = page[rng.choice(per_page, 32, replace=per_page < 32)] + noise * rng.normal(size=(32, DIM))
                qs.append((q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
            index.search(qs[0], k=10)  # warm the page cache and memmaps
            exact_hits, exact_ms = [], []
            for q in qs:
                t = time.perf_counter()
                exact_hits.append({(d, p) for d, p, _ in index.search(q, k=10)})
                exact_ms.append(1000 * (time.perf_counter() - t))
            rows.append((size, per_page, build_s, disk, "exact MaxSim", exact_ms, 1.0))
            for n in candidates:
                ms, recalls = [], []
                for q, truth in zip(qs, exact_hits, strict=True):
                    t = time.perf_counter()
                    hits = index.search(q, k=10, candidates=n)
                    ms.append(1000 * (time.perf_counter() - t))
                    recalls.append(len(truth & {(d, p) for d, p, _ in hits}) / 10)
                rows.append(
                    (size, per_page, build_s, disk, f"first stage, {n} candidates", ms, float(np.mean(recalls)))
                )
            del index
    print(
        f"\n## LocalPageIndex search, synthetic pages (4 of {num_topics} topics each), "
        f"32-token queries x {queries}, 1 thread\n"
    )
    print("| pages | vectors/page | build s | disk MB | method | p50 ms | p95 ms | recall@10 vs exact |")
    print("|---|---|---|---|---|---|---|---|")
    for size, per_page, build_s, disk, method, ms, recall in rows:
        print(
            f"| {size:,} | {per_page} | {build_s:.0f} | {disk / 1e6:,.0f} | {method} | "
            f"{np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f} | {recall:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=6)
    parser.add_argument("--pages-per-doc", type=int, default=4)
    parser.add_argument("--ks", type=float, nargs="+", default=[-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--vectors-per-page", type=int, nargs="+", default=[160, 64])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--candidates", type=int, nargs="+", default=[100, 400, 1000])
    parser.add_argument("--topics", type=int, default=4096, help="fewer topics: pages alike, harder first stage")
    parser.add_argument("--skip-pruning", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    if len(args.vectors_per_page) != len(args.sizes):
        parser.error("give one --vectors-per-page per --sizes entry")
    if not args.skip_pruning:
        pruning_table(args.docs, args.pages_per_doc, args.ks)
    if not args.skip_search:
        search_table(args.sizes, args.vectors_per_page, args.queries, args.candidates, args.topics)


if __name__ == "__main__":
    main()
