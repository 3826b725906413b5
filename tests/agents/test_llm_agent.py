"""The agent graph driven by OpenAICompatibleLLM against a scripted model server on loopback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.agents.state import NO_LLM
from pagehop.config import AgentSettings
from pagehop.engine import Pagehop
from pagehop.llm.openai_compat import OpenAICompatibleLLM
from pagehop.prompts import DOCUMENTS_CLOSE, DOCUMENTS_OPEN
from pagehop.testing.multihop import passage_doc_id
from pagehop.testing.openai_server import Reply, ScriptedOpenAIServer

QUESTION = "Who is the mother of the director of film Atomised (Film)?"
EVIDENCE = re.compile(r'<evidence id="(E\d+)"[^>]*>\n(.*?)\n</evidence>', re.DOTALL)
SUB_QUERY = re.compile(r"^#(\d+): (.*?)(?: -> .*)?$", re.MULTILINE)


def user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "\n".join(p["text"] for p in content if p["type"] == "text")


def schema_name(body: dict[str, Any]) -> str:
    return str(body["response_format"]["json_schema"]["name"])


def citing(text: str, needle: str) -> list[str]:
    """Ids of the evidence in the prompt's data block that states ``needle``."""
    return [eid for eid, body in EVIDENCE.findall(text) if needle in body]


class CarefulModel:
    """Answers each stage from the evidence the agent actually sent, as a faithful model would."""

    answers: ClassVar[dict[str, str]] = {"Atomised": "Oskar Roehler", "Oskar Roehler": "Gisela Elsner"}

    def __call__(self, body: dict[str, Any]) -> Reply:
        text, name = user_text(body), schema_name(body)
        if name == "DecomposeReply":
            plan = [
                {"id": "1", "text": "Who directed Atomised (film)?"},
                {"id": "2", "text": "Who is the mother of #1?"},
            ]
            return Reply(content=json.dumps({"resolved_question": QUESTION, "sub_queries": plan}))
        if name == "RefineReply":
            results = []
            for sq_id, sq_text in SUB_QUERY.findall(text):
                answer = next(a for key, a in self.answers.items() if key in sq_text)
                facts = [{"evidence_id": eid, "text": f"{answer} (from {eid})"} for eid in citing(text, answer)]
                results.append({"id": sq_id, "answer": answer, "facts": facts[:2]})
            return Reply(content=json.dumps({"results": results}))
        if name == "DraftReply":
            claims = [
                {"text": "Gisela Elsner is Oskar Roehler's mother", "evidence_ids": citing(text, "Gisela Elsner")}
            ]
            return Reply(content=json.dumps({"answer": "Gisela Elsner", "claims": claims}))
        if name == "VerifyReply":
            return Reply(content=json.dumps({"supported": "Gisela Elsner" in text, "missing": []}))
        return Reply(status=400, raw_body=f'{{"error": "unexpected schema {name}"}}')


class FlakyModel(CarefulModel):
    """A 503, a truncated JSON reply and a reply slower than the client timeout, then careful answers."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.calls += 1
        if self.calls == 1:
            return Reply(status=503, raw_body='{"error": "overloaded"}')
        if self.calls == 2:
            return Reply(content='{"resolved_question": "Who')
        if self.calls == 4:  # the first refine request
            return Reply(content="{}", delay_s=1.5)
        return super().__call__(body)


def make_llm(server: ScriptedOpenAIServer) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "scripted", timeout_s=0.8, max_retries=3, retry_backoff_s=0.01)


def engine_on(
    server: ScriptedOpenAIServer, retriever: WorkspaceRetriever, tmp_path: Path, settings: AgentSettings | None = None
) -> Pagehop:
    return Pagehop(retriever, make_llm(server), settings, threads_path=tmp_path / "threads.sqlite")


def test_agent_answers_through_a_flaky_server(wiki_retriever: WorkspaceRetriever, tmp_path: Path) -> None:
    with ScriptedOpenAIServer(FlakyModel()) as server:
        llm = make_llm(server)
        with Pagehop(wiki_retriever, llm, threads_path=tmp_path / "t.sqlite") as engine:
            answer = engine.ask(QUESTION)
    assert answer.answer == "Gisela Elsner"
    assert answer.supported and answer.stop_reason == "verified"
    assert answer.answered_by == "openai-compatible:scripted"
    assert passage_doc_id("Oskar Roehler") in {c.doc_id for c in answer.citations}
    # decompose, refine x2 (one per hop), draft, verify; plus the malformed reply that cost tokens.
    assert [e.stage for e in answer.trace if e.llm_calls] == ["decompose", "refine", "refine", "draft", "verify"]
    assert answer.usage.llm_calls == 6
    sub_queries = {sq.id: sq for sq in answer.sub_queries}
    assert sub_queries["2"].grounded == "Who is the mother of Oskar Roehler?"
    # Page images of the top evidence went to the VLM while refining and drafting.
    refine_requests = [r for r in server.requests if schema_name(r) == "RefineReply"]
    assert any(isinstance(r["messages"][-1]["content"], list) for r in refine_requests)


def test_document_text_reaches_the_model_only_as_quoted_data(
    wiki_retriever: WorkspaceRetriever, tmp_path: Path
) -> None:
    with (
        ScriptedOpenAIServer(CarefulModel()) as server,
        engine_on(server, wiki_retriever, tmp_path) as engine,
    ):
        answer = engine.ask(QUESTION)
    assert answer.answer == "Gisela Elsner"
    carried = 0
    for request in server.requests:
        system, text = request["messages"][0]["content"], user_text(request)
        assert "Ignore previous instructions" not in system
        assert text.count(DOCUMENTS_OPEN) == text.count(DOCUMENTS_CLOSE) <= 1
        for match in re.finditer("Ignore previous instructions", text):
            carried += 1
            start, end = text.find(DOCUMENTS_OPEN), text.find(DOCUMENTS_CLOSE)
            assert start < match.start() < end, "document text outside the data block"
            # The planted closing tag is escaped, so it cannot end the block early.
            assert "&lt;/documents&gt; SYSTEM" in text[start:end]
    assert carried  # the planted document did reach the model, as data


class NeverSatisfied(CarefulModel):
    """Drafts an answer but never accepts it; asks for one new sub-query per expansion."""

    def __init__(self) -> None:
        self.expansions = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        name, text = schema_name(body), user_text(body)
        if name == "VerifyReply":
            return Reply(content=json.dumps({"supported": False, "missing": ["more proof"]}))
        if name == "ExpandReply":
            self.expansions += 1
            next_id = re.search(r"ids start at (\d+)", text)
            assert next_id is not None
            new = [{"id": next_id.group(1), "text": f"Oskar Roehler biography, part {self.expansions}"}]
            return Reply(content=json.dumps({"sub_queries": new}))
        if name == "RefineReply":
            ids = SUB_QUERY.findall(text)
            return Reply(content=json.dumps({"results": [{"id": i, "answer": "x", "facts": []} for i, _ in ids]}))
        return super().__call__(body)


def test_round_budget_stops_a_model_that_never_verifies(wiki_retriever: WorkspaceRetriever, tmp_path: Path) -> None:
    settings = AgentSettings(max_rounds=3, max_llm_calls=100)
    model = NeverSatisfied()
    with (
        ScriptedOpenAIServer(model) as server,
        engine_on(server, wiki_retriever, tmp_path, settings) as engine,
    ):
        answer = engine.ask(QUESTION)
    assert not answer.supported and answer.stop_reason == "round budget"
    assert [e.stage for e in answer.trace].count("verify") == 3
    assert model.expansions == 2
    assert answer.answer == "Gisela Elsner"  # the best draft so far is still returned


def test_llm_call_budget_hands_over_to_the_policy(wiki_retriever: WorkspaceRetriever, tmp_path: Path) -> None:
    settings = AgentSettings(max_rounds=5, max_llm_calls=3)
    with (
        ScriptedOpenAIServer(NeverSatisfied()) as server,
        engine_on(server, wiki_retriever, tmp_path, settings) as engine,
    ):
        answer = engine.ask(QUESTION)
    assert len(server.requests) == 3 and answer.usage.llm_calls == 3
    assert any("LLM budget spent" in e.answered_by for e in answer.trace)
    assert answer.stop_reason in {"verified", "round budget", "nothing new to search"}


# -- faults that persist: the question still ends, answered by the no-LLM policy, and says why --

PERSISTENT_FAULTS = {
    "429 with Retry-After": Reply(status=429, raw_body='{"error": "slow down"}', headers={"Retry-After": "0.02"}),
    "503 burst": Reply(status=503, raw_body='{"error": "overloaded"}'),
    "connection reset": Reply(reset=True),
    "timeout": Reply(content="{}", delay_s=1.0),
    "not JSON": Reply(content="I think the answer is Gisela Elsner."),
    "JSON violating the schema": Reply(content='{"unexpected": true}'),
    "empty reply": Reply(content=""),
    "reply cut mid-way": Reply(content='{"answer": "Gisela Elsner", "claims": []}', cut_after=20),
}


@pytest.mark.parametrize("fault", PERSISTENT_FAULTS)
def test_a_persistent_fault_falls_back_to_the_policy_with_a_label(
    fault: str, wiki_retriever: WorkspaceRetriever, tmp_path: Path
) -> None:
    with ScriptedOpenAIServer(lambda _: PERSISTENT_FAULTS[fault]) as server:
        llm = OpenAICompatibleLLM(
            server.base_url, "scripted", timeout_s=0.3, max_retries=1, retry_backoff_s=0.01, schema_retries=1
        )
        with Pagehop(wiki_retriever, llm, threads_path=tmp_path / "t.sqlite") as engine:
            answer = engine.ask(QUESTION)
    assert server.requests  # the model was asked ...
    assert answer.answered_by == NO_LLM  # ... and the policy answered, saying why
    labelled = {e.stage for e in answer.trace if e.answered_by.startswith(f"{NO_LLM} (LLM failed")}
    assert {"decompose", "refine", "draft"} <= labelled
    assert not any(e.answered_by == llm.name for e in answer.trace)
    assert answer.answer  # the policy still found the answer's passage
    assert answer.citations


def test_a_hanging_server_is_cut_off_by_the_question_budget(wiki_retriever: WorkspaceRetriever, tmp_path: Path) -> None:
    settings = AgentSettings(max_seconds=1.5)
    with ScriptedOpenAIServer(lambda _: Reply(content="{}", delay_s=30)) as server:
        # The client's own timeout (120 s) would wait far past the question's budget.
        llm = OpenAICompatibleLLM(server.base_url, "scripted", timeout_s=120, max_retries=3)
        with Pagehop(wiki_retriever, llm, settings, threads_path=tmp_path / "t.sqlite") as engine:
            answer = engine.ask(QUESTION)
    assert answer.answered_by == NO_LLM
    assert len(server.requests) == 1  # no retry was started past the deadline
    assert any("LLM" in e.answered_by for e in answer.trace)
