"""LLM calls per question of the GraphSearch loop, on 2WikiMultiHopQA, HotpotQA or MuSiQue, with a
scripted model.

The model is scripted but honest: it sits behind a real OpenAI-compatible HTTP server on
loopback, plans sub-queries with the same rules as the no-LLM policy, and answers a
sub-query only when the evidence the agent sent it states the gold answer (so a retrieval
miss costs the agent a round, as it would with a real model). Evidence coverage = the share
of the question's gold passages that reached the agent's evidence.

The "unbatched" column is computed from the same runs: what the loop would have cost with
one refine call per sub-query and one LLM grounding call per sub-query with a placeholder
(the reference implementation's shape), instead of one refine call per wave and
placeholder substitution.

On HotpotQA and MuSiQue, which have no gold triples, the model answers a sub-query with the first
gold hop answer (MuSiQue: the decomposition's answers; HotpotQA: the supporting titles and the
answer) that the evidence it was shown states and the sub-query does not already name.

    .venv/bin/python benchmarks/agent_llm_calls.py --questions 30 --distractors 150
    .venv/bin/python benchmarks/agent_llm_calls.py --dataset musique --questions 30 --distractors 150
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from pagehop.agents.policy import NoLLMPolicy
from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.agents.state import Answer, Evidence
from pagehop.config import AgentSettings
from pagehop.engine import Pagehop
from pagehop.llm.openai_compat import OpenAICompatibleLLM
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk
from pagehop.testing.multihop import DATA_DIR, MultihopSlice, build_slice, passage_chunks, passage_doc_id
from pagehop.testing.openai_server import Reply, ScriptedOpenAIServer

EVIDENCE = re.compile(r'<evidence id="(E\d+)"[^>]*>\n(.*?)\n</evidence>', re.DOTALL)
SUB_QUERY = re.compile(r"^#(\d+): (.*?)(?: -> .*)?$", re.MULTILINE)
QUESTION = re.compile(r"^Question: (.*)$", re.MULTILINE)


class GoldModel:
    """Plans like the policy; answers only what the evidence it is shown supports."""

    def __init__(self, questions: list[dict[str, Any]]) -> None:
        self.by_question = {q["question"].strip(): q for q in questions}
        self.policy = NoLLMPolicy()
        self.current: dict[str, Any] | None = None

    def __call__(self, body: dict[str, Any]) -> Reply:
        content = body["messages"][-1]["content"]
        text = content if isinstance(content, str) else "\n".join(p["text"] for p in content if p["type"] == "text")
        name = body["response_format"]["json_schema"]["name"]
        reply = json.dumps(getattr(self, name.removesuffix("Reply").lower())(text))
        # Token stand-in (no tokenizer here): characters / 4 of everything sent and returned.
        sent = sum(
            len(m["content"]) if isinstance(m["content"], str) else len(json.dumps(m["content"]))
            for m in body["messages"]
        )
        return Reply(content=reply, prompt_tokens=sent // 4, completion_tokens=len(reply) // 4)

    def decompose(self, text: str) -> dict[str, Any]:
        question = QUESTION.search(text)
        assert question is not None
        self.current = self.by_question.get(question.group(1).strip())
        plan = self.policy.decompose(question.group(1), 6)
        return {
            "resolved_question": question.group(1),
            "sub_queries": [{"id": q.id, "text": q.text} for q in plan],
        }

    def refine(self, text: str) -> dict[str, Any]:
        evidence = EVIDENCE.findall(text)
        results = []
        for sq_id, sq_text in SUB_QUERY.findall(text):
            answer, facts = "", []
            for obj in self._candidates(sq_text):
                ids = [eid for eid, body in evidence if obj.lower() in body.lower()]
                if ids:
                    answer, facts = obj, [{"evidence_id": ids[0], "text": f"... {obj} ..."}]
                    break
            results.append({"id": sq_id, "answer": answer, "facts": facts})
        return {"results": results}

    def draft(self, text: str) -> dict[str, Any]:
        assert self.current is not None
        answered = re.findall(r"-> answer: .*?\(facts: .*?\[(E\d+)\]\)", text)
        unanswered = "-> not found" in text
        answer = "" if unanswered or not answered else self.current["answer"]
        return {"answer": answer, "claims": [{"text": "from the sub-query answers", "evidence_ids": answered}]}

    def verify(self, text: str) -> dict[str, Any]:
        return {"supported": "Draft answer: \n" not in text, "missing": []}

    def expand(self, text: str) -> dict[str, Any]:
        next_id = int(re.search(r"ids start at (\d+)", text).group(1))  # type: ignore[union-attr]
        missing = [line.split(": ", 1)[1] for line in text.splitlines() if line.endswith("-> not found")]
        return {"sub_queries": [{"id": str(next_id + i), "text": f"{m} biography"} for i, m in enumerate(missing)]}

    def _candidates(self, sub_query: str) -> list[str]:
        """Answers the model may give: the objects of the gold triples about the sub-query's subject."""
        if self.current is None:
            return []
        lowered = sub_query.lower()
        return [t[2] for t in self.current["evidence"] if t[0].lower() in lowered]


class HopAnswerModel(GoldModel):
    """For datasets without gold triples: answers from the gold hop answers the evidence states."""

    def _candidates(self, sub_query: str) -> list[str]:
        hops = self.current["hop_answers"] if self.current else []
        return [hop for hop in hops if hop.lower() not in sub_query.lower()]


def load_hop_dataset(name: str, limit: int, distractors: int) -> tuple[list[dict[str, Any]], list[Chunk]]:
    """HotpotQA or MuSiQue questions as {question, answer, question_type, gold_titles, hop_answers}, and
    their passages (each question's own paragraphs) plus seeded random distractors from the corpus."""
    folder = DATA_DIR
    items: list[dict[str, Any]] = []
    passages: dict[str, str] = {}
    if name == "hotpotqa":
        raw = json.loads((folder / "hotpotqa_train.json").read_text(encoding="utf-8"))[:limit]
        corpus = {
            t: "".join(sents) for t, sents in json.loads((folder / "hotpotqa_train_corpus.json").read_text()).items()
        }
        for q in raw:
            gold = list(dict.fromkeys(t for t, _ in q["supporting_facts"]))
            passages.update({t: "".join(sents) for t, sents in q["context"]})
            items.append(
                {"question": q["question"], "answer": q["answer"], "question_type": q["type"],
                 "gold_titles": gold, "hop_answers": [*gold, q["answer"]]}
            )  # fmt: skip
    else:
        raw = json.loads((folder / "musique_train.json").read_text(encoding="utf-8"))[:limit]
        corpus = {p["title"]: p["text"] for p in json.loads((folder / "musique_train_corpus.json").read_text())}
        for q in raw:
            steps = q["question_decomposition"]
            by_idx = {p["idx"]: p for p in q["paragraphs"]}
            passages.update({p["title"]: p["paragraph_text"] for p in q["paragraphs"]})
            items.append(
                {"question": q["question"], "answer": q["answer"], "question_type": f"{len(steps)}-hop",
                 "gold_titles": [by_idx[s["paragraph_support_idx"]]["title"] for s in steps],
                 "hop_answers": [*(s["answer"] for s in steps), *q.get("answer_aliases", [])]}
            )  # fmt: skip
    others = sorted(t for t in corpus if t not in passages)
    for title in random.Random(0).sample(others, min(distractors, len(others))):
        passages[title] = corpus[title]
    return items, passage_chunks([{"title": t, "text": x} for t, x in passages.items()])


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if args.dataset == "2wiki":
        data = build_slice(limit=args.questions, distractors=args.distractors, seed=0)
        questions, chunks, model = data.questions, data.chunks, GoldModel(data.questions)
    else:
        questions, chunks = load_hop_dataset(args.dataset, args.questions, args.distractors)
        model = HopAnswerModel(questions)
    data = MultihopSlice(questions=questions, chunks=chunks)
    started = time.perf_counter()
    index = HybridTextIndex(None, device="cpu")
    index.add(data.chunks)
    print(f"indexed {len(data.chunks)} passages in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    retriever = WorkspaceRetriever(text_index=index)
    settings = AgentSettings(max_rounds=3, max_llm_calls=30)
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAIServer(model) as server:
        llm = OpenAICompatibleLLM(server.base_url, "scripted-gold", timeout_s=30)
        with (
            Pagehop(retriever, llm, settings, threads_path=Path(tmp) / "t.sqlite") as engine,
            Pagehop(retriever, None, settings, threads_path=Path(tmp) / "p.sqlite") as policy_engine,
        ):
            for item in data.questions:
                answer, evidence = ask(engine, item["question"])
                policy_answer = policy_engine.ask(item["question"])
                rows[item["question_type"]].append(measure(item, answer, evidence, policy_answer))
    print_table(rows)


def ask(engine: Pagehop, question: str) -> tuple[Answer, list[Evidence]]:
    evidence: list[Evidence] = []
    answer: Answer | None = None
    for event in engine.stream(question):
        evidence = event.evidence or evidence
        answer = event.answer or answer
    assert answer is not None
    return answer, evidence


def measure(item: dict[str, Any], answer: Answer, evidence: list[Evidence], policy: Answer) -> dict[str, float]:
    titles = item["gold_titles"] if "gold_titles" in item else [t[0] for t in item["evidence"]]
    gold_docs = {passage_doc_id(t) for t in titles}
    found = {e.doc_id for e in evidence}
    refine_calls = sum(1 for e in answer.trace if e.stage == "refine" and e.llm_calls)
    refined = sum(1 for sq in answer.sub_queries if sq.status != "pending")
    placeholders = sum(1 for sq in answer.sub_queries if sq.depends_on)
    return {
        "calls": answer.usage.llm_calls,
        "tokens": answer.usage.tokens,
        "unbatched": answer.usage.llm_calls - refine_calls + refined + placeholders,
        "rounds": 1 + max(e.round for e in answer.trace),
        "coverage": len(gold_docs & found) / len(gold_docs),
        "em": float(answer.answer.strip().lower() == item["answer"].lower()),
        "policy_em": float(policy.answer.strip().lower() == item["answer"].lower()),
        "sub_queries": len(answer.sub_queries),
    }


def print_table(rows: dict[str, list[dict[str, float]]]) -> None:
    everything = [row for group in rows.values() for row in group]
    header = (
        f"{'question type':<18} {'n':>3} {'calls/q':>8} {'p50':>4} {'max':>4} {'tokens/q':>9} {'unbatched/q':>12} "
        f"{'rounds':>7} {'sub-q':>6} {'gold cov':>9} {'EM (gold model)':>16} {'EM (no-LLM)':>12}"
    )
    print(header)
    print("-" * len(header))
    for name, group in [*sorted(rows.items()), ("all", everything)]:
        calls = [r["calls"] for r in group]

        def mean(key: str, group: list[dict[str, float]] = group) -> float:
            return statistics.mean(r[key] for r in group)

        print(
            f"{name:<18} {len(group):>3} {statistics.mean(calls):>8.2f} {statistics.median(calls):>4.0f} "
            f"{max(calls):>4.0f} {mean('tokens'):>9.0f} {mean('unbatched'):>12.2f} {mean('rounds'):>7.2f} "
            f"{mean('sub_queries'):>6.2f} {mean('coverage'):>9.2f} {mean('em'):>16.2f} {mean('policy_em'):>12.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["2wiki", "hotpotqa", "musique"], default="2wiki")
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--distractors", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
