"""Passage recall of the no-LLM coverage order under other gain weights, replayed from a captured run.

    .venv/bin/python benchmarks/multihop_latency.py /work/ws/2wiki 2wikimultihopqa_dev300.json \\
        --corpus 2wikimultihopqa_corpus.json --out runs/wk --limit 150 --capture
    .venv/bin/python benchmarks/cover_weights.py /work/ws/2wiki 2wikimultihopqa_dev300.json runs/wk \\
        2,0.5,1,1,1 3,1,1,1.5,1

Each WEIGHTS is ``ABOUT,MENTION,TERMS,LINK,PRIOR`` (`pagehop.agents.policy`'s ``*_GAIN``). For every question
the run's final draft is made again from its captured sub-queries and evidence under those weights, and its
citations and retrieved pages are scored as the run scored them; the first row with the policy's own
weights reproduces the run's R@2 / R@5 exactly. What a replay cannot show is the weights' effect on the
earlier rounds: the expand stage picks its bridges from the same order, so a real run can retrieve other
pages. Use it to screen many weight vectors in seconds each, then confirm the chosen one with real runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pagehop.agents import policy
from pagehop.agents.stages import compose_answer
from pagehop.agents.state import Answer, Evidence, SubQuery
from pagehop.assemble import open_retriever
from pagehop.config import load_settings
from pagehop.eval.datasets import align_gold_titles, load_dataset
from pagehop.eval.metrics import mean
from pagehop.eval.records import score_record
from pagehop.eval.runner import CorpusNames, answer_one
from pagehop.workspace import Workspace

GAINS = ("ABOUT_GAIN", "MENTION_GAIN", "TERMS_GAIN", "LINK_GAIN", "PRIOR_GAIN")


Captured = tuple[str, list[SubQuery], list[Evidence]]  # the question as the draft read it, its inputs


class Replay:
    """A ``QASystem`` whose answer to a question is its captured final draft, made again now."""

    def __init__(self, no_llm: policy.NoLLMPolicy, captured: dict[str, Captured]):
        self.no_llm, self.captured = no_llm, captured

    def ask(self, question: str) -> Answer:
        drafted, sub_queries, evidence = self.captured[question]
        draft = self.no_llm.draft(drafted, sub_queries, evidence)
        return compose_answer(drafted, draft, None, sub_queries, evidence, [], "replayed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("run", type=Path, help="a multihop_latency.py run folder made with --capture")
    parser.add_argument("weights", nargs="+", help="ABOUT,MENTION,TERMS,LINK,PRIOR")
    args = parser.parse_args()
    vectors = [[float(value) for value in weights.split(",")] for weights in args.weights]
    if any(len(values) != len(GAINS) for values in vectors):
        parser.error(f"each WEIGHTS is {len(GAINS)} numbers: {','.join(GAINS)}")

    names = CorpusNames.from_path(args.run / "corpus")
    by_id = {example.id: example for example in align_gold_titles(load_dataset(args.dataset), names.titles)}
    rows = [json.loads(line) for line in (args.run / "capture.jsonl").open(encoding="utf-8")]
    examples = [by_id[row["id"]] for row in rows]
    captured = {
        by_id[row["id"]].question: (
            row["question"],
            [SubQuery.model_validate(sq) for sq in row["sub_queries"]],
            [Evidence.model_validate(e) for e in row["evidence"]],
        )
        for row in rows
    }
    settings = load_settings(None, workspace=args.workspace)
    print(f"{len(examples)} questions replayed from {args.run}")
    print("| ABOUT, MENTION, TERMS, LINK, PRIOR | R@2 | R@5 |\n|---|---|---|")
    with Workspace.open(settings) as workspace:
        retriever = open_retriever(workspace)
        replay = Replay(policy.NoLLMPolicy(settings.models.spacy_model, retriever.documents_named_in), captured)
        for values in [[float(getattr(policy, gain)) for gain in GAINS], *vectors]:
            for gain, value in zip(GAINS, values, strict=True):
                setattr(policy, gain, value)
            scores = [score_record(answer_one(example, replay, names)) for example in examples]
            r2 = mean([s["retrieval.recall@2"] for s in scores if "retrieval.recall@2" in s])
            r5 = mean([s["retrieval.recall@5"] for s in scores if "retrieval.recall@5" in s])
            print(f"| {', '.join(f'{value:g}' for value in values)} | {100 * r2:.1f} | {100 * r5:.1f} |", flush=True)


if __name__ == "__main__":
    main()
