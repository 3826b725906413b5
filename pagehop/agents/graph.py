"""The GraphSearch loop as a LangGraph StateGraph. Read top to bottom:

begin -> decompose -> ground --(ready sub-queries)--> retrieve x N (parallel Send) --> refine
                        ^   |                                                          |
                        |   +--(none ready)--> draft <--(nothing pending)--------------+
                        |                         |           (still pending: ground) -+
                        |                       verify --(supported, or a budget ends)--> finish
                        |                         |
                        +------- expand <--(not supported)
"""

from __future__ import annotations

import time
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

from pagehop.agents import stages
from pagehop.agents.retriever import QueryBatching
from pagehop.agents.stages import AgentDeps, Meter
from pagehop.agents.state import AgentState, Budget, Draft, SubQuery, TraceEvent, Turn


class RetrieveTask(TypedDict):
    sub_query: SubQuery


def build_graph(deps: AgentDeps, checkpointer: Any = None) -> CompiledStateGraph:
    settings = deps.settings

    def begin(state: AgentState) -> dict[str, Any]:
        # A new question on a thread: keep the conversation history, reset everything else.
        budget = Budget(
            max_rounds=settings.max_rounds,
            max_llm_calls=settings.max_llm_calls,
            max_tokens=settings.max_tokens,
            max_seconds=settings.max_seconds,
            started_at=time.time(),
        )
        return {
            "history": state.get("history", []), "resolved_question": state["question"], "sub_queries": [],
            "ready": [], "retrieved": None, "evidence": [], "draft": None, "verdict": None, "round": 0,
            "budget": budget, "trace": None, "answer": None, "stop_reason": "",
        }  # fmt: skip

    def decompose(state: AgentState) -> dict[str, Any]:
        meter = Meter(deps, state["budget"], "decompose")
        resolved, sub_queries = stages.decompose(meter, state["question"], state["history"])
        summary = f"{len(sub_queries)} sub-queries: " + " | ".join(f"#{q.id} {q.text}" for q in sub_queries)
        return {
            "resolved_question": resolved,
            "sub_queries": sub_queries,
            "budget": meter.budget,
            "trace": [meter.event(0, summary, resolved_question=resolved)],
        }

    def ground(state: AgentState) -> dict[str, Any]:
        sub_queries, ready = stages.ground(state["sub_queries"])
        grounded = [q for q in sub_queries if q.id in ready]
        if isinstance(deps.retriever, QueryBatching):  # one embedder call for the round, not one per search
            deps.retriever.prepare_queries([q.grounded or q.text for q in grounded])
        summary = "ready: " + (" | ".join(f"#{q.id} {q.grounded}" for q in grounded) or "none")
        event = TraceEvent(stage="ground", round=state["round"], summary=summary)
        return {"sub_queries": sub_queries, "ready": ready, "trace": [event]}

    def fan_out(state: AgentState) -> list[Send] | str:
        by_id = {q.id: q for q in state["sub_queries"]}
        if not state["ready"]:
            return "draft"
        return [Send("retrieve", RetrieveTask(sub_query=by_id[i])) for i in state["ready"]]

    def retrieve(task: RetrieveTask) -> dict[str, Any]:
        started = time.perf_counter()
        found = stages.retrieve(deps.retriever, settings, task["sub_query"])
        notes = "".join(f"; {note}" for note in found.notes)
        event = TraceEvent(
            stage="refine",
            round=task["sub_query"].round,
            summary=f"retrieved #{found.sub_query_id}: {len(found.evidence)} hits{notes}",
            seconds=round(time.perf_counter() - started, 4),
            data={"notes": found.notes} if found.notes else {},
        )
        return {"retrieved": [found], "trace": [event]}

    def refine(state: AgentState) -> dict[str, Any]:
        meter = Meter(deps, state["budget"], "refine")
        # Graph query results first: a sub-query the graph answers in one query reads them before passages.
        from_graph = stages.query_graph(meter, state["sub_queries"], state["ready"])
        evidence, per_query = stages.number_evidence(state["evidence"], [*from_graph, *state["retrieved"]])
        sub_queries = stages.refine(meter, state["sub_queries"], state["ready"], per_query, state["round"])
        done = [q for q in sub_queries if q.id in state["ready"]]
        summary = " | ".join(f"#{q.id} -> {q.answer or 'not found'}" for q in done)
        notes = [note for found in from_graph for note in found.notes]
        return {
            "sub_queries": sub_queries,
            "evidence": evidence,
            "retrieved": None,
            "budget": meter.budget,
            "trace": [meter.event(state["round"], summary, **({"notes": notes} if notes else {}))],
        }

    def after_refine(state: AgentState) -> str:
        pending = any(q.status == "pending" for q in state["sub_queries"])
        return "ground" if pending and not state["budget"].out_of_time(time.time()) else "draft"

    def draft(state: AgentState) -> dict[str, Any]:
        meter = Meter(deps, state["budget"], "draft")
        result = stages.draft(
            meter, state["resolved_question"], state["history"], state["sub_queries"], state["evidence"]
        )
        return {
            "draft": result,
            "budget": meter.budget,
            "trace": [meter.event(state["round"], f"answer: {result.answer or '(none)'}")],
        }

    def verify(state: AgentState) -> dict[str, Any]:
        meter = Meter(deps, state["budget"], "verify")
        verdict = stages.verify(
            meter, state["resolved_question"], state["draft"] or Draft(answer=""), state["sub_queries"],
            state["evidence"],
        )  # fmt: skip
        summary = "supported" if verdict.supported else "missing: " + "; ".join(verdict.missing)
        return {"verdict": verdict, "budget": meter.budget, "trace": [meter.event(state["round"], summary)]}

    def after_verify(state: AgentState) -> str:
        verdict, budget = state["verdict"], state["budget"]
        if verdict is not None and verdict.supported:
            return "finish"
        if state["round"] + 1 >= budget.max_rounds or budget.out_of_time(time.time()):
            return "finish"
        return "expand"

    def expand(state: AgentState) -> dict[str, Any]:
        round_ = state["round"] + 1
        meter = Meter(deps, state["budget"], "expand")
        verdict = state["verdict"]
        assert verdict is not None
        sub_queries = stages.expand(
            meter, state["resolved_question"], verdict, state["sub_queries"], state["evidence"], round_
        )
        new = [q for q in sub_queries if q.status == "pending"]
        summary = "new: " + (" | ".join(f"#{q.id} {q.text}" for q in new) or "nothing new to search")
        return {
            "sub_queries": sub_queries,
            "round": round_,
            "budget": meter.budget,
            "stop_reason": "" if new else "nothing new to search",
            "trace": [meter.event(round_, summary)],
        }

    def after_expand(state: AgentState) -> str:
        return "ground" if any(q.status == "pending" for q in state["sub_queries"]) else "finish"

    def finish(state: AgentState) -> dict[str, Any]:
        verdict, budget = state["verdict"], state["budget"]
        reason = state.get("stop_reason") or (
            "verified" if verdict and verdict.supported
            else "time budget" if budget.out_of_time(time.time())
            else "round budget"
        )  # fmt: skip
        answer = stages.compose_answer(
            state["resolved_question"], state["draft"] or Draft(answer=""), verdict, state["sub_queries"],
            state["evidence"], state["trace"], reason,
        )  # fmt: skip
        answer = answer.model_copy(update={"question": state["question"]})
        turn = Turn(question=state["question"], resolved_question=state["resolved_question"], answer=answer.answer)
        return {"answer": answer, "stop_reason": reason, "history": [*state["history"], turn]}

    builder = StateGraph(AgentState)
    builder.add_node("begin", begin)
    builder.add_node("decompose", decompose)
    builder.add_node("ground", ground)
    builder.add_node("retrieve", retrieve, input_schema=RetrieveTask)  # type: ignore[arg-type]
    builder.add_node("refine", refine)
    builder.add_node("draft", draft)
    builder.add_node("verify", verify)
    builder.add_node("expand", expand)
    builder.add_node("finish", finish)
    builder.add_edge(START, "begin")
    builder.add_edge("begin", "decompose")
    builder.add_edge("decompose", "ground")
    builder.add_conditional_edges("ground", fan_out, ["retrieve", "draft"])
    builder.add_edge("retrieve", "refine")
    builder.add_conditional_edges("refine", after_refine, ["ground", "draft"])
    builder.add_edge("draft", "verify")
    builder.add_conditional_edges("verify", after_verify, ["expand", "finish"])
    builder.add_conditional_edges("expand", after_expand, ["ground", "finish"])
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer)
