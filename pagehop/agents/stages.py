"""The six GraphSearch stages (arXiv 2509.22009), one function each, with typed inputs and outputs.

decompose -> ground -> refine (retrieve per sub-query in parallel, then compress) -> draft
-> verify -> expand (only when the verdict fails) -> ground ... Each stage asks the LLM
through a `Meter` (which enforces the budget and records cost) and falls back to the no-LLM
policy when there is no LLM, the budget is spent or the LLM fails. To keep LLM calls few,
all sub-queries that are ready at once are refined in ONE call, grounding only substitutes
answers (no call), and verification is skipped when the draft cites nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pagehop import prompts
from pagehop.agents.citations import cite_claims
from pagehop.agents.policy import NoLLMPolicy
from pagehop.agents.retriever import Retriever
from pagehop.agents.state import (
    NO_LLM,
    PLACEHOLDER,
    Answer,
    AnswerUsage,
    Budget,
    Citation,
    Claim,
    Draft,
    Evidence,
    Fact,
    Retrieval,
    Stage,
    SubQuery,
    TraceEvent,
    Turn,
    Verdict,
)
from pagehop.config import AgentSettings
from pagehop.graph.base import GRAPH_UNAVAILABLE, GraphUnavailable
from pagehop.graph.cypher import CypherError, CypherRefused
from pagehop.graph.text2cypher import CypherPlan, GraphQueryTool, provenance, render_rows
from pagehop.llm.base import LLM, LLMError, T, Usage
from pagehop.retrieval.fusion import page_key, reciprocal_rank_fusion

# -- what the LLM returns at each stage (kept small: every field costs decoding time) ------


class PlannedSubQuery(BaseModel):
    id: str
    text: str
    triple: str = ""


class DecomposeReply(BaseModel):
    resolved_question: str
    sub_queries: list[PlannedSubQuery]


class SubQueryAnswer(BaseModel):
    id: str
    answer: str
    facts: list[Fact] = Field(default_factory=list)


class RefineReply(BaseModel):
    results: list[SubQueryAnswer]


class DraftReply(BaseModel):
    answer: str
    claims: list[Claim] = Field(default_factory=list)


class VerifyReply(BaseModel):
    supported: bool
    missing: list[str] = Field(default_factory=list)


class ExpandReply(BaseModel):
    sub_queries: list[PlannedSubQuery]


# -- dependencies and metering ------------------------------------------------------------


@dataclass
class AgentDeps:
    retriever: Retriever
    llm: LLM | None
    settings: AgentSettings
    policy: NoLLMPolicy
    graph_tool: GraphQueryTool | None = None  # Text2Cypher on Neo4j; None: passages and graph search only


@dataclass
class Meter:
    """One stage's LLM access: refuses past the budget, records cost and who answered."""

    deps: AgentDeps
    budget: Budget
    stage: Stage
    usage: Usage = field(default_factory=Usage)
    answered_by: str = NO_LLM
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def ask(self, schema: type[T], images: Sequence[Path] = (), prompt: str | None = None, **values: Any) -> T | None:
        """The LLM's reply in ``schema`` from the stage's prompt (or the named one), or None: no LLM,
        budget spent or the LLM failed (the caller then uses the policy; ``notes`` says why)."""
        llm = self.deps.llm
        if llm is None:
            return None
        if not self.budget.llm_allowed(time.time()):
            self.notes.append("LLM budget spent")
            return None
        cost = Usage()
        try:
            reply = llm.complete_json(
                prompts.messages(prompt or self.stage, **values),
                schema,
                images=images,
                usage=cost,
                deadline=self.budget.started_at + self.budget.max_seconds,
            )
        except LLMError as exc:
            self.notes.append(f"LLM failed: {str(exc)[:200]}")
            return None
        finally:  # failed attempts that reached the model cost tokens too
            self.usage.add(cost)
            self.budget = self.budget.model_copy(
                update={"llm_calls": self.budget.llm_calls + cost.calls, "tokens": self.budget.tokens + cost.tokens}
            )
        self.answered_by = llm.name
        return reply

    def event(self, round_: int, summary: str, **data: Any) -> TraceEvent:
        who = self.answered_by if self.answered_by != NO_LLM or not self.notes else f"{NO_LLM} ({self.notes[-1]})"
        return TraceEvent(
            stage=self.stage,
            round=round_,
            summary=summary,
            answered_by=who,
            llm_calls=self.usage.calls,
            tokens=self.usage.tokens,
            seconds=round(time.perf_counter() - self.started, 4),
            data=data,
        )


# -- decompose ----------------------------------------------------------------------------


def decompose(meter: Meter, question: str, history: list[Turn]) -> tuple[str, list[SubQuery]]:
    """(resolved question, sub-queries); follow-ups are resolved against the conversation."""
    limit = meter.deps.settings.max_sub_queries
    reply = meter.ask(
        DecomposeReply,
        question=prompts.escape(question),
        conversation=_conversation(history),
        max_sub_queries=limit,
    )
    if reply is not None and reply.sub_queries:
        resolved = reply.resolved_question.strip() or question
        return resolved, _renumber(reply.sub_queries, start=1, limit=limit, existing=[])
    resolved = meter.deps.policy.resolve_followup(question, history)
    return resolved, meter.deps.policy.decompose(resolved, limit)


def _renumber(planned: list[PlannedSubQuery], *, start: int, limit: int, existing: list[SubQuery]) -> list[SubQuery]:
    """Give LLM-planned sub-queries fresh ids; placeholders may only point at earlier sub-queries."""
    known = {sq.id for sq in existing}
    mapping: dict[str, str] = {}
    out: list[SubQuery] = []
    asked = {(sq.grounded or sq.text).strip().lower() for sq in existing}
    for item in planned:
        if len(out) >= limit or not item.text.strip() or item.text.strip().lower() in asked:
            continue
        new_id = str(start + len(out))
        mapping[item.id.lstrip("#")] = new_id
        text = _repoint(item.text, mapping, known, new_id)
        out.append(SubQuery(id=new_id, text=text, depends_on=SubQuery.dependencies(text), triple=item.triple))
        asked.add(text.lower())
    return out


def _repoint(text: str, mapping: dict[str, str], known: set[str], new_id: str) -> str:
    """Rewrite ``#n`` to the renumbered ids; drop references to unknown or later sub-queries."""

    def one(match: re.Match[str]) -> str:
        reference = match.group(1)
        target = mapping.get(reference)
        if target is not None and int(target) < int(new_id):  # an earlier sub-query of this plan
            return f"#{target}"
        return f"#{reference}" if reference in known else ""

    return PLACEHOLDER.sub(one, text).strip()


# -- ground -------------------------------------------------------------------------------


def ground(sub_queries: list[SubQuery]) -> tuple[list[SubQuery], list[str]]:
    """Fill placeholders with the answers found so far; return the sub-queries ready to run.

    A sub-query is ready when everything it depends on is answered or given up on (then the
    placeholder becomes the unanswered sub-query's own text, which still searches well).
    """
    by_id = {sq.id: sq for sq in sub_queries}
    out: list[SubQuery] = []
    ready: list[str] = []
    for sq in sub_queries:
        deps = [by_id[d] for d in sq.depends_on if d in by_id]
        if sq.status != "pending" or any(d.status == "pending" for d in deps):
            out.append(sq)
            continue

        def fill(match: re.Match[str]) -> str:
            dep = by_id.get(match.group(1))
            if dep is None:
                return ""
            return dep.answer if dep.status == "answered" else (dep.grounded or dep.text)

        out.append(sq.model_copy(update={"grounded": PLACEHOLDER.sub(fill, sq.text).strip()}))
        ready.append(sq.id)
    if not ready:  # pending sub-queries waiting on each other can never run: give up on them
        out = [sq.model_copy(update={"status": "unanswerable"}) if sq.status == "pending" else sq for sq in out]
    return out, ready


# -- refine -------------------------------------------------------------------------------


def retrieve(retriever: Retriever, settings: AgentSettings, sub_query: SubQuery) -> Retrieval:
    """Both channels for one grounded sub-query; evidence ids are assigned later, in order."""
    query = sub_query.grounded or sub_query.text
    text_hits = [
        Evidence(
            id="",
            sub_query_id=sub_query.id,
            channel=hit.channel,
            doc_id=hit.doc_id,
            page=hit.page,
            chunk_id=hit.chunk_id,
            title=hit.title,
            text=hit.text,
            score=hit.score,
        )
        for hit in retriever.search(query, settings.hits_per_query)
    ]
    notes: list[str] = []
    try:
        facts = retriever.graph_search(query, settings.graph_facts_per_query)
    except GraphUnavailable as exc:  # the text and page channels still answer; the answer says what is missing
        facts, notes = [], [str(exc)]
    graph_facts = [
        Evidence(
            id="",
            sub_query_id=sub_query.id,
            channel="graph",
            doc_id=fact.doc_id,
            page=fact.page,
            chunk_id=fact.chunk_id,
            title=fact.title,
            text=fact.text,
            score=fact.score,
            graph_path=fact.path.render() if fact.path else None,
        )
        for fact in facts
    ]
    # Graph facts are evidence of their own (a path, not the page's text), so they fuse by their key
    # and the two rankings alternate: the graph's second-hop passages do not sit behind every text hit.
    fused = reciprocal_rank_fusion([text_hits, graph_facts], key=lambda item: item.key)
    return Retrieval(sub_query_id=sub_query.id, evidence=[item for item, _ in fused], notes=notes)


def number_evidence(
    known: list[Evidence], retrieved: list[Retrieval]
) -> tuple[list[Evidence], dict[str, list[Evidence]]]:
    """Give new evidence ids E1, E2, ...; evidence seen before keeps its id. Also group by sub-query."""
    all_evidence = list(known)
    by_key = {e.key: e for e in all_evidence}
    per_query: dict[str, list[Evidence]] = {}
    for retrieval in sorted(retrieved, key=lambda r: int(r.sub_query_id) if r.sub_query_id.isdigit() else 0):
        for item in retrieval.evidence:
            existing = by_key.get(item.key)
            if existing is None:
                existing = item.model_copy(update={"id": f"E{len(all_evidence) + 1}"})
                all_evidence.append(existing)
                by_key[item.key] = existing
            per_query.setdefault(retrieval.sub_query_id, []).append(existing)
    return all_evidence, per_query


def query_graph(meter: Meter, sub_queries: list[SubQuery], ready: list[str]) -> list[Retrieval]:
    """Text2Cypher: the LLM may answer ready sub-queries with one read-only Cypher query each.

    A query that is refused, fails or returns no rows goes back once with the error; what still
    fails is dropped (the sub-query keeps its passages). Rows become graph evidence whose path is
    the query and whose provenance is the documents and pages the rows name. A server that does
    not answer ends Text2Cypher for this step: one Retrieval with no evidence carries the note.
    """
    tool = meter.deps.graph_tool
    active = [sq for sq in sub_queries if sq.id in ready]
    if tool is None or meter.deps.llm is None or not active:
        return []
    try:
        schema = tool.schema()
    except GraphUnavailable as exc:
        return [_graph_down(active[0].id, exc)]
    except (CypherError, CypherRefused) as exc:
        meter.notes.append(f"graph schema unavailable: {str(exc)[:200]}")
        return []
    found: dict[str, Evidence] = {}
    feedback = ""
    for _attempt in range(2):  # the first plan, then one repair of what failed
        plan = meter.ask(
            CypherPlan,
            prompt="text2cypher",
            graph_schema=schema,
            sub_queries=_quote_sub_queries(active),
            feedback=feedback,
        )
        if plan is None:
            break
        failures: list[str] = []
        for item in plan.queries:
            sq_id = item.id.lstrip("#")
            if sq_id not in ready or sq_id in found or not item.cypher.strip():
                continue
            try:
                result = tool.run(item.cypher)
            except GraphUnavailable as exc:
                return [*_as_retrievals(found), _graph_down(sq_id, exc)]
            except (CypherRefused, CypherError) as exc:
                failures.append(f"#{sq_id}: {prompts.escape(item.cypher)}\n  failed: {prompts.escape(str(exc)[:300])}")
                continue
            if not result.rows:
                failures.append(f"#{sq_id}: {prompts.escape(item.cypher)}\n  returned no rows")
                continue
            doc_id, page = provenance(result.rows)
            found[sq_id] = Evidence(
                id="",
                sub_query_id=sq_id,
                channel="graph",
                doc_id=doc_id or "knowledge graph",
                page=page,
                title="Cypher query",
                text=render_rows(item.cypher, result),
                graph_path=f"cypher: {' '.join(item.cypher.split())}",
            )
        if not failures:
            break
        meter.notes.append(f"Cypher failed for {len(failures)} sub-queries")
        active = [sq for sq in active if sq.id not in found]
        feedback = 'Your earlier queries failed; fix them (or answer ""):\n' + "\n".join(failures)
    return _as_retrievals(found)


def _as_retrievals(found: dict[str, Evidence]) -> list[Retrieval]:
    return [Retrieval(sub_query_id=sq_id, evidence=[item]) for sq_id, item in found.items()]


def _graph_down(sub_query_id: str, exc: GraphUnavailable) -> Retrieval:
    return Retrieval(sub_query_id=sub_query_id, evidence=[], notes=[f"{GRAPH_UNAVAILABLE} (Cypher: {str(exc)[:120]})"])


def refine(
    meter: Meter,
    sub_queries: list[SubQuery],
    ready: list[str],
    per_query: dict[str, list[Evidence]],
    round_: int,
) -> list[SubQuery]:
    """Compress each ready sub-query's evidence into facts and a short answer (one LLM call)."""
    active = [sq for sq in sub_queries if sq.id in ready]
    shown = _dedupe([e for sq in active for e in per_query.get(sq.id, [])])
    reply = (
        meter.ask(
            RefineReply,
            images=_page_images(meter.deps, shown),
            sub_queries=_quote_sub_queries(active),
            documents=_quote(shown, meter.deps.settings.evidence_chars),
        )
        if shown  # nothing retrieved: nothing to read, no call
        else None
    )
    answers = {r.id.lstrip("#"): r for r in reply.results} if reply is not None else {}
    valid_ids = {e.id for e in shown}
    out: list[SubQuery] = []
    for sq in sub_queries:
        if sq.id not in ready:
            out.append(sq)
            continue
        if reply is not None:
            result = answers.get(sq.id)
            answer = result.answer.strip() if result else ""
            facts = [f for f in result.facts if f.evidence_id in valid_ids] if result else []
        else:
            answer, facts = meter.deps.policy.answer(sq.grounded or sq.text, per_query.get(sq.id, []))
        status = "answered" if answer else "unanswerable"
        out.append(sq.model_copy(update={"answer": answer, "facts": facts, "status": status, "round": round_}))
    return out


# -- draft, verify, expand ------------------------------------------------------------------


def draft(
    meter: Meter, question: str, history: list[Turn], sub_queries: list[SubQuery], evidence: list[Evidence]
) -> Draft:
    shown = _evidence_for_draft(sub_queries, evidence)
    if not shown:  # no evidence at all: there is nothing an LLM could draft from
        return meter.deps.policy.draft(question, sub_queries, evidence)
    reply = meter.ask(
        DraftReply,
        images=_page_images(meter.deps, shown),
        question=prompts.escape(question),
        conversation=_conversation(history),
        sub_queries=_quote_sub_queries(sub_queries),
        documents=_quote(shown, meter.deps.settings.evidence_chars),
    )
    if reply is None:
        return meter.deps.policy.draft(question, sub_queries, evidence)
    valid = {e.id for e in evidence}
    claims = [
        Claim(text=c.text, evidence_ids=[i for i in c.evidence_ids if i in valid]) for c in reply.claims if c.text
    ]
    return Draft(answer=reply.answer.strip(), claims=claims, answered_by=meter.answered_by)


def verify(
    meter: Meter, question: str, draft_: Draft, sub_queries: list[SubQuery], evidence: list[Evidence]
) -> Verdict:
    cited = {i for claim in draft_.claims for i in claim.evidence_ids}
    if not draft_.answer or not cited:  # nothing to check: no LLM call needed
        missing = [sq.grounded or sq.text for sq in sub_queries if sq.status != "answered"] or [question]
        return Verdict(supported=False, missing=missing, answered_by=NO_LLM)
    reply = meter.ask(
        VerifyReply,
        question=prompts.escape(question),
        answer=prompts.escape(draft_.answer),
        claims="\n".join(f"- {prompts.escape(c.text)} [{', '.join(c.evidence_ids)}]" for c in draft_.claims),
        documents=_quote([e for e in evidence if e.id in cited], meter.deps.settings.evidence_chars),
    )
    if reply is None:
        return meter.deps.policy.verify(question, draft_, sub_queries, evidence)
    # Follow the verdict as stated (the reference code expands on "yes", contrary to its prompt).
    return Verdict(supported=reply.supported, missing=reply.missing, answered_by=meter.answered_by)


def expand(
    meter: Meter,
    question: str,
    verdict: Verdict,
    sub_queries: list[SubQuery],
    evidence: list[Evidence],
    round_: int,
) -> list[SubQuery]:
    """Sub-queries for what the verdict says is missing (all sub-queries, old and new)."""
    settings = meter.deps.settings
    room = settings.max_sub_queries * settings.max_rounds - len(sub_queries)
    next_id = max((int(sq.id) for sq in sub_queries if sq.id.isdigit()), default=0) + 1
    reply = meter.ask(
        ExpandReply,
        question=prompts.escape(question),
        missing=prompts.escape("; ".join(verdict.missing) or "(not stated)"),
        sub_queries=_quote_sub_queries(sub_queries),
        next_id=next_id,
        max_new=max(1, min(settings.max_sub_queries, room)),
    )
    if reply is None:
        return meter.deps.policy.expand(question, sub_queries, evidence, round_)
    new = _renumber(reply.sub_queries, start=next_id, limit=max(0, room), existing=sub_queries)
    return [*sub_queries, *(sq.model_copy(update={"round": round_}) for sq in new)]


# -- the final answer -------------------------------------------------------------------------

MAX_RETRIEVED_LISTED = 20  # uncited evidence an answer lists, for retrieval metrics


def compose_answer(
    question: str,
    draft_: Draft,
    verdict: Verdict | None,
    sub_queries: list[SubQuery],
    evidence: list[Evidence],
    trace: list[TraceEvent],
    stop_reason: str,
) -> Answer:
    by_id = {e.id: e for e in evidence}
    cited_ids = [i for claim in draft_.claims for i in claim.evidence_ids] or [
        f.evidence_id for sq in sub_queries for f in sq.facts
    ]
    citations: list[Citation] = []
    seen: set[tuple[str, int | None, str | None]] = set()
    for evidence_id in cited_ids:
        item = by_id.get(evidence_id)
        if item is None or (item.doc_id, item.page, item.graph_path) in seen:
            continue
        seen.add((item.doc_id, item.page, item.graph_path))
        citations.append(_citation(item))
    by_query: dict[str, list[Evidence]] = {}
    cited = set(cited_ids)
    for item in evidence:
        if item.id not in cited:
            by_query.setdefault(item.sub_query_id, []).append(item)
    # The sub-queries' rankings fused per page. Evidence is held once, under the sub-query that found it
    # first, so a page gains from several sub-queries only through different evidence of it (another chunk,
    # a graph path), not by being found again.
    fused = reciprocal_rank_fusion(list(by_query.values()), key=page_key)
    retrieved = [_citation(item) for item, _ in fused[:MAX_RETRIEVED_LISTED]]
    per_stage: dict[str, float] = {}
    for event in trace:
        per_stage[event.stage] = round(per_stage.get(event.stage, 0.0) + event.seconds, 4)
    usage = AnswerUsage(
        llm_calls=sum(e.llm_calls for e in trace),
        tokens=sum(e.tokens for e in trace),
        seconds=round(sum(per_stage.values()), 4),
        seconds_per_stage=per_stage,
    )
    supported = bool(verdict and verdict.supported)
    return Answer(
        question=question,
        answer=draft_.answer,
        supported=supported,
        citations=citations,
        retrieved=retrieved,
        graph_paths=[c.graph_path for c in citations if c.graph_path],
        claims=cite_claims(draft_.answer, draft_.claims, evidence, citations, supported),
        sub_queries=sub_queries,
        trace=trace,
        usage=usage,
        answered_by=draft_.answered_by,
        stop_reason=stop_reason,
        notes=list(dict.fromkeys(note for event in trace for note in event.data.get("notes", []))),
    )


def _citation(item: Evidence) -> Citation:
    return Citation(
        doc_id=item.doc_id,
        page=item.page,
        chunk_id=item.chunk_id,
        title=item.title,
        text=item.text[:300],
        evidence_id=item.id,
        graph_path=item.graph_path,
    )


# -- prompt material ---------------------------------------------------------------------------


def _quote(evidence: list[Evidence], max_chars: int) -> str:
    return prompts.quote_documents(
        (
            e.id,
            {"for": f"#{e.sub_query_id}", "title": e.title, "doc": e.doc_id, "page": e.page, "path": e.graph_path},
            e.text[:max_chars],
        )
        for e in evidence
    )


def _quote_sub_queries(sub_queries: list[SubQuery]) -> str:
    lines = ["<sub_queries>"]
    for sq in sub_queries:
        line = f"#{sq.id}: {prompts.escape(sq.grounded or sq.text)}"
        if sq.status == "answered":
            facts = "; ".join(f"{prompts.escape(f.text)} [{f.evidence_id}]" for f in sq.facts)
            line += f" -> answer: {prompts.escape(sq.answer)}" + (f" (facts: {facts})" if facts else "")
        elif sq.status == "unanswerable":
            line += " -> not found"
        lines.append(line)
    lines.append("</sub_queries>")
    return "\n".join(lines)


def _conversation(history: list[Turn]) -> str:
    return prompts.quote_conversation((turn.resolved_question, turn.answer) for turn in history[-3:])


def _dedupe(evidence: list[Evidence]) -> list[Evidence]:
    return list({e.id: e for e in evidence}.values())  # dicts keep first-insertion order


def _evidence_for_draft(sub_queries: list[SubQuery], evidence: list[Evidence]) -> list[Evidence]:
    """Evidence behind the facts, plus each sub-query's top two hits (the draft may need context)."""
    by_id = {e.id: e for e in evidence}
    chosen = [by_id[f.evidence_id] for sq in sub_queries for f in sq.facts if f.evidence_id in by_id]
    for sq in sub_queries:
        chosen += [e for e in evidence if e.sub_query_id == sq.id][:2]
    return _dedupe(chosen)


def _page_images(deps: AgentDeps, evidence: list[Evidence]) -> list[Path]:
    """Rendered images of the top evidence pages, for a VLM to read (none for a text-only LLM)."""
    if deps.llm is None or deps.settings.page_images == 0:
        return []
    images: list[Path] = []
    seen: set[tuple[str, int]] = set()
    for item in evidence:
        if item.page is None or (item.doc_id, item.page) in seen:
            continue
        seen.add((item.doc_id, item.page))
        path = deps.retriever.page_image(item.doc_id, item.page)
        if path is not None:
            images.append(path)
        if len(images) >= deps.settings.page_images:
            break
    return images
