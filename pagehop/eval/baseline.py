"""Single-shot RAG: retrieve once, answer once. The baseline the GraphSearch agent must beat.

Without an LLM it answers extractively with the retrieved sentence that shares the most question words
(so retrieval recall is meaningful and answer scores are a floor); with an LLM it asks once, over the
top passages.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field

from pagehop.llm.base import LLM, LLMError, Usage
from pagehop.schema import Hit
from pagehop.text import content_terms

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Retriever(Protocol):
    def search(self, query: str, k: int) -> list[Hit]: ...


@dataclass
class BaselineAnswer:
    """Shaped like the engine's Answer, so the runner scores both alike."""

    answer: str
    citations: list[Hit]
    trace: list[str]
    usage: dict[str, Any]
    answered_by: str
    graph_paths: list[Any] = field(default_factory=list)


class _ShortAnswer(BaseModel):
    answer: str = Field(max_length=300, description="a few words, or 'Not answerable'")


class SingleShotRAG:
    """Retrieve ``k`` hits for the question and answer from them in one step."""

    def __init__(self, retriever: Retriever, *, k: int = 5, llm: LLM | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.retriever, self.k, self.llm = retriever, k, llm

    def ask(self, question: str) -> BaselineAnswer:
        started = time.perf_counter()
        hits = self.retriever.search(question, self.k)
        retrieved = time.perf_counter()
        usage = Usage()
        if self.llm is None:
            answer, answered_by = best_sentence(question, hits), "extractive"
        else:
            answer, answered_by = self._ask_llm(question, hits, usage), "llm"
        finished = time.perf_counter()
        return BaselineAnswer(
            answer=answer,
            citations=hits,
            trace=[f"retrieve k={self.k}: {len(hits)} hits", f"answer ({answered_by}): {answer[:120]}"],
            usage={
                "llm_calls": usage.calls,
                "tokens": usage.tokens,
                "seconds": {"retrieve": retrieved - started, "answer": finished - retrieved},
            },
            answered_by=answered_by,
        )

    def _ask_llm(self, question: str, hits: list[Hit], usage: Usage) -> str:
        assert self.llm is not None
        context = "\n\n".join(f"[{i + 1}] {hit.title}\n{hit.text}" for i, hit in enumerate(hits))
        messages = [
            {
                "role": "system",
                "content": "Answer the question from the passages with a short phrase only. "
                "If they do not contain the answer, say 'Not answerable'. Reply as JSON {\"answer\": ...}.",
            },
            {"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {question}"},
        ]
        try:
            return self.llm.complete_json(messages, _ShortAnswer, max_tokens=128, usage=usage).answer
        except LLMError:
            # No usable reply: fall back to the extractive answer rather than fail the question.
            return best_sentence(question, hits)


def best_sentence(question: str, hits: list[Hit]) -> str:
    """The retrieved sentence sharing the most content words with the question; earlier hits win ties.

    Words of a hit's title do not count: every sentence of a passage is about its title, so they cannot tell
    its sentences apart.
    """
    wanted = _content_words(question)
    best, best_overlap = "", -1
    for hit in hits:
        wanted_here = wanted - _content_words(hit.title)
        for sentence in _SENTENCE_END.split(hit.text.strip()):
            overlap = len(wanted_here & _content_words(sentence))
            if overlap > best_overlap:
                best, best_overlap = sentence.strip(), overlap
    return best


def _content_words(text: str) -> set[str]:
    return {w for w in content_terms(text) if len(w) > 1}
