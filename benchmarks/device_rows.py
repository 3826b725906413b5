"""Issue 14's GPU rows as one prepared script for a session that is lent a device (a CPU run checks the script).

``encode``: the page channel of ingest, end to end from PDF to stored vectors: the first ``--pages`` pages
of the MMLongBench-Doc PDFs (name order) are rendered at ``--dpi`` and fed, as ingest feeds them, through
``_PageVectorStream`` to a ColModernVBERT of the released model's shapes with random weights
(``pagehop.testing.tiny_models.build_full_size_colmodernvbert``, built once into ``--model-dir``), DocPruner
on, into a fresh ``LocalPageIndex``. The text channel and the graph are left out: this row is the page
encoder's, and it needs no package beyond torch, transformers, pypdfium2 and pydantic (the seven wheels
``scripts/device-prepare`` stages). Prints pages per wall second, image tokens and kept vectors per page,
peak GPU memory and peak RSS; loading the model and two warm-up pages are not timed.

``search``: ``ResidentMaxSim`` — the exhaustive MaxSim that ``LocalPageIndex`` searches with when its vectors
are resident on CUDA — over ``--pages`` synthetic clustered pages x ``--vectors`` 128-d float16 vectors (each
page mixes 4 of 4,096 topic directions plus token noise, as ``page_index.py``'s synthetic set), fed straight
from device memory rather than from an on-disk index (building a 100k-page index takes longer than a device
session). 32-token queries, each a noisy sample of a random page's tokens. Prints p50 / p95 ms per query
(scores copied back to the host, top 10 taken there, as the index does) and recall@10 against a float32 exact
MaxSim over the same vectors on the same device.

    .venv/bin/python benchmarks/device_rows.py encode --pages 256          # on the device: the encoding row
    .venv/bin/python benchmarks/device_rows.py search                      # 100k pages x 500 vectors
    .venv/bin/python benchmarks/device_rows.py encode --pages 2 --device cpu   # checking the script here
    .venv/bin/python benchmarks/device_rows.py search --pages 2000 --vectors 100 --device cpu
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = REPO_ROOT.parent / "shared" / "data" / "mmlongbench" / "documents"
DIM = 128
TOPICS = 4096
NOISE = 0.06


def encode_row(args: argparse.Namespace) -> None:
    from pagehop.ingest.files import inspect_file
    from pagehop.ingest.loaders import open_source
    from pagehop.ingest.pipeline import _PageVectorStream
    from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
    from pagehop.retrieval.page_index import LocalPageIndex
    from pagehop.testing.tiny_models import build_full_size_colmodernvbert, render_test_page

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if not (args.model_dir / "config.json").is_file():
        started = time.perf_counter()
        build_full_size_colmodernvbert(args.model_dir)
        print(f"built the full-size random ColModernVBERT in {time.perf_counter() - started:.0f} s")
    encoder = ColModernVBertEncoder(args.model_dir, device=device, docpruner_k=args.docpruner_k)
    parameters = sum(p.numel() for p in encoder.model.parameters())
    list(encoder.encode_page_stream([render_test_page()] * 2))  # warm-up: CUDA context, kernels, workers
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    scratch = Path(tempfile.mkdtemp(prefix="pagehop-device-encode-"))
    pages = kept = patches = files = 0
    try:
        index = LocalPageIndex(scratch / "page_index", dim=encoder.embedding_dim)
        started, cpu = time.perf_counter(), time.process_time()
        for path in sorted(args.documents.glob("*.pdf")):
            if pages >= args.pages:
                break
            source = open_source(inspect_file(path, 1e9), args.dpi, 120_000_000)
            stream = _PageVectorStream(encoder, index, path.stem)  # as ingest feeds the encoder
            for raw in source.pages():
                if pages >= args.pages:
                    break
                if raw.size is not None:  # a page with something to draw
                    stream.put(raw.number, raw.pixels())
                    pages += 1
            source.close()
            for _, embedding in stream.finish():
                kept += int(embedding.vectors.shape[0])
                patches += embedding.num_patches
            files += 1
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        stored = len(index)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    gpu_peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    print(
        f"\n## Page channel end to end on {name}: random ColModernVBERT in {args.model_dir} "
        f"({parameters / 1e6:.1f} M parameters, {encoder.dtype}), DocPruner k = {args.docpruner_k}, {args.dpi} dpi\n"
    )
    print("| PDFs | pages stored | wall s | pages per wall s | CPU s (this process) | image tokens per page "
          "| kept vectors per page | peak GPU GiB | peak RSS GiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"| {files} | {stored} | {seconds:.1f} | {stored / seconds:.2f} | {cpu:.0f} | {patches / max(1, pages):.0f} "
        f"| {kept / max(1, pages):.0f} | {gpu_peak:.1f} | {rss:.1f} |"
    )


def synthetic_pages(generator: torch.Generator, topics: torch.Tensor, count: int, vectors: int) -> torch.Tensor:
    """(count, vectors, DIM) float16 pages on the topics' device, each mixing 4 topics plus token noise."""
    device = topics.device
    chosen = torch.randint(len(topics), (count, 4), generator=generator, device=device)
    which = torch.randint(4, (count, vectors), generator=generator, device=device)
    base = topics[torch.gather(chosen, 1, which)]
    noisy = base + NOISE * torch.randn(base.shape, generator=generator, device=device)
    return torch.nn.functional.normalize(noisy, dim=2).to(torch.float16)


def search_row(args: argparse.Namespace) -> None:
    from pagehop.retrieval.resident import ResidentMaxSim

    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    generator = torch.Generator(device=device).manual_seed(0)
    topics = torch.nn.functional.normalize(torch.randn(TOPICS, DIM, generator=generator, device=device), dim=1)
    started = time.perf_counter()
    pages = [synthetic_pages(generator, topics, min(4096, args.pages - s), args.vectors)
             for s in range(0, args.pages, 4096)]  # fmt: skip
    every = torch.cat(pages)
    del pages
    # The resident copy reads pages through the index's reader signature: (vectors, page ends) per range.
    flat = every.reshape(-1, DIM)

    def read(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        rows = flat[start * args.vectors : stop * args.vectors].cpu().numpy()
        return rows, np.arange(1, stop - start + 1) * args.vectors

    resident = ResidentMaxSim(device)
    resident.sync({"synthetic": (args.pages, read)})
    loaded = time.perf_counter() - started
    rng = np.random.default_rng(7)
    ms, recalls = [], []
    for _ in range(args.queries + args.warmup):
        page = int(rng.integers(args.pages))
        tokens = every[page, rng.choice(args.vectors, 32, replace=args.vectors < 32)].float().cpu().numpy()
        q = tokens + NOISE * rng.standard_normal(tokens.shape)
        q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
        t = time.perf_counter()
        scores = resident.scores("synthetic", q)
        top = np.argpartition(-scores, 10)[:10]
        ms.append(1000 * (time.perf_counter() - t))
        exact = _exact_top10(every, torch.from_numpy(q).to(device))
        recalls.append(len(set(top.tolist()) & exact) / 10)
    ms, recalls = ms[args.warmup :], recalls[args.warmup :]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    gib = resident.memory_bytes() / 2**30
    print(
        f"\n## Resident exhaustive MaxSim on {name}: {args.pages:,} pages x {args.vectors} vectors x {DIM}-d "
        f"float16 ({gib:.1f} GiB resident; generated and loaded in {loaded:.0f} s), 32-token queries\n"
    )
    print("| queries | p50 ms | p95 ms | recall@10 vs float32 exact |\n|---|---|---|---|")
    print(f"| {len(ms)} | {np.percentile(ms, 50):.2f} | {np.percentile(ms, 95):.2f} | {np.mean(recalls):.3f} |")


def _exact_top10(pages: torch.Tensor, q: torch.Tensor) -> set[int]:
    """Page ids of the float32 exact MaxSim top 10, in slices so the score tensor stays small."""
    scores = []
    for start in range(0, len(pages), 1024):
        part = pages[start : start + 1024].float()
        scores.append((part @ q.T).amax(dim=1).sum(dim=1))
    return set(torch.cat(scores).topk(10).indices.tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("row", choices=("encode", "search"))
    parser.add_argument("--device", default="auto", help="auto: cuda when present, else cpu")
    parser.add_argument("--pages", type=int, help="encode: PDF pages (default 256); search: pages (100,000)")
    parser.add_argument("--vectors", type=int, default=500, help="search: vectors per page")
    parser.add_argument("--queries", type=int, default=50, help="search: timed queries")
    parser.add_argument("--warmup", type=int, default=3, help="search: untimed first queries")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--docpruner-k", type=float, default=-0.25, help="encode: ingest.docpruner_k")
    parser.add_argument("--documents", type=Path, default=DOCUMENTS)
    parser.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "pagehop-colmodernvbert-full")
    args = parser.parse_args()
    if args.row == "encode":
        args.pages = args.pages or 256
        encode_row(args)
    else:
        args.pages = args.pages or 100_000
        search_row(args)


if __name__ == "__main__":
    main()
