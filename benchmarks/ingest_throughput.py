"""Ingestion throughput (pages/s) on the MMLongBench-Doc PDFs, with the text layer and with OCR forced.

Each run is the full pipeline into a fresh workspace: render at --dpi, write the page PNG and
thumbnail, text layer (or tesseract), chunk, embed the chunks into the hybrid text index,
commit to the catalog. The OCR run uses the smallest documents until --ocr-pages pages are
reached (OCR costs ~1-2 s per page on one core, so the whole corpus would take half an hour).

    .venv/bin/python benchmarks/ingest_throughput.py [--ocr-pages 30] [--keep-workspace DIR]

``--keep-workspace`` keeps the text-layer workspace so ``mmlongbench_pages.py --workspace``
can reuse it instead of ingesting again.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pypdfium2 as pdfium
import torch

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.ingest.ocr import OcrMode
from pagehop.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = REPO_ROOT.parent / "shared" / "data" / "mmlongbench" / "documents"


def page_count(path: Path) -> int:
    pdf = pdfium.PdfDocument(str(path))
    try:
        return len(pdf)
    finally:
        pdf.close()


def smallest_documents(paths: list[Path], max_pages: int) -> list[Path]:
    chosen: list[Path] = []
    total = 0
    for path in sorted(paths, key=page_count):
        if chosen and total + page_count(path) > max_pages:
            break
        chosen.append(path)
        total += page_count(path)
    return chosen


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (tesseract): unlike wall time, it does
    not grow when other jobs share the machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(label: str, paths: list[Path], workspace_dir: Path, dpi: int, ocr: OcrMode) -> list[str]:
    workspace = Workspace.open(Settings(workspace=workspace_dir, ingest={"dpi": dpi}))
    workspace.text_index.embed(["warm up"])  # loading the model is not ingestion
    started, cpu_started = time.perf_counter(), cpu_seconds()
    report = ingest(workspace, paths, ocr=ocr, progress=False)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    chunks = len(workspace.text_index)
    workspace.close()
    failed = f" ({len(report.failed)} failed)" if report.failed else ""
    return [
        label,
        f"{len(report.ingested)}{failed}",
        str(report.pages),
        str(report.ocr_pages),
        str(chunks),
        f"{seconds:.1f}",
        f"{report.pages / seconds:.2f}",
        f"{cpu:.1f}",
        f"{report.pages / cpu:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=Path, default=DOCUMENTS)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents (by name)")
    parser.add_argument("--ocr-pages", type=int, default=30, help="page budget of the OCR-forced run (0: skip)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    parser.add_argument("--keep-workspace", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    paths = sorted(args.documents.glob("*.pdf"))[: args.limit]
    scratch = Path(tempfile.mkdtemp(prefix="pagehop-ingest-bench-"))
    rows = []
    try:
        text_ws = args.keep_workspace or scratch / "text"
        if args.keep_workspace and args.keep_workspace.exists():
            raise SystemExit(f"{args.keep_workspace} exists; pass a new folder")
        rows.append(run("text layer (ocr=never)", paths, text_ws, args.dpi, "never"))
        if args.ocr_pages:
            subset = smallest_documents(paths, args.ocr_pages)
            rows.append(run(f"OCR forced, {len(subset)} smallest docs", subset, scratch / "ocr", args.dpi, "always"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    header = ["run", "docs", "pages", "OCR'd pages", "chunks", "wall s", "pages/s", "CPU s", "pages/CPU-s"]
    print(f"\nIngestion throughput, {args.dpi} dpi, torch threads={args.threads}, {args.documents}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
