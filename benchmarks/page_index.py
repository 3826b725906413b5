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

At scale (an index on disk; docs/benchmarks.md has the commands): ``--scale build`` writes it,
``--scale search`` times queries and recall against a cached exact reference, ``--scale open``
times opening it and answering the first fast query in fresh processes (``--store-lists``
first stores the inverted lists of an index written before they were persisted).
"""

from __future__ import annotations

import os

# One BLAS / torch thread by default: the machine is shared, and per-query latency on one
# core is the easiest number to compare. Must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from itertools import islice, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

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


# -- scale: 100k pages on disk, bounded memory -----------------------------------------

SCALE_BLOCK = 1000  # pages generated and added per commit
BANK_PER_TOPIC = 64  # noisy token variants per topic


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _token_bank(num_topics: int, noise: float) -> np.ndarray:
    """(topics, BANK_PER_TOPIC, DIM) unit float32 tokens: noisy variants of random topic directions.

    Pages draw their tokens from this bank, so 50M tokens cost a gather, not 6.4G normal
    draws (the shared 2-core machine draws ~50M normals/s).
    """
    rng = np.random.default_rng(0)
    topics = rng.standard_normal((num_topics, DIM), dtype=np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    bank = topics[:, None, :] + noise * rng.standard_normal((num_topics, BANK_PER_TOPIC, DIM), dtype=np.float32)
    return bank / np.linalg.norm(bank, axis=2, keepdims=True)


def _scale_block(bank: np.ndarray, block: int, per_page: int) -> np.ndarray:
    """Block ``block``'s (SCALE_BLOCK, per_page, DIM) float16 pages, each mixing 4 topics; deterministic."""
    rng = np.random.default_rng((1, block))
    chosen = rng.integers(0, len(bank), size=(SCALE_BLOCK, 4))
    which = np.take_along_axis(chosen, rng.integers(0, 4, size=(SCALE_BLOCK, per_page)), axis=1)
    variant = rng.integers(0, BANK_PER_TOPIC, size=(SCALE_BLOCK, per_page))
    return bank[which, variant].astype(np.float16, copy=False)


def scale_build(
    folder: Path, pages: int, per_page: int, num_topics: int, noise: float, minutes: float, commit_pages: int
) -> None:
    """Add blocks until the index in ``folder`` holds ``pages`` pages; resumes where a run stopped.

    Pages are committed ``commit_pages`` at a time (one ``add_many``, one fsync of each file).
    """
    from pagehop.retrieval.page_index import LocalPageIndex

    index = LocalPageIndex(folder, dim=DIM)
    bank = _token_bank(num_topics, noise).astype(np.float16)  # pages gather float16 tokens directly
    started, cpu_started = time.perf_counter(), time.process_time()
    while len(index) < pages and time.perf_counter() - started < 60 * minutes:
        first = len(index) // SCALE_BLOCK
        blocks = range(first, min(first + max(1, commit_pages // SCALE_BLOCK), -(-pages // SCALE_BLOCK)))
        batch = []
        for block in blocks:
            vectors = _scale_block(bank, block, per_page)
            batch.extend((f"doc{block}", i + 1, vectors[i]) for i in range(SCALE_BLOCK))
        index.add_many(batch)
        del batch
        print(
            f"{len(index):,} pages, {time.perf_counter() - started:.0f} s, "
            f"CPU {time.process_time() - cpu_started:.0f} s, peak RSS {_peak_rss_mib():,.0f} MiB",
            flush=True,
        )
    stats = index.stats()
    print(
        f"\nbuild: {len(index):,} of {pages:,} pages, {stats['bytes_on_disk'] / 1e9:.1f} GB on disk, "
        f"{time.perf_counter() - started:.0f} s wall / {time.process_time() - cpu_started:.0f} s CPU this run, "
        f"peak RSS {_peak_rss_mib():,.0f} MiB"
    )


def _exact_top10_batched(index: object, queries: list[np.ndarray]) -> list[set[tuple[str, int]]]:
    """Exact top 10 of many queries in ONE read of the index (reference for recall)."""
    from pagehop.retrieval.page_index import _BLOCK_VECTORS, as_float32

    idx: Any = index
    q_all = np.concatenate(queries)  # (queries * tokens, DIM)
    tokens = len(queries[0])
    refs: list[tuple[int, int]] = []
    parts = []
    for seg_index, segment in enumerate(idx._segments):
        vectors, ends, _ = idx._arrays(segment)
        starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
        scores = np.empty((len(queries), segment.num_pages), dtype=np.float32)
        page = 0
        while page < segment.num_pages:
            stop = max(page + 1, int(np.searchsorted(ends, starts[page] + _BLOCK_VECTORS, side="right")))
            v0, v1 = int(starts[page]), int(ends[stop - 1])
            sims = q_all @ as_float32(vectors[v0:v1]).T
            best = np.maximum.reduceat(sims, starts[page:stop] - v0, axis=1)
            scores[:, page:stop] = best.reshape(len(queries), tokens, -1).sum(axis=1)
            page = stop
        live = np.ones(segment.num_pages, dtype=bool)
        live[list(segment.dead)] = False
        refs.extend((seg_index, int(local)) for local in np.flatnonzero(live))
        parts.append(scores[:, live])
    allscores = np.concatenate(parts, axis=1)
    out = []
    for row in allscores:
        top = np.argsort(-row, kind="stable")[:10]
        out.append({idx._keys(idx._segments[refs[i][0]])[refs[i][1]] for i in top})
    return out


def _scale_queries(pages: int, per_page: int, num_topics: int, noise: float, queries: int) -> list[np.ndarray]:
    """Noisy 32-token samples of random stored pages (the same ones for the same arguments)."""
    rng = np.random.default_rng(7)
    bank = _token_bank(num_topics, noise)
    qs = []
    for _ in range(queries):
        page = int(rng.integers(pages))
        tokens = _scale_block(bank, page // SCALE_BLOCK, per_page)[page % SCALE_BLOCK].astype(np.float32)
        q = tokens[rng.choice(per_page, 32, replace=per_page < 32)] + noise * rng.standard_normal((32, DIM))
        qs.append((q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
    return qs


def scale_search(
    folder: Path, per_page: int, num_topics: int, noise: float, queries: int, candidates: list[int], exact_runs: int
) -> None:
    from pagehop.retrieval.page_index import LocalPageIndex

    index = LocalPageIndex(folder, dim=DIM)
    pages = len(index)
    qs = _scale_queries(pages, per_page, num_topics, noise, queries)
    # The batched reference reads the whole index: cache it beside the index for reruns.
    cache = folder.with_name(f"{folder.name}.truth-{pages}-{queries}.json")
    started = time.perf_counter()
    if cache.is_file():
        truth = [{(str(d), int(p)) for d, p in hits} for hits in json.loads(cache.read_text())]
        truth_note = f"read from {cache}"
    else:
        truth = _exact_top10_batched(index, qs)
        cache.write_text(json.dumps([sorted(hits) for hits in truth]))
        truth_note = f"computed in one batched scan in {time.perf_counter() - started:.0f} s"
    # The first fast query reads the stored inverted lists (or derives any that are not stored).
    t, c = time.perf_counter(), time.process_time()
    index.search(qs[0], k=10, exact=False)
    first_query = (1000 * (time.perf_counter() - t), 1000 * (time.process_time() - c))
    shortlists = [len(index._first_stage(q, pages)) for q in qs]  # pages the first stage scores
    rows = []
    exact_ms, exact_cpu_ms = [], []
    for q, expected in zip(qs[:exact_runs], truth, strict=False):
        t, c = time.perf_counter(), time.process_time()
        got = {(d, p) for d, p, _ in index.search(q, k=10)}
        exact_ms.append(1000 * (time.perf_counter() - t))
        exact_cpu_ms.append(1000 * (time.process_time() - c))
        assert got == expected, "batched reference disagrees with LocalPageIndex exact search"
    if exact_ms:
        rows.append((f"exact MaxSim ({len(exact_ms)} queries)", exact_ms, exact_cpu_ms, 1.0))
    methods = [(f"fast path (exact=False, {index.fast_candidates} candidates)", {"exact": False})]
    methods += [(f"first stage, {n} candidates", {"candidates": n}) for n in candidates]
    for label, kwargs in methods:
        index.search(qs[0], k=10, **kwargs)  # load summaries once
        ms, cpu_ms, recalls = [], [], []
        for q, expected in zip(qs, truth, strict=True):
            t, c = time.perf_counter(), time.process_time()
            hits = index.search(q, k=10, **kwargs)
            ms.append(1000 * (time.perf_counter() - t))
            cpu_ms.append(1000 * (time.process_time() - c))
            recalls.append(len(expected & {(d, p) for d, p, _ in hits}) / 10)
        rows.append((label, ms, cpu_ms, float(np.mean(recalls))))
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "?")
    codebook = index._codebook
    print(
        f"\n## LocalPageIndex at scale: {pages:,} pages x {per_page} vectors x {DIM}-d float16 "
        f"({index.stats()['bytes_on_disk'] / 1e9:.1f} GB on disk), 32-token queries x {queries}, "
        f"{threads} BLAS thread(s); reference top 10 {truth_note}\n"
    )
    if codebook is not None:
        print(
            f"codebook: {len(codebook.centroids):,} centroids (trained at {codebook.trained_on:,} pages); "
            f"first stage scores {np.median(shortlists):,.0f} pages per query (median; max {max(shortlists):,}); "
            f"first fast query after opening (reads or derives the inverted lists): {first_query[0]:,.0f} ms wall, "
            f"{first_query[1]:,.0f} ms CPU\n"
        )
    print("| method | p50 ms | p95 ms | CPU-time p50 ms | recall@10 vs exact |")
    print("|---|---|---|---|---|")
    for label, ms, cpu_ms, recall in rows:
        print(
            f"| {label} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f} | "
            f"{np.percentile(cpu_ms, 50):.1f} | {recall:.3f} |"
        )
    print(f"\npeak RSS of the search process: {_peak_rss_mib():,.0f} MiB")


def _lists_stored(folder: Path) -> str:
    manifest = json.loads((folder / "manifest.json").read_text())
    stored = sum(1 for entry in manifest["segments"] if "cells" in entry)
    return f"{stored} of {len(manifest['segments'])} segments"


def scale_store_lists(folder: Path) -> None:
    """Child process: store the inverted lists of an index written without them (one writer commit)."""
    started, cpu = time.perf_counter(), time.process_time()
    from pagehop.retrieval.page_index import LocalPageIndex

    index = LocalPageIndex(folder, dim=DIM)
    opened = (time.perf_counter() - started, time.process_time() - cpu)
    index.store_inverted_lists()
    stored_bytes = sum(path.stat().st_size for path in folder.glob("cells-*.i32"))
    result = {
        "open_s": opened[0],
        "open_cpu_s": opened[1],
        "store_s": time.perf_counter() - started - opened[0],
        "store_cpu_s": time.process_time() - cpu - opened[1],
        "stored_bytes": stored_bytes,
        "peak_rss_mib": _peak_rss_mib(),
    }
    print(json.dumps(result), flush=True)


def scale_first_query(folder: Path, query_file: Path) -> None:
    """Child process: open the index, answer one fast query, then the same query again; prints JSON."""
    import logging

    logging.basicConfig(level=logging.INFO, format="  [child] %(levelname)s %(message)s")
    logging.getLogger("pagehop.retrieval.page_index").setLevel(logging.WARNING)  # one line per segment otherwise
    q = np.load(query_file)
    marks = [(time.perf_counter(), time.process_time())]
    # Timed apart: the exact re-rank converts float16 through torch, which a process that
    # encodes its queries with ColModernVBERT has imported already.
    import torch  # noqa: F401

    marks.append((time.perf_counter(), time.process_time()))
    from pagehop.retrieval.page_index import LocalPageIndex

    index = LocalPageIndex(folder, dim=DIM)
    marks.append((time.perf_counter(), time.process_time()))
    first = index.search(q, k=10, exact=False)
    marks.append((time.perf_counter(), time.process_time()))
    second = index.search(q, k=10, exact=False)
    marks.append((time.perf_counter(), time.process_time()))
    assert first == second
    spans = [(b[0] - a[0], b[1] - a[1]) for a, b in pairwise(marks)]
    names = ("import_torch", "open", "first_query", "second_query")
    result: dict[str, Any] = {f"{name}_s": wall for name, (wall, _) in zip(names, spans, strict=True)}
    result |= {f"{name}_cpu_s": cpu for name, (_, cpu) in zip(names, spans, strict=True)}
    result |= {"pages": len(index), "peak_rss_mib": _peak_rss_mib(), "top10": [hit[:2] for hit in first]}
    print(json.dumps(result), flush=True)


def scale_open(folder: Path, per_page: int, num_topics: int, noise: float, runs: int, store_lists: bool) -> None:
    """Time to open the index and answer the first fast query, each in a fresh process.

    With ``store_lists`` a writer process first stores the inverted lists (an index built
    before they were persisted gets them this way, or with its next write).
    """
    import subprocess
    import sys

    manifest = json.loads((folder / "manifest.json").read_text())
    pages = sum(entry["num_pages"] - len(entry["dead"]) for entry in manifest["segments"])
    query = _scale_queries(pages, per_page, num_topics, noise, 1)[0]

    def child(*args: str) -> dict[str, Any]:
        command = [sys.executable, __file__, "--scale-folder", str(folder), *args]
        out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    print(f"\n## Opening {folder} ({pages:,} pages) and answering the first fast query, fresh processes\n")
    if store_lists:
        stored = child("--scale", "store-lists")
        print(
            f"store_inverted_lists (writer, one commit): {stored['store_s']:.1f} s wall, "
            f"{stored['store_cpu_s']:.1f} s CPU after opening ({stored['open_s']:.1f} s / "
            f"{stored['open_cpu_s']:.1f} s CPU); lists files {stored['stored_bytes'] / 1e6:.1f} MB; "
            f"peak RSS {stored['peak_rss_mib']:,.0f} MiB\n"
        )
    lists = _lists_stored(folder)
    with tempfile.TemporaryDirectory(prefix="pagehop-bench-") as scratch:
        query_file = Path(scratch) / "query.npy"
        np.save(query_file, query)
        results = [child("--scale", "first-query", "--query-file", str(query_file)) for _ in range(runs)]
    print(
        f"inverted lists stored: {lists}; top 10 identical in every run: "
        f"{all(r['top10'] == results[0]['top10'] for r in results)}\n"
    )
    print(
        "| run | import torch s (CPU s) | open s (CPU s) | first fast query s (CPU s) | next query ms (CPU ms) "
        "| peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|")
    for number, r in enumerate(results, 1):
        print(
            f"| {number} | {r['import_torch_s']:.2f} ({r['import_torch_cpu_s']:.2f}) | "
            f"{r['open_s']:.2f} ({r['open_cpu_s']:.2f}) | "
            f"{r['first_query_s']:.2f} ({r['first_query_cpu_s']:.2f}) | "
            f"{1000 * r['second_query_s']:.0f} ({1000 * r['second_query_cpu_s']:.0f}) | {r['peak_rss_mib']:,.0f} |"
        )


def real_pages_table(candidates: list[int], max_pages: int | None) -> None:
    """Fast paths vs exact on vectors of the tiny random ColModernVBERT over every MMLongBench-Doc page."""

    import pypdfium2
    import torch

    from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
    from pagehop.retrieval.page_index import LocalPageIndex
    from pagehop.testing.tiny_models import tiny_colmodernvbert_path

    torch.set_num_threads(1)

    def rendered() -> Iterator[Image.Image]:
        for pdf_path in sorted(DOCUMENTS.glob("*.pdf")):
            pdf = pypdfium2.PdfDocument(pdf_path)
            for number in range(len(pdf)):
                yield pdf[number].render(scale=1).to_pil()
            pdf.close()

    keys = [
        (pdf_path.name, number + 1)
        for pdf_path in sorted(DOCUMENTS.glob("*.pdf"))
        for number in range(len(pypdfium2.PdfDocument(pdf_path)))
    ][:max_pages]
    encoder = ColModernVBertEncoder(tiny_colmodernvbert_path(), device="cpu", docpruner_k=-0.25)
    started = time.perf_counter()
    pages = list(encoder.encode_page_stream(islice(rendered(), len(keys))))
    encode_s = time.perf_counter() - started
    questions = [sample["question"] for sample in json.loads((DOCUMENTS.parent / "samples.json").read_text())]
    queries = encoder.encode_queries(questions)
    with tempfile.TemporaryDirectory(prefix="pagehop-bench-") as folder:
        index = LocalPageIndex(Path(folder) / "cpu", dim=DIM)
        index.add_many((doc, number, page.vectors) for (doc, number), page in zip(keys, pages, strict=True))
        on_device = LocalPageIndex(Path(folder) / "cpu", dim=DIM, device="cpu")
        truth = [index.search(q, k=10) for q in queries]
        methods: list[tuple[str, LocalPageIndex, dict[str, Any]]] = [
            ("resident torch path on the CPU (the GPU code)", on_device, {"exact": False})
        ]
        methods += [(f"first stage, {n} candidates", index, {"candidates": n}) for n in candidates]
        rows = []
        for label, searched, kwargs in methods:
            recalls, same = [], 0
            for q, expected in zip(queries, truth, strict=True):
                hits = searched.search(q, k=10, **kwargs)
                recalls.append(len({h[:2] for h in expected} & {h[:2] for h in hits}) / 10)
                same += [h[:2] for h in hits] == [h[:2] for h in expected]
            rows.append((label, float(np.mean(recalls)), same))
    kept = np.mean([len(page.vectors) for page in pages])
    print(
        f"\n## Fast paths vs exact on real pages: {len(pages)} MMLongBench-Doc pages (72 dpi) encoded by the tiny "
        f"random ColModernVBERT with DocPruner k=-0.25 ({kept:.0f} of {pages[0].num_patches} vectors kept per page "
        f"on average, {encode_s:.0f} s to render + encode), {len(queries)} questions as queries\n"
    )
    print("| method | recall@10 vs exact | queries with the identical ranked top 10 |")
    print("|---|---|---|")
    for label, recall, same in rows:
        print(f"| {label} | {recall:.3f} | {same} / {len(queries)} |")


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
    parser.add_argument(
        "--scale",
        choices=["build", "search", "open", "store-lists", "first-query"],
        help="the on-disk scale benchmark (only); open: open + first query in fresh processes "
        "(store-lists and first-query are its child steps)",
    )
    parser.add_argument("--open-runs", type=int, default=3, help="fresh processes timed by --scale open")
    parser.add_argument(
        "--store-lists", action="store_true", help="--scale open: first store the inverted lists (writer)"
    )
    parser.add_argument("--query-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--real-pages", action="store_true", help="only the fast-vs-exact table on real pages")
    parser.add_argument("--real-max-pages", type=int, help="the first N pages only (all 896 by default)")
    parser.add_argument("--scale-folder", type=Path, default=Path("/tmp/pagehop-scale-index"))
    parser.add_argument("--scale-pages", type=int, default=100_000)
    parser.add_argument("--scale-vectors", type=int, default=500)
    parser.add_argument("--build-minutes", type=float, default=13.0, help="stop a build run after this long")
    parser.add_argument("--commit-pages", type=int, default=4000, help="pages per add_many (one fsync) in a build")
    parser.add_argument("--exact-runs", type=int, default=3, help="timed exact searches at scale")
    args = parser.parse_args()
    if args.real_pages:
        real_pages_table(args.candidates, args.real_max_pages)
        return
    if args.scale == "build":
        scale_build(
            args.scale_folder,
            args.scale_pages,
            args.scale_vectors,
            args.topics,
            0.06,
            args.build_minutes,
            args.commit_pages,
        )
        return
    if args.scale == "open":
        scale_open(args.scale_folder, args.scale_vectors, args.topics, 0.06, args.open_runs, args.store_lists)
        return
    if args.scale == "store-lists":
        scale_store_lists(args.scale_folder)
        return
    if args.scale == "first-query":
        scale_first_query(args.scale_folder, args.query_file)
        return
    if args.scale == "search":
        scale_search(
            args.scale_folder, args.scale_vectors, args.topics, 0.06, args.queries, args.candidates, args.exact_runs
        )
        return
    if len(args.vectors_per_page) != len(args.sizes):
        parser.error("give one --vectors-per-page per --sizes entry")
    if not args.skip_pruning:
        pruning_table(args.docs, args.pages_per_doc, args.ks)
    if not args.skip_search:
        search_table(args.sizes, args.vectors_per_page, args.queries, args.candidates, args.topics)


if __name__ == "__main__":
    main()
