"""Single-shot RAG baselines on a multi-hop benchmark: BM25, dense (all-MiniLM-L6-v2) and hybrid (RRF).

Indexes the benchmark corpus straight into ``HybridTextIndex`` (one chunk per passage, text = title line +
passage, as ``write_corpus_documents`` writes the files), answers every question with ``SingleShotRAG``
through ``run_eval`` and prints passage recall and answer scores. No LLM: answers are the best extractive
sentence, so QA numbers are a floor; the retrieval numbers compare with HippoRAG's table.

    .venv/bin/python benchmarks/eval_single_shot.py --dataset 2wiki --limit 300 --out runs/single-shot
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from pagehop.eval.baseline import SingleShotRAG
from pagehop.eval.datasets import load_corpus
from pagehop.eval.report import metrics_table
from pagehop.eval.runner import Ablation, run_eval
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk, Hit

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multihop"
DATASETS = {
    "2wiki": ("2wikimultihopqa_dev300.json", "2wikimultihopqa_corpus.json"),
    "hotpotqa": ("hotpotqa_train.json", "hotpotqa_train_corpus.json"),
    "musique": ("musique_train.json", "musique_train_corpus.json"),
}
KEYS = (
    "retrieval.recall@2",
    "retrieval.recall@5",
    "retrieval.all_recall@5",
    "qa.em",
    "qa.f1",
    "qa.subem",
    "latency.p50_s",
    "latency.p95_s",
    "n",
)


class Channel:
    """One of the index's rankings, as the ``search(query, k)`` the baseline wants."""

    def __init__(self, index: HybridTextIndex, mode: str) -> None:
        self.search_fn = {"bm25": index.search_bm25, "dense": index.search_dense, "hybrid": index.search}[mode]

    def search(self, query: str, k: int) -> list[Hit]:
        return self.search_fn(query, k)


def build_index(corpus_path: Path) -> HybridTextIndex:
    passages = load_corpus(corpus_path)
    index = HybridTextIndex(None, device="cpu")
    chunks = []
    for number, passage in enumerate(passages):
        text = f"{passage.title}\n\n{passage.text.strip()}"
        chunks.append(
            Chunk(
                chunk_id=f"p{number}", doc_id=f"p{number}", page_start=1, page_end=1,
                char_start=0, char_end=len(text), text=text, title=passage.title,
            )
        )  # fmt: skip
    started = time.perf_counter()
    index.add(chunks)
    print(f"indexed {len(chunks)} passages in {time.perf_counter() - started:.1f} s")
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="2wiki")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--modes", default="bm25,dense,hybrid")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the CPU is shared)")
    parser.add_argument("--out", type=Path, default=Path("runs/single-shot"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    questions, corpus = (DATA / name for name in DATASETS[args.dataset])
    index = build_index(corpus)
    run_dirs = []
    for mode in args.modes.split(","):
        out_dir = args.out / f"{args.dataset}-{mode}"
        run_eval(
            questions, corpus=corpus, limit=args.limit, seed=args.seed, out_dir=out_dir,
            system=SingleShotRAG(Channel(index, mode), k=args.k), concurrency=1,
            ablation=Ablation(name=f"single-shot {mode}", system="single_shot", channels="documents", use_llm=False),
        )  # fmt: skip
        run_dirs.append(out_dir)
    print(metrics_table(run_dirs, KEYS))


if __name__ == "__main__":
    main()
