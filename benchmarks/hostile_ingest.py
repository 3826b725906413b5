"""`pagehop ingest` on the 35-file hostile folder of issue 12, timed, with every outcome checked.

Builds the folder with ``pagehop.testing.hostile`` at full scale (a 3,000-page blank PDF, a
300-frame TIFF, a 14,400-pt page, a 10 MB line of text, broken, encrypted, mislabelled and oddly
named files, a sparse 201 MB file) in a temporary folder, runs the real command line on it in a
fresh workspace (graph extraction on, as by default), and prints one row per file and a summary:
wall time, the command's peak RSS, files ingested / failed as expected / unexpected, partial documents.

    nice -n 10 .venv/bin/python benchmarks/hostile_ingest.py [--max-seconds-per-file 60] [--dpi 150]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pagehop.config import Settings
from pagehop.testing.hostile import build_hostile_corpus
from pagehop.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-seconds-per-file", type=float, default=60.0)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--timeout", type=float, default=900.0, help="kill the ingest after this many seconds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pagehop-hostile-") as tmp:
        docs, workspace_dir = Path(tmp) / "docs", Path(tmp) / "ws"
        started = time.perf_counter()
        corpus = build_hostile_corpus(docs, "full")
        print(f"built {len(corpus)} files in {time.perf_counter() - started:.1f} s under {docs}")
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "COLUMNS": "1000",  # rich wraps at 80 columns when not on a terminal
            "PAGEHOP_INGEST__MAX_SECONDS_PER_FILE": str(args.max_seconds_per_file),
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
        command = [
            str(Path(sys.executable).with_name("pagehop")),
            "--workspace",
            str(workspace_dir),
            "ingest",
            str(docs),
            "--dpi",
            str(args.dpi),
        ]
        started = time.perf_counter()
        try:
            run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout, check=False)
            output, exit_status = run.stdout + run.stderr, str(run.returncode)
        except subprocess.TimeoutExpired as stopped:  # still report what got done, and what was left pending
            output = b"".join(o for o in (stopped.stdout, stopped.stderr) if isinstance(o, bytes)).decode()
            exit_status = f"killed at {args.timeout:g} s"
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_rss_mb = usage.ru_maxrss / 1024
        cpu_seconds = usage.ru_utime + usage.ru_stime  # less sensitive than wall time to a shared machine's load
        print(output)

        workspace = Workspace.open(Settings(workspace=workspace_dir))
        ingested = {Path(d.source_path).relative_to(docs.resolve()).as_posix() for d in workspace.list_documents()}
        statuses = [row[0] for row in workspace._db.execute("SELECT status FROM documents")]
        orphan_dirs = {p.name for p in workspace.pages_dir.iterdir()} - set(workspace.ready_doc_ids())
        partial = sum(s != "ready" for s in statuses) + len(orphan_dirs)
        workspace.close()

        good_ok = good_failed = bad_named = bad_unnamed = 0
        print(f"{'file':<48} {'expected':<22} outcome")
        for item in corpus:
            failed_line = next(
                (line for line in output.splitlines() if line.startswith(f"failed {docs / item.name}:")), ""
            )
            if item.name in ingested:
                outcome = "ingested"
            elif failed_line:
                message = failed_line.removeprefix(f"failed {docs / item.name}: ")
                outcome = "failed: " + message.removeprefix(f"{docs / item.name}: ")[:70]
            else:
                outcome = "MISSING (neither ingested nor named)"
            expected = "ingested" if item.expect_error is None else f"fails ({item.expect_error})"
            if item.expect_error is None:
                good_ok += item.name in ingested
                good_failed += item.name not in ingested
            else:
                named = bool(failed_line) and item.expect_error in failed_line
                bad_named += named
                bad_unnamed += not named
            print(f"{item.name[:48]:<48} {expected[:22]:<22} {outcome}")

        print()
        columns = ["files", "good ingested", "good failed", "broken named", "broken not named", "partial docs"]
        columns += ["exit", "wall s", "CPU s", "peak RSS MB"]
        print("| " + " | ".join(columns) + " |")
        print("|" + " --- |" * len(columns))
        print(
            f"| {len(corpus)} | {good_ok} | {good_failed} | {bad_named} | {bad_unnamed} | {partial} | "
            f"{exit_status} | {seconds:.1f} | {cpu_seconds:.1f} | {peak_rss_mb:.0f} |"
        )
        print(
            f"settings: dpi {args.dpi}, ingest.max_seconds_per_file {args.max_seconds_per_file:g}, "
            f"graph extraction on (networkx), {os.cpu_count()} CPUs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
