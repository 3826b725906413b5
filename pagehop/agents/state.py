"""The agent's state, as pydantic models: sub-queries, evidence, draft, verdict, trace, answer.

A sub-query's text may hold placeholders ``#1``, ``#2`` standing for the answers of the
sub-queries with those ids (GraphSearch's query grounding). Evidence gets ids ``E1``, ``E2``,
... in the order it was first retrieved; claims and facts cite those ids.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field, computed_field

from pagehop.schema import Channel

NO_LLM = "no-llm policy"
PLACEHOLDER = re.compile(r"#(\d+)")

Stage = Literal["decompose", "ground", "refine", "draft", "verify", "expand", "answer"]
SubQueryStatus = Literal["pending", "answered", "unanswerable"]


class Fact(BaseModel):
    """A compressed statement from one piece of evidence."""

    evidence_id: str
    text: str


class SubQuery(BaseModel):
    id: str = Field(description="'1', '2', ...; '#1' in another sub-query's text refers to this one")
    text: str
    depends_on: list[str] = Field(default_factory=list)
    triple: str = Field("", description="(subject, relation, ?object) pattern, when known")
    status: SubQueryStatus = "pending"
    grounded: str = Field("", description="text with the placeholders filled in by earlier answers")
    answer: str = ""
    facts: list[Fact] = Field(default_factory=list)
    round: int = 0

    @staticmethod
    def dependencies(text: str) -> list[str]:
        return sorted(set(PLACEHOLDER.findall(text)), key=int)


class Evidence(BaseModel):
    id: str
    sub_query_id: str
    channel: Channel
    doc_id: str
    page: int | None = None
    chunk_id: str | None = None
    title: str = ""
    text: str
    score: float = 0.0
    graph_path: str | None = Field(None, description="rendered GraphPath for graph evidence")

    @property
    def key(self) -> tuple[str, int | None, str | None, str]:
        return (self.doc_id, self.page, self.chunk_id, self.graph_path or self.text[:200])


class Claim(BaseModel):
    text: str
    evidence_ids: list[str] = Field(default_factory=list)


class Draft(BaseModel):
    answer: str
    claims: list[Claim] = Field(default_factory=list)
    answered_by: str = NO_LLM


class Verdict(BaseModel):
    supported: bool
    missing: list[str] = Field(default_factory=list, description="what the evidence does not yet show")
    answered_by: str = NO_LLM


class Budget(BaseModel):
    """Limits per question (from AgentSettings) and what has been spent so far."""

    max_rounds: int
    max_llm_calls: int
    max_tokens: int
    max_seconds: float
    started_at: float
    llm_calls: int = 0
    tokens: int = 0

    def llm_allowed(self, now: float) -> bool:
        return (
            self.llm_calls < self.max_llm_calls
            and self.tokens < self.max_tokens
            and now - self.started_at < self.max_seconds
        )

    def out_of_time(self, now: float) -> bool:
        return now - self.started_at >= self.max_seconds


class TraceEvent(BaseModel):
    """What one stage did, for the terminal trace, the UI and the benchmark."""

    stage: Stage
    round: int
    summary: str
    answered_by: str = NO_LLM
    llm_calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    data: dict[str, Any] = Field(default_factory=dict)


class Citation(BaseModel):
    doc_id: str
    page: int | None = None
    chunk_id: str | None = Field(None, description="the cited chunk: highlight it with the page image's ?highlight=")
    title: str = ""
    text: str = ""
    evidence_id: str = ""
    graph_path: str | None = None

    def label(self) -> str:
        """One line for a plain-text source list: where it is, and the graph path a graph fact was found by
        (so two facts of one page read as two sources, not as one page listed twice)."""
        where = (self.title or self.doc_id) + (f", p. {self.page}" if self.page else "")
        return f"{where} ({self.doc_id})" + (f" via {self.graph_path}" if self.graph_path else "")


class CitedClaim(BaseModel):
    """A claim of the answer, placed in its text: an inline marker goes at ``position``."""

    text: str
    citations: list[int] = Field(default_factory=list, description="1-based numbers into Answer.citations")
    supported: bool = Field(description="the verifier found the answer supported and the claim cites a source")
    position: int = Field(ge=0, description="offset in Answer.answer where the claim's markers go")


class AnswerUsage(BaseModel):
    llm_calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    seconds_per_stage: dict[str, float] = Field(default_factory=dict)


class Answer(BaseModel):
    question: str
    answer: str
    supported: bool = False
    citations: list[Citation] = Field(default_factory=list)
    retrieved: list[Citation] = Field(
        default_factory=list,
        description="evidence gathered but not cited, best first: the sub-queries' rankings interleaved",
    )
    graph_paths: list[str] = Field(default_factory=list)
    claims: list[CitedClaim] = Field(default_factory=list)
    sub_queries: list[SubQuery] = Field(default_factory=list)
    trace: list[TraceEvent] = Field(default_factory=list)
    usage: AnswerUsage = Field(default_factory=AnswerUsage)
    answered_by: str = NO_LLM
    stop_reason: str = ""
    notes: list[str] = Field(
        default_factory=list, description="what limited the answer, e.g. 'graph channel unavailable (...)'"
    )
    thread_id: str | None = None

    @computed_field(  # type: ignore[prop-decorator]
        description="the answer with inline [n] markers after its claims; [unverified] marks a claim "
        "the verifier did not support"
    )
    @property
    def marked_answer(self) -> str:
        from pagehop.agents.citations import render_marked

        return render_marked(self.answer, self.claims)


class Turn(BaseModel):
    """One finished exchange of a conversation thread; follow-ups resolve against these."""

    question: str
    resolved_question: str
    answer: str


class Retrieval(BaseModel):
    """What one parallel retrieve step found for one sub-query (before evidence ids exist)."""

    sub_query_id: str
    evidence: list[Evidence]
    notes: list[str] = Field(default_factory=list, description="a channel that failed, e.g. the graph")


# -- LangGraph channels --------------------------------------------------------------


def accumulate(old: list[Any] | None, new: list[Any] | None) -> list[Any]:
    """Reducer: append; ``None`` resets (each new question starts an empty list)."""
    if new is None:
        return []
    return [*(old or []), *new]


class AgentState(TypedDict, total=False):
    question: str
    resolved_question: str
    history: list[Turn]
    sub_queries: list[SubQuery]
    ready: list[str]
    retrieved: Annotated[list[Retrieval], accumulate]
    evidence: list[Evidence]
    draft: Draft | None
    verdict: Verdict | None
    round: int
    budget: Budget
    trace: Annotated[list[TraceEvent], accumulate]
    answer: Answer | None
    stop_reason: str


STATE_MODELS: tuple[type[BaseModel], ...] = (
    Fact,
    SubQuery,
    Evidence,
    Claim,
    Draft,
    Verdict,
    Budget,
    TraceEvent,
    Citation,
    CitedClaim,
    AnswerUsage,
    Answer,
    Turn,
    Retrieval,
)
