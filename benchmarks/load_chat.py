"""Load on `pagehop serve`: N clients x R streamed questions against /v1/chat/completions, on loopback.

Starts the real server on a free loopback port over ``--workspace`` (no LLM: the deterministic
policy answers), waits until it is healthy, then runs ``--clients`` concurrent clients, each asking
``--questions`` streamed questions one after another through httpx. It prints the HTTP statuses,
stream errors, latency percentiles (to the first event and to the end of the stream) and the
server's RSS before the load, at its peak and after. Everything is bounded: ``--max-seconds`` for
the whole load, then the server is stopped; nothing leaves 127.0.0.1.

    nice -n 10 .venv/bin/python benchmarks/load_chat.py --workspace WS [--clients 50 --questions 3]
        [--questions-file FILE.json]   # a JSON list of {"question": ...} (default: one per document title)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    status: int
    first_event_s: float | None
    total_s: float
    stream_error: str | None = None
    answered: bool = False


@dataclass
class RssWatch:
    """Samples the server's resident memory (VmRSS) every ``period`` seconds in a thread."""

    pid: int
    period: float = 0.1
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.samples.append(self.rss_kb())
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_questions(path: Path | None, workspace: Path, count: int) -> list[str]:
    if path is not None:
        items = json.loads(path.read_text())
        return [item["question"] if isinstance(item, dict) else str(item) for item in items][:count]
    import sqlite3

    with sqlite3.connect(f"file:{workspace / 'catalog.sqlite'}?mode=ro", uri=True) as db:
        titles = [row[0] for row in db.execute("SELECT title FROM documents WHERE status = 'ready' LIMIT ?", (count,))]
    return [f"What is known about {title}?" for title in titles]


async def one_question(http: httpx.AsyncClient, question: str) -> Outcome:
    started = time.perf_counter()
    first: float | None = None
    body = {"model": "pagehop", "stream": True, "messages": [{"role": "user", "content": question}]}
    try:
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                return Outcome(response.status_code, None, time.perf_counter() - started)
            error = None
            answered = False
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if first is None:
                    first = time.perf_counter() - started
                payload = line.removeprefix("data: ")
                if payload == "[DONE]":
                    break
                chunk = json.loads(payload)
                if "error" in chunk:
                    error = str(chunk["error"].get("code"))
                elif chunk["choices"][0].get("finish_reason") == "stop":
                    answered = True
            return Outcome(200, first, time.perf_counter() - started, error, answered)
    except httpx.HTTPError as exc:
        return Outcome(0, first, time.perf_counter() - started, type(exc).__name__)


async def run_clients(url: str, questions: list[str], clients: int, per_client: int) -> list[Outcome]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0), limits=limits) as http:

        async def client(number: int) -> list[Outcome]:
            asked = []
            for turn in range(per_client):
                question = questions[(number * per_client + turn) % len(questions)]
                asked.append(await one_question(http, question))
            return asked

        results = await asyncio.gather(*(client(n) for n in range(clients)))
    return [outcome for per in results for outcome in per]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=3, help="streamed questions per client, one after another")
    parser.add_argument("--questions-file", type=Path, default=None)
    parser.add_argument("--max-concurrent", type=int, default=None, help="server.max_concurrent_requests")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="bound on the whole load")
    parser.add_argument("--startup-seconds", type=float, default=900.0, help="bound on the server's start")
    args = parser.parse_args()
    if not 1 <= args.clients <= 500 or not 1 <= args.questions <= 50:
        parser.error("keep it bounded: 1-500 clients, 1-50 questions each")

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    if args.max_concurrent:
        env["PAGEHOP_SERVER__MAX_CONCURRENT_REQUESTS"] = str(args.max_concurrent)
    exe = str(Path(sys.executable).with_name("pagehop"))
    command = [exe, "--workspace", str(args.workspace), "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        started_at = time.monotonic()
        deadline = started_at + args.startup_seconds
        while True:
            if server.poll() is not None:
                print(server.stderr.read() if server.stderr else "", file=sys.stderr)
                raise SystemExit(f"the server exited with {server.returncode}")
            try:
                if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not become healthy in {args.startup_seconds:g} s")
            time.sleep(0.5)
        health = httpx.get(f"{url}/api/health", timeout=5).json()
        print(f"server healthy after {time.monotonic() - started_at:.0f} s", flush=True)
        watch = RssWatch(server.pid)
        rss_before = watch.rss_kb()
        questions = load_questions(args.questions_file, args.workspace, args.clients * args.questions)
        watch.start()
        started = time.perf_counter()
        outcomes = asyncio.run(
            asyncio.wait_for(run_clients(url, questions, args.clients, args.questions), args.max_seconds)
        )
        wall = time.perf_counter() - started
        time.sleep(1.0)
        watch.stop()
        rss_after = watch.rss_kb()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    statuses = Counter(o.status for o in outcomes)
    errors = Counter(o.stream_error for o in outcomes if o.stream_error)
    totals = [o.total_s for o in outcomes if o.status == 200 and not o.stream_error]
    firsts = [o.first_event_s for o in outcomes if o.first_event_s is not None]
    peak = max(watch.samples, default=rss_after)
    channels = ", ".join(health["channels"])
    print(f"workspace {args.workspace}: {health['documents']} documents, channels {channels}, llm {health['llm']}")
    print(f"{args.clients} clients x {args.questions} streamed questions = {len(outcomes)} requests in {wall:.1f} s")
    print(f"statuses: {dict(sorted(statuses.items()))}; stream errors: {dict(errors) or 'none'}")
    print(f"answered (finish_reason stop): {sum(o.answered for o in outcomes)}")
    print()
    print(
        "| requests | 200 | 429 | 5xx | stream errors | first event p50 / p95 s | latency p50 / p95 / max s |", end=""
    )
    print(" RSS before / peak / after MB |")
    print("|" + " --- |" * 8)
    print(
        f"| {len(outcomes)} | {statuses.get(200, 0)} | {statuses.get(429, 0)} | "
        f"{sum(n for s, n in statuses.items() if s >= 500)} | {sum(errors.values())} | "
        f"{percentile(firsts, 50):.2f} / {percentile(firsts, 95):.2f} | "
        f"{percentile(totals, 50):.1f} / {percentile(totals, 95):.1f} / {max(totals, default=float('nan')):.1f} | "
        f"{rss_before / 1024:.0f} / {peak / 1024:.0f} / {rss_after / 1024:.0f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
