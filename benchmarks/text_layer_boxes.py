"""What keeping chunk boxes costs at ingestion: the PDF text layer with and without character boxes.

    nice -n 10 .venv/bin/python benchmarks/text_layer_boxes.py ../shared/data/mmlongbench/documents --pages 300

Reads up to ``--pages`` pages (in file order) twice: the text layer alone (``get_text_range``, what
ingestion did before) and text plus per-character boxes merged into line boxes
(``pagehop.ingest.layout``). Prints wall-clock pages/s and CPU time per page for each (CPU time
says more on a shared, loaded machine) and the boxes' size as stored (JSON).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pypdfium2 as pdfium

from pagehop.ingest.layout import line_boxes, pdf_page_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    pdfs = sorted(args.folder.glob("*.pdf"))

    def pages() -> list[tuple[pdfium.PdfDocument, int]]:
        chosen: list[tuple[pdfium.PdfDocument, int]] = []
        for path in pdfs:
            document = pdfium.PdfDocument(str(path))
            chosen += [(document, i) for i in range(len(document))][: args.pages - len(chosen)]
            if len(chosen) >= args.pages:
                break
        return chosen

    chosen = pages()
    started, cpu = time.perf_counter(), time.process_time()
    chars = 0
    for document, index in chosen:
        textpage = document[index].get_textpage()
        chars += len(textpage.get_text_range())
        textpage.close()
    plain_s, plain_cpu = time.perf_counter() - started, time.process_time() - cpu

    started, cpu = time.perf_counter(), time.process_time()
    stored = lines = 0
    for document, index in chosen:
        layer = pdf_page_text(document[index])
        boxes = line_boxes(layer.char_boxes or [], layer.text)
        lines += len(boxes)
        stored += len(json.dumps(boxes))
    boxes_s, boxes_cpu = time.perf_counter() - started, time.process_time() - cpu

    n = len(chosen)
    print(
        f"{n} pages, {chars:,} characters, {lines:,} line boxes, {stored / max(n, 1) / 1024:.1f} KiB of boxes per page"
    )
    print("| text layer | pages/s (wall) | CPU ms/page |")
    print("| --- | --- | --- |")
    print(f"| text only | {n / plain_s:.1f} | {1000 * plain_cpu / n:.1f} |")
    print(f"| text + character boxes -> line boxes | {n / boxes_s:.1f} | {1000 * boxes_cpu / n:.1f} |")


if __name__ == "__main__":
    main()
