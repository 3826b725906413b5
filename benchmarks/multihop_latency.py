"""Latency, CPU time and passage recall of the no-LLM agent, one question at a time, on a built workspace.

    .venv/bin/python benchmarks/multihop_latency.py /work/ws/2wiki-text \\
        ../shared/data/multihop/2wikimultihopqa_dev300.json \\
        --corpus ../shared/data/multihop/2wikimultihopqa_corpus.json --out runs/2wiki-latency

Unlike `pagehop eval` (questions on a thread pool), questions run serially in this thread, so the wall
time of a question is what one user waits and ``time.process_time`` is its CPU cost (all threads of the
process, the embedder's included). The first question is asked once before timing (model loading).
``--profile FILE`` writes a cProfile of the timed questions; ``--ablate NAME`` switches off one mechanism
for an ablation row (see ``ABLATIONS``); ``--passage-graph`` turns on the passage graph's PageRank ranking
(off by default; the first question builds or loads the graph, counted in the start-up time). The run
folder holds ``predictions.jsonl`` in the format of `pagehop eval`, so `benchmarks/split_metrics.py`
splits it into dev / test halves. The workspace is only read (no ingestion; the passage graph's cache
is written beside its text index); the page channel is left out (text workspaces); ``--channels both``
adds the knowledge graph's channel from the workspace's graph store, as `pagehop ask` uses it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from pagehop.agents import policy
from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.agents.state import Draft, Evidence, SubQuery
from pagehop.assemble import open_retriever
from pagehop.config import load_settings
from pagehop.eval import Ablation, prepare_corpus
from pagehop.eval.datasets import align_gold_titles, load_dataset
from pagehop.eval.engine_adapter import ablated_settings, engine_for_eval
from pagehop.eval.metrics import mean, percentile
from pagehop.eval.records import score_record
from pagehop.eval.runner import CorpusNames, answer_one
from pagehop.graph.store import make_graph_store
from pagehop.workspace import Workspace


@contextmanager
def _patched(target: object, name: str, value: object) -> Iterator[None]:
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


@contextmanager
def _capturing_drafts(last: list[tuple[str, list[SubQuery], list[Evidence]]]) -> Iterator[None]:
    """``last`` holds the inputs of the latest no-LLM draft (the final one once a question is answered)."""
    draft = policy.NoLLMPolicy.draft

    def recording(
        self: policy.NoLLMPolicy, question: str, sub_queries: list[SubQuery], evidence: list[Evidence] | None = None
    ) -> Draft:
        last[:] = [(question, list(sub_queries), list(evidence or []))]
        return draft(self, question, sub_queries, evidence)

    with _patched(policy.NoLLMPolicy, "draft", recording):
        yield


# Each ablation switches one mechanism off for the run (code flags, not user settings).
ABLATIONS: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "none": nullcontext,
    "no-bridges": lambda: _patched(policy, "BRIDGES_PER_ROUND", 0),
    # the title channel: no document is found by the name a query writes
    "no-titles": lambda: _patched(WorkspaceRetriever, "named_documents", lambda self, text, k: []),
    # coverage ranking: passages in the order of their fused retrieval rank
    "no-coverage": lambda: _patched(
        policy.NoLLMPolicy, "_cover", lambda self, analysis, passages, hops=(): list(passages)
    ),
    # description chains: no sub-query per description ("the country where X is"), no grounded rewrite
    "no-chains": lambda: _patched(policy, "_chain_texts", lambda chain, first_id: []),
    # sub-queries answered from any passage, not first from the passages about the names they ask about
    "no-about-answers": lambda: _patched(policy.NoLLMPolicy, "_answers_about_names", lambda self, a, p: []),
    # with no passage about its names, a sub-query answered from any passage, not first from the sentences
    # that write its names
    "no-naming-answers": lambda: _patched(policy.NoLLMPolicy, "_answers_naming_names", lambda self, a, p: []),
    # the last resolved hop's pages (its best, its answer's) are not given a cited slot
    "no-last-hop-cited": lambda: _patched(
        policy, "_last_hop_cited", lambda analysis, ranked, sub_queries, evidence: ranked
    ),
    # the page the last resolved hop's answer was read from is not given the second place
    "no-answer-page-second": lambda: _patched(
        policy, "_answer_page_second", lambda ranked, sub_queries, evidence: ranked
    ),
    # the answers of resolved chain hops are not followed by the bridge hop
    "no-follow-hops": lambda: _patched(policy.NoLLMPolicy, "_unfollowed_hops", lambda self, sq, passages, asked: []),
    # comparisons through a role: no role holder is followed, values are read from the sides' own chains
    "no-roles": lambda: _patched(policy.NoLLMPolicy, "_role_holder", lambda self, analysis, head: ""),
    # bridge candidates are spaCy's entities only, not the collection's documents the evidence names
    "no-document-bridges": lambda: _patched(WorkspaceRetriever, "documents_named_in", lambda self, text: []),
    # citations with the answer's passage first, then the coverage order (the previous draft)
    "answer-first": lambda: _patched(policy, "_in_coverage_order", lambda claims, ranked, evidence: claims),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--corpus", type=Path, required=True, help="the corpus JSON the workspace was built from")
    parser.add_argument("--out", type=Path, required=True, help="run folder (predictions.jsonl, metrics.json)")
    parser.add_argument("--limit", type=int, default=None, help="the first N questions of the file")
    parser.add_argument("--offset", type=int, default=0, help="skip the first N questions")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of the timed questions")
    parser.add_argument("--ablate", choices=sorted(ABLATIONS), default="none")
    parser.add_argument(
        "--channels",
        choices=("documents", "both"),
        default="documents",
        help="both: the knowledge graph's channel too, from the workspace's graph store",
    )
    parser.add_argument(
        "--capture",
        action="store_true",
        help="write OUT/capture.jsonl: each question's final sub-queries and evidence, for cover_weights.py",
    )
    parser.add_argument(
        "--passage-graph",
        action="store_true",
        help="turn on the passage graph's PageRank ranking (agent.passage_graph)",
    )
    args = parser.parse_args()

    ablation = Ablation(name=f"agent-{args.channels}-nollm", channels=args.channels, use_llm=False)
    settings = ablated_settings(load_settings(None, workspace=args.workspace), ablation)
    if args.passage_graph:
        settings.agent.passage_graph = True
    folder = prepare_corpus(args.dataset, args.corpus, args.out / "corpus")
    names = CorpusNames.from_path(folder)
    examples = align_gold_titles(load_dataset(args.dataset), names.titles)
    end = None if args.limit is None else args.offset + args.limit
    examples = examples[args.offset : end]

    store = make_graph_store(settings, args.workspace.resolve()) if args.channels == "both" else None
    started = time.perf_counter()
    with (
        Workspace.open(settings, graph_store=store) as workspace,
        engine_for_eval(settings, open_retriever(workspace), ablation) as qa,
    ):
        qa.ask(examples[0].question)  # loads the embedder, spaCy and the title index
        warmup_s = time.perf_counter() - started
        profiler = cProfile.Profile() if args.profile else None
        rows, scores, captured = [], [], []
        last: list[tuple[str, list[SubQuery], list[Evidence]]] = []
        with ABLATIONS[args.ablate](), _capturing_drafts(last) if args.capture else nullcontext():
            for example in examples:
                last.clear()
                cpu = time.process_time()
                if profiler:
                    profiler.enable()
                record = answer_one(example, qa, names)
                if profiler:
                    profiler.disable()
                # serialised outside the timed region; a question that failed before its draft has none
                for question, sub_queries, evidence in last:
                    captured.append(
                        {
                            "id": example.id,
                            "question": question,
                            "sub_queries": [sq.model_dump(mode="json") for sq in sub_queries],
                            "evidence": [e.model_dump(mode="json") for e in evidence],
                        }
                    )
                row = json.loads(record.model_dump_json())
                row["cpu_s"] = time.process_time() - cpu
                rows.append(row)
                scores.append(score_record(record))
    if profiler and args.profile:
        profiler.dump_stats(args.profile)

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "predictions.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
    if args.capture:
        with (args.out / "capture.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(row) + "\n" for row in captured)
    walls = [row["latency_s"] for row in rows]
    cpus = [row["cpu_s"] for row in rows]
    metrics = {
        "questions": len(rows),
        "errors": sum(1 for row in rows if row.get("error")),
        "R@2": mean([s["retrieval.recall@2"] for s in scores if "retrieval.recall@2" in s]),
        "R@5": mean([s["retrieval.recall@5"] for s in scores if "retrieval.recall@5" in s]),
        "EM": mean([s["qa.em"] for s in scores]),
        "F1": mean([s["qa.f1"] for s in scores]),
        "wall p50 s": percentile(walls, 50),
        "wall p95 s": percentile(walls, 95),
        "cpu p50 s": percentile(cpus, 50),
        "cpu p95 s": percentile(cpus, 95),
        "cpu mean s": mean(cpus),
        "start-up s": warmup_s,
        "max RSS MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ablation": args.ablate,
        "passage graph": settings.agent.passage_graph,
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    for key, value in metrics.items():
        print(f"{key:>12}: {value:.3f}" if isinstance(value, float) else f"{key:>12}: {value}")


if __name__ == "__main__":
    main()
