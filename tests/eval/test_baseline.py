"""The single-shot RAG baseline: extractive without an LLM, one real HTTP call with one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pagehop.eval.baseline import SingleShotRAG, best_sentence
from pagehop.eval.runner import run_eval
from pagehop.llm.openai_compat import OpenAICompatibleLLM
from pagehop.schema import Hit
from pagehop.testing.openai_server import Reply, ScriptedOpenAIServer

PASSAGES = {
    "Hamlet": "Hamlet is a tragedy. It was written by William Shakespeare around 1600.",
    "Paris": "Paris is the capital and largest city of France. It lies on the Seine.",
    "Jupiter": "Jupiter orbits the Sun. Jupiter is the largest planet in the Solar System.",
}


class OverlapRetriever:
    """Ranks the passages by how many question words they share (ties by title)."""

    def search(self, query: str, k: int) -> list[Hit]:
        words = set(re.findall(r"\w+", query.lower()))
        scored = sorted(
            ((len(words & set(re.findall(r"\w+", text.lower()))), title, text) for title, text in PASSAGES.items()),
            key=lambda item: (-item[0], item[1]),
        )
        return [
            Hit(channel="text", doc_id=title.lower(), page=1, score=float(score), text=text, title=title)
            for score, title, text in scored[:k]
        ]


def test_best_sentence_prefers_question_words() -> None:
    hits = OverlapRetriever().search("Who wrote Hamlet?", 2)
    assert best_sentence("Who wrote the play Hamlet, written when?", hits) == (
        "It was written by William Shakespeare around 1600."
    )
    assert best_sentence("anything", []) == ""


def test_extractive_baseline_through_the_runner(tmp_path: Path) -> None:
    dataset = tmp_path / "tiny.jsonl"
    rows = [
        {
            "id": "h",
            "question": "Who was Hamlet written by?",
            "answers": ["William Shakespeare"],
            "gold_passages": ["Hamlet"],
        },
        {"id": "j", "question": "Which is the largest planet?", "answers": ["Jupiter"], "gold_passages": ["Jupiter"]},
    ]
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    system = SingleShotRAG(OverlapRetriever(), k=2)
    result = run_eval(dataset, out_dir=tmp_path / "run", system=system, progress=False, report=False)
    # both best sentences contain the gold answer; the gold passage is retrieved first both times
    assert result["qa.subem"] == 1.0
    assert result["qa.em"] == 0.0
    assert (result["retrieval.recall@2"], result["cost.llm_calls_mean"]) == (1.0, 0.0)
    assert result["cost.stage_seconds_mean.retrieve"] >= 0.0


def test_llm_baseline_makes_one_call_over_the_top_passages() -> None:
    with ScriptedOpenAIServer([Reply(content='{"answer": "Paris"}', prompt_tokens=40, completion_tokens=4)]) as server:
        llm = OpenAICompatibleLLM(server.base_url, "test-model", max_retries=0)
        try:
            answer = SingleShotRAG(OverlapRetriever(), k=1, llm=llm).ask("What is the capital of France?")
        finally:
            llm.close()
        (request,) = server.requests
    assert answer.answer == "Paris"
    assert answer.answered_by == "llm"
    assert (answer.usage["llm_calls"], answer.usage["tokens"]) == (1, 44)
    prompt = json.dumps(request["messages"])
    assert "Paris is the capital" in prompt and "Jupiter" not in prompt  # k=1: only the top passage


def test_llm_failure_falls_back_to_the_extractive_answer() -> None:
    with ScriptedOpenAIServer([Reply(content="not json")]) as server:
        llm = OpenAICompatibleLLM(server.base_url, "test-model", max_retries=0)
        try:
            answer = SingleShotRAG(OverlapRetriever(), k=1, llm=llm).ask("What is the capital of France?")
        finally:
            llm.close()
    assert answer.answer == "Paris is the capital and largest city of France."


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        SingleShotRAG(OverlapRetriever(), k=0)
