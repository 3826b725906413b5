"""Text2Cypher in the refine stage, against the real Neo4j with a scripted model on loopback:
a counting question answered from the graph and cited, a write attempt refused (the graph is
untouched and the passages answer), a malformed query repaired once with Neo4j's error."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.config import AgentSettings
from pagehop.engine import Pagehop
from pagehop.graph.base import Entity, Mention, Relation
from pagehop.graph.neo4j_store import Neo4jGraphStore
from pagehop.graph.resolution import entity_id_for
from pagehop.graph.text2cypher import Text2CypherTool
from pagehop.llm.openai_compat import OpenAICompatibleLLM
from pagehop.testing.openai_server import Reply, ScriptedOpenAIServer

pytestmark = pytest.mark.neo4j

QUESTION = "How many books did Anna Berg write?"
BOOKS = ["Cold Rivers", "Warm Rivers", "Quiet Hills"]
GRAPH_EVIDENCE = re.compile(r'<evidence id="(E\d+)"[^>]*title="Cypher query"[^>]*>\n(.*?)\n</evidence>', re.DOTALL)
LABEL = re.compile(r"\(:`(\w+Entity)`")


@pytest.fixture()
def books_graph(neo4j_conn: dict[str, str]) -> Iterator[Neo4jGraphStore]:
    store = Neo4jGraphStore(
        neo4j_conn["uri"],
        neo4j_conn["user"],
        neo4j_conn["password"],
        database=neo4j_conn["database"],
        namespace=f"T{uuid.uuid4().hex[:10]}_",
    )
    author = Entity(entity_id=entity_id_for("Anna Berg"), name="Anna Berg", type="PERSON")
    books = [Entity(entity_id=entity_id_for(b), name=b, type="WORK") for b in BOOKS]
    relations = [
        Relation(
            source_id=author.entity_id,
            target_id=book.entity_id,
            type="AUTHOR_OF",
            description=f"Anna Berg wrote {book.name}.",
            doc_id="berg-bibliography",
            chunk_id=f"berg-c{page}",
            page=page,
        )
        for page, book in enumerate(books, start=1)
    ]
    mentions = [Mention(entity_id=author.entity_id, doc_id="berg-bibliography", chunk_id="berg-c1", page=1)]
    store.upsert([author, *books], relations, mentions)
    try:
        yield store
    finally:
        store.drop_all()
        store.close()


def user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "\n".join(p["text"] for p in content if p["type"] == "text")


def schema_name(body: dict[str, Any]) -> str:
    return str(body["response_format"]["json_schema"]["name"])


def count_query(label: str) -> str:
    return (
        f"MATCH (a:`{label}`)-[r:`AUTHOR_OF`]->(b:`{label}`) WHERE toLower(a.name) = 'anna berg' "
        "RETURN count(b) AS books, collect(DISTINCT r.ev_docs[0])[..5] AS doc_ids, collect(r.ev_pages[0])[..5] AS pages"
    )


class GraphModel:
    """Plans one sub-query, writes Cypher from ``write_cypher(label, attempt)``, answers from what it reads."""

    def __init__(self, write_cypher: Callable[[str, int], str]) -> None:
        self.write_cypher = write_cypher
        self.plans: list[str] = []  # the text2cypher prompts it received

    def __call__(self, body: dict[str, Any]) -> Reply:
        text, name = user_text(body), schema_name(body)
        if name == "DecomposeReply":
            plan = {"resolved_question": QUESTION, "sub_queries": [{"id": "1", "text": QUESTION}]}
            return Reply(content=json.dumps(plan))
        if name == "CypherPlan":
            self.plans.append(text)
            match = LABEL.search(text)
            assert match is not None, "the live schema names the entity label"
            cypher = self.write_cypher(match.group(1), len(self.plans))
            return Reply(content=json.dumps({"queries": [{"id": "1", "cypher": cypher}]}))
        graph = GRAPH_EVIDENCE.findall(text)
        if name == "RefineReply":
            if not graph:
                return Reply(content=json.dumps({"results": [{"id": "1", "answer": "", "facts": []}]}))
            evidence_id, rows = graph[0]
            count = json.loads(rows.splitlines()[1].replace("&quot;", '"'))["books"]
            facts = [{"evidence_id": evidence_id, "text": f"Anna Berg wrote {count} books"}]
            return Reply(content=json.dumps({"results": [{"id": "1", "answer": str(count), "facts": facts}]}))
        if name == "DraftReply":
            answer = re.search(r"#1: .*? -> answer: (\d+)", text)
            ids = re.findall(r"\[(E\d+)\]", text)
            claims = [{"text": "Anna Berg wrote that many books", "evidence_ids": ids[:1]}] if answer else []
            return Reply(content=json.dumps({"answer": answer.group(1) if answer else "", "claims": claims}))
        if name == "VerifyReply":
            return Reply(content=json.dumps({"supported": True, "missing": []}))
        return Reply(status=400, raw_body=f'{{"error": "unexpected schema {name}"}}')


def ask(model: GraphModel, store: Neo4jGraphStore, retriever: WorkspaceRetriever, tmp_path: Path) -> Any:
    tool = Text2CypherTool.open(store, timeout_s=5, max_rows=20)
    with ScriptedOpenAIServer(model) as server:
        llm = OpenAICompatibleLLM(server.base_url, "scripted", timeout_s=5, max_retries=0)
        settings = AgentSettings(max_rounds=1)
        with Pagehop(retriever, llm, settings, threads_path=tmp_path / "t.sqlite", graph_tool=tool) as engine:
            return engine.ask(QUESTION)


def test_a_counting_question_is_answered_from_the_graph_and_cited(
    books_graph: Neo4jGraphStore, wiki_retriever: WorkspaceRetriever, tmp_path: Path
) -> None:
    model = GraphModel(lambda label, _: count_query(label))
    answer = ask(model, books_graph, wiki_retriever, tmp_path)
    assert answer.answer == "3"
    # The prompt carried the live schema: the relation type present, with its count.
    assert "`AUTHOR_OF` (3)" in model.plans[0] and "ev_docs" in model.plans[0]
    (cited,) = [c for c in answer.citations if c.graph_path]
    assert cited.graph_path.startswith("cypher: MATCH") and cited.doc_id == "berg-bibliography"
    assert cited.page in {1, 2, 3}  # a page of one of the rows (collect() keeps no order)
    assert answer.graph_paths == [cited.graph_path]
    assert len(model.plans) == 1  # it worked the first time: no repair call


def test_a_write_attempt_is_refused_and_the_passages_answer(
    books_graph: Neo4jGraphStore, wiki_retriever: WorkspaceRetriever, tmp_path: Path
) -> None:
    writes = ["MATCH (n) DETACH DELETE n", "MERGE (x:Hacked {name: 'x'}) RETURN x"]
    model = GraphModel(lambda _label, attempt: writes[attempt - 1])
    answer = ask(model, books_graph, wiki_retriever, tmp_path)
    assert len(model.plans) == 2  # one repair, then the passages
    assert "DETACH is not allowed" in model.plans[1] or "DELETE is not allowed" in model.plans[1]
    assert not any(c.graph_path and c.graph_path.startswith("cypher:") for c in answer.citations)
    with books_graph.driver().session(database=books_graph.database) as session:
        left = session.run(f"MATCH (n:`{books_graph.entity_label}`) RETURN count(n) AS n").single()
        hacked = session.run("MATCH (n:Hacked) RETURN count(n) AS n").single()
    assert left is not None and left["n"] == 4
    assert hacked is not None and hacked["n"] == 0


def test_a_malformed_query_is_repaired_once_with_the_error(
    books_graph: Neo4jGraphStore, wiki_retriever: WorkspaceRetriever, tmp_path: Path
) -> None:
    def write(label: str, attempt: int) -> str:
        return f"MATCH (a:`{label}`)-[r:`AUTHOR_OF`]->(b RETURN count(b)" if attempt == 1 else count_query(label)

    model = GraphModel(write)
    answer = ask(model, books_graph, wiki_retriever, tmp_path)
    assert len(model.plans) == 2
    assert "Neo4j refused the query" in model.plans[1]
    assert answer.answer == "3"
    assert any(c.graph_path and c.graph_path.startswith("cypher:") for c in answer.citations)
