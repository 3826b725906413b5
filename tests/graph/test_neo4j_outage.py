"""Neo4j stopped mid-run, on a private server this test starts, stops and resumes on the same data.

Questions keep answering from the text and page channels and say "graph channel unavailable";
`pagehop doctor` names the URI and the fix; an ingest fails its document with nothing partial left
in the catalog, the text index, the page index or the graph; once Neo4j is back, the same ingest
succeeds. The shared server of the other tests is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pagehop.agents import stages
from pagehop.agents.policy import NoLLMPolicy
from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.agents.stages import AgentDeps, Meter
from pagehop.agents.state import Budget, SubQuery
from pagehop.assemble import open_engine, open_workspace
from pagehop.config import Neo4jSettings, Settings
from pagehop.engine import format_answer
from pagehop.graph.base import GRAPH_UNAVAILABLE, GraphUnavailable
from pagehop.graph.cypher import CypherError
from pagehop.graph.neo4j_store import Neo4jGraphStore
from pagehop.graph.text2cypher import Text2CypherTool
from pagehop.ingest.files import inspect_file
from pagehop.ingest.pipeline import ingest
from pagehop.llm.openai_compat import OpenAICompatibleLLM
from pagehop.server.openai_api import render_content
from pagehop.server.ui import answer_html
from pagehop.testing.tiny_models import tiny_colmodernvbert_path
from pagehop.workspace import Workspace

pytestmark = pytest.mark.neo4j

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "neo4j-local"
JARS = REPO_ROOT / ".cache" / "neo4j" / "lib"  # where `scripts/neo4j-local fetch` puts them (CI fetches once)
QUESTION = "Where was Marta Quell born?"
COOL_DOWN_S = 2.0  # graph.outage_cool_down_s here: short, so the server's return is noticed at once
FIRST = "# Marta Quell\n\nMarta Quell is a painter who was born in Lisbon. Marta Quell painted The Blue Harbour.\n"
LATER = "# Tomas Brenner\n\nTomas Brenner is a sculptor who lives in Porto. Tomas Brenner carved The Stone Gate.\n"


class PrivateNeo4j:
    """A Neo4j server of this test's own, through scripts/neo4j-local with NEO4J_LOCAL_DIR pointing here."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        (root / "lib").symlink_to(JARS.resolve(), target_is_directory=True)
        self.env = {**os.environ, "NEO4J_LOCAL_DIR": str(root)}

    def run(self, verb: str) -> dict[str, str]:
        done = subprocess.run(
            [str(SCRIPT), verb], capture_output=True, text=True, env=self.env, timeout=300, check=False
        )
        assert done.returncode == 0, f"neo4j-local {verb} failed:\n{done.stderr[-3000:]}"
        return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)

    def settings(self, conn: dict[str, str], workspace: Path) -> Settings:
        return Settings(
            workspace=workspace,
            graph_store="neo4j",
            neo4j=Neo4jSettings(
                uri=conn["PAGEHOP_NEO4J__URI"],
                user=conn["PAGEHOP_NEO4J__USER"],
                password=conn["PAGEHOP_NEO4J__PASSWORD"],
                database=conn["PAGEHOP_NEO4J__DATABASE"],
            ),
            models=Settings().models.model_copy(update={"page_encoder": str(tiny_colmodernvbert_path())}),
            graph={"outage_cool_down_s": COOL_DOWN_S},
        )


@pytest.fixture()
def private_neo4j(tmp_path: Path) -> Iterator[PrivateNeo4j]:
    missing = [
        what for what, ok in (("Neo4j jars", (JARS / ".complete").is_file()), ("java", shutil.which("java"))) if not ok
    ]
    if missing:
        message = f"no {' or '.join(missing)} for a private Neo4j ({JARS}): run `scripts/neo4j-local fetch`"
        if os.environ.get("PAGEHOP_REQUIRE_NEO4J") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = PrivateNeo4j(tmp_path / "neo4j")
    try:
        yield server
    finally:
        server.run("stop")  # only this test's server: its pid file lives under its own NEO4J_LOCAL_DIR


def _chunks_in_graph(workspace: Workspace, doc_id: str) -> int:
    store = workspace.graph_store
    assert isinstance(store, Neo4jGraphStore)
    records, _, _ = store.driver().execute_query(
        f"MATCH (c:`{store.chunk_label}`) WHERE c.doc_id = $doc_id RETURN count(c) AS n",
        doc_id=doc_id,
        database_=store.database,
    )
    return int(records[0]["n"])


def _page_index_docs(workspace: Workspace) -> set[str]:
    assert workspace.page_index is not None and workspace.page_encoder is not None
    query = workspace.page_encoder.encode_queries(["painter sculptor"])[0]
    return {doc_id for doc_id, _, _ in workspace.page_index.search(query, 100)}


def test_questions_and_ingest_survive_a_neo4j_outage(private_neo4j: PrivateNeo4j, tmp_path: Path) -> None:
    conn = private_neo4j.run("start")
    settings = private_neo4j.settings(conn, tmp_path / "ws")
    first, later = tmp_path / "quell.md", tmp_path / "brenner.md"
    first.write_text(FIRST)
    later.write_text(LATER)
    first_id = inspect_file(first, settings.ingest.max_file_mb).doc_id
    later_id = inspect_file(later, settings.ingest.max_file_mb).doc_id

    with open_workspace(settings) as workspace, open_engine(workspace) as engine:
        report = ingest(workspace, [first], progress=False)
        assert report.ok, report.summary()
        assert _chunks_in_graph(workspace, first_id) > 0
        healthy = engine.ask(QUESTION)
        assert healthy.notes == []
        store = workspace.graph_store
        assert isinstance(store, Neo4jGraphStore)
        cypher = Text2CypherTool.open(store, timeout_s=5, max_rows=10)

        private_neo4j.run("stop")

        # A question: the text and page channels answer, and the answer says the graph was missing.
        answer = engine.ask(QUESTION)
        print(f"question during the outage: {answer.usage.seconds:.1f} s of stages")  # for docs/reliability.md
        assert any(note.startswith(GRAPH_UNAVAILABLE) for note in answer.notes), answer.notes
        assert first_id in {c.doc_id for c in [*answer.citations, *answer.retrieved]}
        assert "Lisbon" in " ".join(c.text for c in [*answer.citations, *answer.retrieved])
        assert f"Note: {GRAPH_UNAVAILABLE}" in format_answer(answer)  # the CLI's text
        assert f"Note: {GRAPH_UNAVAILABLE}" in render_content(answer)  # /v1's content
        assert f"Note: {GRAPH_UNAVAILABLE}" in answer_html(workspace, answer)  # the chat UI's message
        # The circuit breaker: one call waited on the dead server, the later ones were skipped or probed.
        breaker = store.breaker
        assert breaker.is_open and breaker.trips == 1
        breaker.cool_down_s = 600.0  # inside the cool-down from here on, however slow this machine is
        probes = breaker.probes
        second = engine.ask(QUESTION)
        assert any(note.startswith(GRAPH_UNAVAILABLE) for note in second.notes), second.notes
        assert "CircuitOpen" in " ".join(second.notes)
        assert breaker.trips == 1 and breaker.probes == probes and breaker.skipped > 0  # nothing reached the server
        print(f"second question during the outage: {second.usage.seconds:.1f} s of stages")
        # Text2Cypher's door: a stopped server is "unavailable", which the refine stage drops quietly.
        with pytest.raises(GraphUnavailable) as raised:
            cypher.schema()
        assert isinstance(raised.value, CypherError)  # older callers that catch CypherError still do
        never_asked = OpenAICompatibleLLM("http://127.0.0.1:9/v1", "never-asked", timeout_s=1, max_retries=0)
        deps = AgentDeps(WorkspaceRetriever(), never_asked, settings.agent, NoLLMPolicy(), graph_tool=cypher)
        budget = Budget(max_rounds=1, max_llm_calls=5, max_tokens=10_000, max_seconds=60, started_at=time.time())
        meter = Meter(deps, budget, "refine")
        [dropped] = stages.query_graph(meter, [SubQuery(id="1", text=QUESTION)], ["1"])
        assert dropped.evidence == [] and dropped.notes[0].startswith(GRAPH_UNAVAILABLE)
        assert meter.usage.calls == 0  # the schema read failed first: no LLM call spent on a dead graph

        # `pagehop doctor` names the URI and the fix.
        doctor = subprocess.run(
            [sys.executable, "-m", "pagehop", "--workspace", str(tmp_path / "ws"), "doctor"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "COLUMNS": "400", **{k: v for k, v in conn.items()}, "PAGEHOP_GRAPH_STORE": "neo4j"},
            check=False,
        )
        assert doctor.returncode == 1
        out = " ".join((doctor.stdout + doctor.stderr).split())
        assert f"Neo4j at {conn['PAGEHOP_NEO4J__URI']} does not answer" in out, out
        assert "scripts/neo4j-local start" in out and "graph_store = 'networkx'" in out

        # An ingest fails the document cleanly: nothing of it in any store.
        report = ingest(workspace, [later], progress=False)
        assert not report.ok and [path for path, _ in report.failed] == [str(later.resolve())]
        assert GRAPH_UNAVAILABLE in report.failed[0][1] and conn["PAGEHOP_NEO4J__URI"] in report.failed[0][1]
        assert later_id not in workspace.ready_doc_ids()
        assert all(hit.doc_id != later_id for hit in workspace.text_index.search("Tomas Brenner sculptor Porto", 50))
        assert later_id not in _page_index_docs(workspace)
        assert first_id in workspace.ready_doc_ids()  # what was stored before is untouched
        again = ingest(workspace, [later], progress=False)  # still down: the leftover row waits, no crash
        assert [path for path, _ in again.failed] == [str(later.resolve())]

        assert private_neo4j.run("resume") == conn  # same data, port and password
        breaker.cool_down_s = COOL_DOWN_S
        time.sleep(COOL_DOWN_S)  # past the cool-down: the next call probes, finds the server and goes through
        assert _chunks_in_graph(workspace, later_id) == 0
        assert _chunks_in_graph(workspace, first_id) > 0

        # Neo4j is back: the same ingest succeeds, and questions use the graph again.
        report = ingest(workspace, [later], progress=False)
        assert report.ok, report.summary()
        assert [d.doc_id for d in report.ingested] == [later_id]
        assert _chunks_in_graph(workspace, later_id) > 0
        assert set(workspace.ready_doc_ids()) == {first_id, later_id}
        assert workspace.recover() == []  # no leftover row of the failed attempt
        assert engine.ask(QUESTION).notes == []
        assert not breaker.is_open
