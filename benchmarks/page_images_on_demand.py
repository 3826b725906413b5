"""What a page image costs when it is drawn on request (``Workspace.page_image``), and what the workspace stores.

Over an ingested workspace (e.g. the one ``ingest_throughput.py --rows pdf --keep-workspace DIR`` leaves):
the bytes of its page folders (page PNGs, thumbnails, kept PDF copies), then the CPU and wall milliseconds per
page of a thumbnail alone for pages not drawn yet (what the UI's gallery asks), of the first request for every
``--every``-th page (draw from the kept copy + write the PNG), of its thumbnail after that (read the PNG + write
the JPEG), and of a request for a page already stored. The
workspace is written to (the drawn pages stay): use a scratch copy.

    .venv/bin/python benchmarks/page_images_on_demand.py /tmp/pdf-ws --every 10
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pagehop.workspace import Workspace


def folder_bytes(root: Path) -> dict[str, int]:
    sizes = {"page PNGs": 0, "thumbnails": 0, "kept PDF copies": 0}
    for path in (root / "pages").rglob("*"):
        if path.name.endswith(".thumb.jpg"):
            sizes["thumbnails"] += path.stat().st_size
        elif path.suffix == ".png":
            sizes["page PNGs"] += path.stat().st_size
        elif path.name == "source.pdf":
            sizes["kept PDF copies"] += path.stat().st_size
    return sizes


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(pages: list[tuple[str, int]], request: Callable[[str, int], Path | None]) -> tuple[float, float]:
    """CPU and wall ms per page of ``request`` over ``pages``."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    for doc_id, page in pages:
        if request(doc_id, page) is None:
            raise SystemExit(f"no image for page {page} of {doc_id}")
    return 1000 * (cpu_seconds() - cpu) / len(pages), 1000 * (time.perf_counter() - wall) / len(pages)


def thumbnail_of(workspace: Workspace) -> Callable[[str, int], Path | None]:
    return lambda doc_id, page: workspace.page_image(doc_id, page, thumbnail=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--every", type=int, default=10, help="time every N-th page")
    args = parser.parse_args()

    from pagehop.config import Settings
    from pagehop.workspace import Workspace

    print("| stored before the requests | bytes |\n|---|---|")
    for name, size in folder_bytes(args.workspace).items():
        print(f"| {name} | {size:,} |")
    with Workspace(Settings(workspace=args.workspace)) as workspace:
        every = [(d, p.page) for d in workspace.ready_doc_ids() for p in workspace.get_pages(d) if p.image_path]
        pages, others = every[:: args.every], every[args.every // 2 :: args.every]
        rows = [
            ("thumbnail alone, page not drawn yet (the gallery)", timed(others, thumbnail_of(workspace))),
            ("first request: draw + PNG", timed(pages, workspace.page_image)),
            ("thumbnail after it", timed(pages, thumbnail_of(workspace))),
            ("page already stored", timed(pages, workspace.page_image)),
        ]
    print(f"\n| request ({len(pages)} pages each) | CPU ms per page | wall ms per page |\n|---|---|---|")
    for name, (cpu, wall) in rows:
        print(f"| {name} | {cpu:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
