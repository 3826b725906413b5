"""Passage recall, answers and latency of a `pagehop eval` run, over the whole run and over halves of
the dataset file (the first half for development, the second to confirm on questions not looked at).

    .venv/bin/python benchmarks/split_metrics.py runs/2wiki-agent-nollm --dataset DATASET.json

Rows are matched to the dataset by question id, so a run over the full file splits by file order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pagehop.eval.datasets import load_dataset
from pagehop.eval.metrics import exact_match, f1_score, mean, percentile, recall_at_k


def summarize(rows: list[dict]) -> dict[str, float]:
    with_gold = [r for r in rows if r["gold"]["passages"]]
    return {
        "questions": len(rows),
        "R@2": mean([recall_at_k(r["ranked_passages"], r["gold"]["passages"], 2) for r in with_gold]),
        "R@5": mean([recall_at_k(r["ranked_passages"], r["gold"]["passages"], 5) for r in with_gold]),
        "EM": mean([exact_match(r["prediction"], r["gold"]["answers"]) for r in rows]),
        "F1": mean([f1_score(r["prediction"], r["gold"]["answers"]) for r in rows]),
        "p50 s": percentile([r["latency_s"] for r in rows], 50),
        "p95 s": percentile([r["latency_s"] for r in rows], 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a `pagehop eval --out` folder")
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset file the run read")
    args = parser.parse_args()
    rows = {}
    for line in (args.run / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows[row["id"]] = row
    order = [example.id for example in load_dataset(args.dataset)]
    ordered = [rows[i] for i in order if i in rows]
    half = len(order) // 2
    first = [rows[i] for i in order[:half] if i in rows]
    second = [rows[i] for i in order[half:] if i in rows]
    print("| part | questions | R@2 | R@5 | EM | F1 | p50 s | p95 s |\n|---|---|---|---|---|---|---|---|")
    for name, part in (("all", ordered), ("first half (dev)", first), ("second half (test)", second)):
        if part:
            m = summarize(part)
            print(
                f"| {name} | {m['questions']} | {100 * m['R@2']:.1f} | {100 * m['R@5']:.1f} | {100 * m['EM']:.1f} "
                f"| {100 * m['F1']:.1f} | {m['p50 s']:.2f} | {m['p95 s']:.2f} |"
            )


if __name__ == "__main__":
    main()
