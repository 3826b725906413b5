"""Crash trials: kill ``pagehop ingest`` with SIGKILL at random points, re-run it, compare with a clean ingest.

Used by ``benchmarks/crash_trials.py`` (20 kills per graph store) and by the slow test in
``tests/ingest/test_crash_trials.py`` (a few). Everything runs through the real command line in
subprocesses: a small mixed folder built in code (text-layer PDFs, a scanned PDF and a PNG that
need OCR, Markdown and text), the tiny random ColModernVBERT for page vectors, spaCy graph
extraction, the networkx store or a Neo4j server (each workspace under its own label namespace,
dropped afterwards, so a shared server is left as it was).

A trial is one kill. Trials run in episodes: a fresh workspace, then ingest runs killed at a
random moment (seeded) and re-run, until a run finishes by itself; the episode's workspace is then
compared with a clean ingest of the same folder (:func:`snapshot`, :func:`compare`) and, once per
store, ``pagehop ingest --delete`` of one document is compared with a clean ingest of the folder
without it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pagehop.testing.hostile import text_picture
from pagehop.testing.pdf import write_pdf
from pagehop.workspace import KEPT_SOURCE

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 600.0
# Facts compared as floats: float16 page vectors, float32 MiniLM rows recomputed in another batch.
PAGE_VECTOR_ATOL = 2e-3
TEXT_VECTOR_ATOL = 1e-4
# Files a workspace may hold besides page images and the index files its manifests name.
FIXED_FILES = {
    "catalog.sqlite",
    "catalog.sqlite-wal",
    "catalog.sqlite-shm",
    "writer.lock",
    "pagehop.toml",
    "text_index/index.npz",
    "page_index/manifest.json",
    "graph/graph.pkl",
    "graph/graph.pkl.journal",
}

PDF_TEXTS = {
    "reports/harbour.pdf": [
        "Ada Lovelace visited the Port of Rotterdam in 1843 with Charles Babbage.",
        "The Port of Rotterdam handled grain from Hamburg. Charles Babbage wrote to Michael Faraday.",
    ],
    "reports/optics.pdf": [
        "Kestrel Optics was founded by Grace Hopper in Boston. Kestrel Optics sells lenses to Siemens.",
        "Siemens opened a laboratory in Munich under Werner von Siemens.",
        "Grace Hopper later moved to Arlington.",
    ],
    "letters.pdf": ["Marie Curie wrote to Albert Einstein from Paris about the Solvay Conference."],
}
SCAN_TEXTS = ["Quayside Automation moved to Glasgow", "Niels Bohr met Lise Meitner"]
MARKDOWN = (
    "# Quayside Automation\n\nQuayside Automation was founded in Glasgow by Alan Turing.\n\n"
    "## Partners\n\nQuayside Automation works with Siemens and Kestrel Optics in Boston.\n"
)
PLAIN = (
    "Rosalind Franklin studied in Cambridge. Francis Crick and James Watson worked in Cambridge too.\n"
    "Maurice Wilkins shared data with Francis Crick.\n"
)


def build_mixed_folder(folder: Path) -> list[Path]:
    """Seven small files of every kind ingest handles; the paths written, sorted."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, pages in PDF_TEXTS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_pdf(folder / name, pages)
    frames = [text_picture(text, size=(900, 120), font_px=40) for text in SCAN_TEXTS]
    frames[0].save(folder / "scan.pdf", save_all=True, append_images=frames[1:], resolution=100)  # image-only
    text_picture("Lise Meitner worked in Berlin", size=(900, 120), font_px=40).save(folder / "photo.png")
    (folder / "notes.md").write_text(MARKDOWN)
    (folder / "plain.txt").write_text(PLAIN)
    return sorted(p for p in folder.rglob("*") if p.is_file())


FIRST_NAMES = ["Ada", "Alan", "Grace", "Marie", "Niels", "Lise", "Rosalind", "Werner", "Emmy", "Enrico"]
LAST_NAMES = ["Lindqvist", "Sandberg", "Okafor", "Moreau", "Haldane", "Varga", "Castell", "Brandt", "Ibsen", "Rao"]
CITIES = ["Gothenburg", "Glasgow", "Boston", "Munich", "Uppsala", "Lyon", "Porto", "Krakow", "Ghent", "Turin"]
ORGANISATIONS = ["Nordic Pictures", "Kestrel Optics", "Quayside Automation", "Siemens", "the Solvay Institute"]


def build_passage_folder(folder: Path, count: int) -> list[Path]:
    """``count`` one-paragraph text files (people, places, organisations: a graph to resolve), each one
    chunk: enough of them fill ingest's groups, so its models run ahead of the group being stored."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        person = f"{FIRST_NAMES[i % 10]} {LAST_NAMES[i // 10 % 10]}"
        city, elsewhere = CITIES[i % 7], CITIES[(i * 3 + 1) % 10]
        organisation = ORGANISATIONS[i % 5]
        (folder / f"passage-{i:04d}.txt").write_text(
            f"{person} ({i})\n\n{person} was born in {city} in {1900 + i % 90}. "
            f"{person} worked for {organisation} in {elsewhere} and wrote to {FIRST_NAMES[(i + 3) % 10]} "
            f"{LAST_NAMES[(i + 7) % 10]} about the archive of {CITIES[(i + 5) % 10]}.\n"
        )
    return sorted(folder.glob("*.txt"))


# ----- the command line -------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreConfig:
    """Which graph store a workspace uses; ``neo4j`` holds uri, user, password, database."""

    graph_store: str = "networkx"
    neo4j: Mapping[str, str] | None = None


def write_config(workspace: Path, store: StoreConfig, page_encoder: Path) -> Path:
    """A pagehop.toml for ``workspace`` (low dpi, CPU, tiny page encoder); a Neo4j workspace gets its own namespace."""
    workspace.mkdir(parents=True, exist_ok=True)
    lines = [
        f"workspace = {json.dumps(str(workspace))}",
        f'graph_store = "{store.graph_store}"',
        "[models]",
        f"page_encoder = {json.dumps(str(page_encoder))}",
        'device = "cpu"',
        "[ingest]",
        "dpi = 60",
        "thumbnail_px = 64",
        "ocr_workers = 1",
    ]
    if store.graph_store == "neo4j":
        assert store.neo4j is not None
        lines += ["[neo4j]"] + [f"{key} = {json.dumps(value)}" for key, value in store.neo4j.items()]
        lines.append(f'namespace = "crash{uuid.uuid4().hex[:12]}"')
    config = workspace / "pagehop.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEHOP_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        TOKENIZERS_PARALLELISM="false",
        COLUMNS="1000",
    )
    return env


@dataclass
class RunResult:
    returncode: int | None  # None: killed by us
    seconds: float
    first_write_s: float | None  # when the catalog first held a row (the reference run measures it)
    output: str


def run_ingest(config: Path, args: list[str], kill_after: float | None = None) -> RunResult:
    """``pagehop -c config ingest ARGS`` in its own process group; SIGKILL the whole group after ``kill_after`` s.

    The group (the command and its tesseract and preprocessing children) dies at once, like a
    power cut or a container's OOM kill.
    """
    command = [sys.executable, "-m", "pagehop", "--config", str(config), "ingest", *args]
    catalog = config.parent / "catalog.sqlite"
    rows_before = _row_count(catalog)
    started = time.monotonic()
    first_write: float | None = None
    with subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    ) as process:
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if kill_after is not None and elapsed >= kill_after:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                return RunResult(None, elapsed, first_write, output)
            if elapsed > RUN_TIMEOUT_S:
                os.killpg(process.pid, signal.SIGKILL)
                raise TimeoutError(f"{' '.join(command)} ran past {RUN_TIMEOUT_S:g} s")
            if first_write is None and kill_after is None and _row_count(catalog) > rows_before:
                first_write = elapsed
            time.sleep(0.05)
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    return RunResult(process.returncode, time.monotonic() - started, first_write, output)


def _row_count(catalog: Path) -> int:
    if not catalog.is_file():
        return 0
    try:
        with closing_db(catalog) as db:
            return int(db.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is being created
        return 0


@contextmanager
def closing_db(catalog: Path) -> Iterator[sqlite3.Connection]:
    """The catalog read-only (never writes, never recovers: what a crash left is what we see)."""
    db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=30)
    try:
        yield db
    finally:
        db.close()


# ----- what a workspace holds -------------------------------------------------------------------


@dataclass
class Snapshot:
    """Every fact a workspace holds, as comparable values; ``problems`` are inconsistencies found in it alone."""

    documents: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    pages: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)
    chunks: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    text_rows: dict[str, tuple[str, str]] = field(default_factory=dict)  # chunk id -> (doc id, text)
    text_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    page_vectors: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    entities: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    entity_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    relations: dict[tuple[str, str, str], tuple[Any, ...]] = field(default_factory=dict)
    mentions: set[tuple[str, str, str, int]] = field(default_factory=set)
    index_files: set[str] = field(default_factory=set)  # page index files its manifest names (not compared)
    problems: list[str] = field(default_factory=list)

    def doc_ids(self) -> set[str]:
        return set(self.documents)


def snapshot(config: Path, folder: Path) -> Snapshot:
    """Read a workspace as it lies on disk (and in its Neo4j namespace) without opening it as pagehop does."""
    from pagehop.config import load_settings
    from pagehop.models import text_embedder_id

    settings = load_settings(config)
    root = settings.workspace
    snap = Snapshot()
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}  # before anything opens
    with closing_db(root / "catalog.sqlite") as db:
        db.row_factory = sqlite3.Row
        for row in db.execute("SELECT * FROM documents"):
            source = Path(row["source_path"])
            where = source.relative_to(folder).as_posix() if source.is_relative_to(folder) else str(source)
            snap.documents[row["doc_id"]] = (
                where,
                row["title"],
                row["kind"],
                row["num_pages"],
                row["size_bytes"],
                row["status"],
            )
        for row in db.execute("SELECT * FROM pages"):
            values = dict(row)
            key = (values.pop("doc_id"), values.pop("page"))
            snap.pages[key] = tuple(values.values())
        for row in db.execute("SELECT * FROM chunks"):
            values = dict(row)
            chunk_id = values.pop("chunk_id")
            snap.chunks[chunk_id] = tuple(values.values())
    _read_text_index(root, text_embedder_id(settings), snap)
    _read_page_index(root, snap)
    if settings.graph_store == "networkx":
        _read_networkx(root, snap)
    else:
        _read_neo4j(settings, snap)
    _check_files(root, files, snap)
    not_ready = sorted(d for d, facts in snap.documents.items() if facts[-1] != "ready")
    if not_ready:
        snap.problems.append(f"catalog rows not ready: {not_ready}")
    return snap


def _read_text_index(root: Path, embedder: str, snap: Snapshot) -> None:
    from pagehop.retrieval.text_index import HybridTextIndex

    index = HybridTextIndex(root / "text_index", embedder=embedder)  # reads index.npz; loads no model
    chunks, vectors = index._chunks, index._embeddings
    for row, chunk in enumerate(chunks):
        if chunk.chunk_id in snap.text_rows:
            snap.problems.append(f"text index holds chunk {chunk.chunk_id} twice")
        snap.text_rows[chunk.chunk_id] = (chunk.doc_id, chunk.text)
        if vectors is not None:
            snap.text_vectors[chunk.chunk_id] = np.asarray(vectors[row])


def _read_page_index(root: Path, snap: Snapshot) -> None:
    from pagehop.retrieval.page_index import MANIFEST_NAME, LocalPageIndex

    manifest = root / "page_index" / MANIFEST_NAME
    if not manifest.is_file():
        return
    index = LocalPageIndex(root / "page_index", dim=int(json.loads(manifest.read_text())["dim"]))
    snap.index_files.update(f"page_index/{name}" for name in index.referenced_files())
    for key in index.pages():
        snap.page_vectors[key] = np.asarray(index.get_vectors(*key), dtype=np.float32)


def _read_networkx(root: Path, snap: Snapshot) -> None:
    from pagehop.graph.networkx_store import NetworkxGraphStore
    from pagehop.graph.store import GRAPH_FILE

    store = NetworkxGraphStore(root / GRAPH_FILE)
    graph = store._graph
    for entity_id, data in graph.nodes(data=True):
        snap.entities[entity_id] = (data["name"], data["type"], tuple(sorted(data["aliases"])), data["description"])
        if entity_id in store._embeddings:
            snap.entity_vectors[entity_id] = np.asarray(store._embeddings[entity_id])
    for source, target, key, data in graph.edges(keys=True, data=True):
        evidence = tuple(sorted((doc, chunk, page or 0) for (doc, chunk), page in data["evidence"].items()))
        snap.relations[(source, key, target)] = (data["description"], evidence)
    for entity_id, by_chunk in store._mentions.items():
        snap.mentions |= {(entity_id, m.chunk_id, m.doc_id, m.page or 0) for m in by_chunk.values()}


def _read_neo4j(settings: Any, snap: Snapshot) -> None:
    from pagehop.graph.store import make_graph_store

    store = make_graph_store(settings, settings.workspace)
    e, c = store.entity_label, store.chunk_label  # type: ignore[attr-defined]
    try:
        for rec in store._read(f"MATCH (n:{e}) RETURN n"):  # type: ignore[attr-defined]
            node = rec["n"]
            snap.entities[node["id"]] = (
                node["name"],
                node["type"],
                tuple(sorted(node["aliases"])),
                node["description"],
            )
            if node.get("embedding") is not None:
                snap.entity_vectors[node["id"]] = np.asarray(node["embedding"], dtype=np.float32)
        for rec in store._read(  # type: ignore[attr-defined]
            f"MATCH (a:{e})-[r]->(b:{e}) RETURN a.id AS a, type(r) AS t, b.id AS b, r.description AS d, "
            "r.ev_docs AS docs, r.ev_chunks AS chunks, r.ev_pages AS pages"
        ):
            if rec["t"] == "MENTIONED_IN":
                continue
            evidence = tuple(sorted(zip(rec["docs"], rec["chunks"], rec["pages"], strict=True)))
            snap.relations[(rec["a"], rec["t"], rec["b"])] = (rec["d"], evidence)
        for rec in store._read(  # type: ignore[attr-defined]
            f"MATCH (n:{e})-[:MENTIONED_IN]->(k:{c}) RETURN n.id AS e, k.id AS k, k.doc_id AS d, k.page AS p"
        ):
            snap.mentions.add((rec["e"], rec["k"], rec["d"], rec["p"] or 0))
        lonely = store._read(f"MATCH (k:{c}) WHERE NOT (k)--() RETURN k.id AS k")  # type: ignore[attr-defined]
        if lonely:
            snap.problems.append(f"Neo4j chunk nodes without a mention: {[r['k'] for r in lonely]}")
    finally:
        store.close()


def _check_files(root: Path, files: set[str], snap: Snapshot) -> None:
    """Orphans: page files of no stored page, kept copies of no PDF document, segment files no manifest names,
    temp files anywhere. Missing: a PDF's kept copy, or a page file that no kept copy can draw."""
    kept = {doc_id: f"pages/{doc_id}/{KEPT_SOURCE}" for doc_id, facts in snap.documents.items() if facts[2] == "pdf"}
    expected = set(FIXED_FILES) | set(kept.values())
    for facts in snap.pages.values():
        expected.update(path for path in facts[2:4] if path)  # image_path, thumbnail_path
    expected.update(snap.index_files)
    orphans = sorted(files - expected)
    if orphans:
        snap.problems.append(f"orphan files: {orphans}")
    missing = sorted(
        p
        for (doc_id, _), facts in snap.pages.items()
        for p in facts[2:4]
        if p and p not in files and kept.get(doc_id) not in files  # a PDF's pages are drawn when asked for
    )
    missing += sorted(path for path in kept.values() if path not in files)
    if missing:
        snap.problems.append(f"page files missing: {missing}")


def compare(got: Snapshot, want: Snapshot) -> list[str]:
    """What differs between two workspaces' facts (and what is wrong in ``got`` alone); [] when equal."""
    diffs = list(got.problems)
    for name in ("documents", "pages", "chunks", "text_rows", "entities", "relations"):
        a, b = getattr(got, name), getattr(want, name)
        if a != b:
            extra, lacking = sorted(set(a) - set(b)), sorted(set(b) - set(a))
            changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
            diffs.append(
                f"{name}: {len(extra)} extra {extra[:3]}, {len(lacking)} missing {lacking[:3]}, "
                f"{len(changed)} changed {[(k, a[k], b[k]) for k in changed[:2]]}"
            )
    if got.mentions != want.mentions:
        extra, lacking = sorted(got.mentions - want.mentions), sorted(want.mentions - got.mentions)
        diffs.append(f"mentions: {len(extra)} extra {extra[:3]}, {len(lacking)} missing {lacking[:3]}")
    for name, atol in (
        ("text_vectors", TEXT_VECTOR_ATOL),
        ("page_vectors", PAGE_VECTOR_ATOL),
        ("entity_vectors", TEXT_VECTOR_ATOL),
    ):
        a, b = getattr(got, name), getattr(want, name)
        if set(a) != set(b):
            diffs.append(f"{name}: keys differ ({len(set(a) - set(b))} extra, {len(set(b) - set(a))} missing)")
            continue
        differ = [k for k in a if a[k].shape != b[k].shape or not np.allclose(a[k], b[k], atol=atol)]
        if differ:
            diffs.append(f"{name}: {len(differ)} differ, e.g. {differ[0]}")
    return diffs


def traces_of(snap: Snapshot, doc_id: str) -> list[str]:
    """Every place ``doc_id`` still appears in a workspace's facts."""
    found = []
    checks = {
        "catalog": doc_id in snap.documents,
        "pages": any(key[0] == doc_id for key in snap.pages),
        "chunks": any(facts[0] == doc_id for facts in snap.chunks.values()),
        "text index": any(row[0] == doc_id for row in snap.text_rows.values()),
        "page index": any(key[0] == doc_id for key in snap.page_vectors),
        "graph mentions": any(m[2] == doc_id for m in snap.mentions),
        "graph evidence": any(ev[0] == doc_id for _, evs in snap.relations.values() for ev in evs),
    }
    found += [where for where, present in checks.items() if present]
    return found


# ----- trials -----------------------------------------------------------------------------------


@dataclass
class StoreResult:
    store: str
    trials: int = 0
    landed_mid_write: int = 0  # kills that left something recovery must clean
    missed: int = 0  # kills that came after the run had finished
    episodes: int = 0
    mismatches: int = 0
    differences: list[str] = field(default_factory=list)
    delete_checked: bool = False
    seconds: float = 0.0


def left_mid_write(config: Path) -> bool:
    """Whether a killed run left work for recovery: a row not ready, a temp file, or a committed document
    the saved text index does not hold yet."""
    root = config.parent
    if any(p.name.endswith(".tmp") for p in root.rglob("*")):
        return True
    catalog = root / "catalog.sqlite"
    if not catalog.is_file():
        return False
    with closing_db(catalog) as db:
        try:
            rows = db.execute("SELECT doc_id, status FROM documents").fetchall()
        except sqlite3.OperationalError:
            return True  # killed while creating the schema
    if any(status != "ready" for _, status in rows):
        return True
    index = root / "text_index" / "index.npz"
    if not rows:
        return False
    if not index.is_file():
        return True
    with np.load(index, allow_pickle=False) as data:
        indexed = {record["doc_id"] for record in json.loads(bytes(data["chunks"]))}
    return not {doc for doc, _ in rows} <= indexed


def drop_namespace(config: Path) -> None:
    """Remove a Neo4j workspace's nodes, constraints and indexes (its namespace only)."""
    from pagehop.config import load_settings
    from pagehop.graph.neo4j_store import Neo4jGraphStore
    from pagehop.graph.store import make_graph_store

    settings = load_settings(config)
    if settings.graph_store != "neo4j":
        return
    store = make_graph_store(settings, settings.workspace)
    assert isinstance(store, Neo4jGraphStore)
    try:
        store.drop_all()
    finally:
        store.close()


def run_store_trials(
    base: Path,
    store: StoreConfig,
    page_encoder: Path,
    *,
    trials: int,
    seed: int,
    check_delete: bool = True,
    build: Callable[[Path], list[Path]] = build_mixed_folder,
    log: Any = print,
) -> StoreResult:
    """``trials`` kills on one store, episodes compared with a clean ingest, then the delete check; ``build``
    writes the folder ingested (default: the small mixed folder)."""
    started = time.monotonic()
    rng = random.Random(seed)
    result = StoreResult(store.graph_store)
    folder = base / "docs"
    files = build(folder)
    configs: list[Path] = []
    try:
        reference_config = write_config(base / "reference", store, page_encoder)
        configs.append(reference_config)
        clean = run_ingest(reference_config, [str(folder)])
        if clean.returncode != 0:
            raise RuntimeError(f"the clean ingest failed:\n{clean.output[-3000:]}")
        reference = snapshot(reference_config, folder)
        if reference.problems:
            raise RuntimeError(f"the clean ingest is itself inconsistent: {reference.problems}")
        startup = clean.first_write_s or clean.seconds / 2
        log(
            f"[{store.graph_store}] clean ingest {clean.seconds:.1f} s (first write at {startup:.1f} s), "
            f"{len(reference.documents)} documents, {len(reference.chunks)} chunks, {len(reference.entities)} entities"
        )
        episode_config: Path | None = None
        final = False
        while not final:
            if episode_config is None:
                result.episodes += 1
                episode_config = write_config(base / f"episode{result.episodes}", store, page_encoder)
                configs.append(episode_config)
            final = result.trials >= trials
            kill_after = None if final else rng.uniform(0.7 * startup, clean.seconds * 1.1)
            run = run_ingest(episode_config, [str(folder)], kill_after=kill_after)
            if run.returncode is None:
                result.trials += 1
                landed = left_mid_write(episode_config)
                result.landed_mid_write += landed
                log(
                    f"[{store.graph_store}] trial {result.trials}: killed at {kill_after:.1f} s"
                    + (" mid-write" if landed else "")
                )
                continue
            if kill_after is not None:
                result.missed += 1  # finished before the kill: the episode ends here
            if run.returncode != 0:
                result.mismatches += 1
                result.differences.append(
                    f"episode {result.episodes}: ingest exited {run.returncode}: {run.output[-500:]}"
                )
            diffs = compare(snapshot(episode_config, folder), reference)
            log(f"[{store.graph_store}] episode {result.episodes} done: {diffs or 'equal'}")
            if diffs:
                result.mismatches += 1
                result.differences += [f"episode {result.episodes}: {d}" for d in diffs]
            if not final:
                episode_config = None
        assert episode_config is not None
        if check_delete:
            _check_delete(base, store, page_encoder, folder, files, episode_config, rng, result, configs, log)
    finally:
        for config in configs:
            drop_namespace(config)
    result.seconds = time.monotonic() - started
    return result


def _check_delete(
    base: Path,
    store: StoreConfig,
    page_encoder: Path,
    folder: Path,
    files: list[Path],
    config: Path,
    rng: random.Random,
    result: StoreResult,
    configs: list[Path],
    log: Any,
) -> None:
    """``pagehop ingest --delete`` of one document equals a clean ingest of the folder without it."""
    victim = rng.choice(files)
    before = snapshot(config, folder)
    (doc_id,) = [d for d, facts in before.documents.items() if facts[0] == victim.relative_to(folder).as_posix()]
    run = run_ingest(config, ["--delete", doc_id])
    after = snapshot(config, folder)
    without = base / "without"
    for path in files:
        if path != victim:
            target = without / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    clean_config = write_config(base / "reference-without", store, page_encoder)
    configs.append(clean_config)
    clean = run_ingest(clean_config, [str(without)])
    diffs = [] if run.returncode == 0 else [f"--delete exited {run.returncode}: {run.output[-500:]}"]
    diffs += [f"still in {where}" for where in traces_of(after, doc_id)]
    if clean.returncode == 0:
        diffs += compare(after, snapshot(clean_config, without))  # source paths are read relative to the folder
    else:
        diffs.append(f"the clean ingest without {victim.name} failed: {clean.output[-500:]}")
    log(f"[{store.graph_store}] --delete {victim.relative_to(folder)}: {diffs or 'no trace left'}")
    result.delete_checked = True
    if diffs:
        result.mismatches += 1
        result.differences += [f"delete {victim.name}: {d}" for d in diffs]


def format_table(results: list[StoreResult]) -> str:
    header = (
        "| store | trials | kills mid-write | kills after the end | episodes | delete checked | mismatches | seconds |"
    )
    lines = [header, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(
            f"| {r.store} | {r.trials} | {r.landed_mid_write} | {r.missed} | {r.episodes} | "
            f"{'yes' if r.delete_checked else 'no'} | {r.mismatches} | {r.seconds:.0f} |"
        )
    for r in results:
        lines += [f"{r.store}: {d}" for d in r.differences]
    return "\n".join(lines)
