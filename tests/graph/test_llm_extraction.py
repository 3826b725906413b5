"""LLM knowledge-graph extraction through the real client and a scripted model server on loopback:
typed entities and triples with evidence and provenance, batching, the per-chunk-content cache, the
spaCy fallback, the extractor setting, and switching to the real Neo4j without a new LLM call."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pagehop.config import Settings
from pagehop.graph.extraction import (
    PROMPT_VERSION,
    ExtractionCache,
    LLMExtractor,
    SpacyExtractor,
)
from pagehop.graph.indexer import EXTRACTION_CACHE_FILE, extractor_name, make_graph_indexer
from pagehop.graph.neo4j_store import Neo4jGraphStore
from pagehop.graph.networkx_store import NetworkxGraphStore
from pagehop.graph.resolution import entity_id_for
from pagehop.llm.openai_compat import OpenAICompatibleLLM
from pagehop.schema import Chunk
from pagehop.testing.chunks import make_chunk
from pagehop.testing.openai_server import Reply, ScriptedOpenAIServer

from .conftest import fresh_neo4j_store

PASSAGE = re.compile(r'<evidence id="([^"]+)"[^>]*>\n(.*?)\n</evidence>', re.DOTALL)
STATEMENT = re.compile(r"([A-Z][\w ]+?) is the (mother|director|author) of ([A-Z][\w ]+?)\.")


def chunk(text: str, n: int = 1, doc_id: str = "d1", title: str = "") -> Chunk:
    return make_chunk(doc_id, n, text, title=title, chunk_id=f"{doc_id}-c{n}")


class ReadingModel:
    """Extracts "X is the R of Y." statements from the passage it was sent, as a faithful model would."""

    def __init__(self, delay_s: float = 0.0, broken: str | None = None) -> None:
        self.delay_s = delay_s
        self.broken = broken  # passages containing this word get a reply that violates the schema
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.delay_s)
            (_, text), *_ = PASSAGE.findall(body["messages"][-1]["content"])
            text = html.unescape(text)
            if self.broken and self.broken in text:
                return Reply(content='{"entities": [{"name": "", "type": "ALIEN"}]}')
            entities, relations = [], []
            for source, relation, target in STATEMENT.findall(text):
                entities += [{"name": source, "type": "PERSON"}, {"name": target, "type": "WORK"}]
                sentence = next(s for s in re.split(r"(?<=\.) ", text) if source in s and target in s)
                relations.append(
                    {"source": source, "type": f"{relation.upper()}_OF", "target": target, "evidence": sentence}
                )
            reply = {"entities": entities, "relations": relations}
            return Reply(content=json.dumps(reply), prompt_tokens=100, completion_tokens=20)
        finally:
            with self.lock:
                self.in_flight -= 1


def client(server: ScriptedOpenAIServer, **kw: Any) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "scripted", timeout_s=5, max_retries=0, retry_backoff_s=0.01, **kw)


CORPUS = [
    chunk(f"Person {i} is the author of Book {i}. It sold well.", n=i, doc_id=f"doc{i % 3}") for i in range(1, 13)
]


def test_typed_entities_and_triples_keep_evidence_and_provenance(tmp_path: Path) -> None:
    text = "Gisela Elsner is the mother of Oskar Roehler. She wrote novels."
    with ScriptedOpenAIServer(ReadingModel()) as server:
        extractor = LLMExtractor(client(server), cache=ExtractionCache(tmp_path / "cache.sqlite"))
        graph = extractor.extract([chunk(text, n=4, doc_id="roehler", title="Oskar Roehler")])
    request = server.requests[0]
    schema = request["response_format"]["json_schema"]["schema"]
    assert "PERSON" in json.dumps(schema) and request["response_format"]["type"] == "json_schema"
    types = {e.name: e.type for e in graph.entities}
    assert types["Gisela Elsner"] == "PERSON" and types["Oskar Roehler"] in {"WORK", "TITLE"}
    (mother,) = [r for r in graph.relations if r.type == "MOTHER_OF"]
    assert mother.description == "Gisela Elsner is the mother of Oskar Roehler."
    assert (mother.doc_id, mother.page, mother.chunk_id) == ("roehler", 4, "roehler-c4")
    assert {(m.doc_id, m.chunk_id) for m in graph.mentions} == {("roehler", "roehler-c4")}
    assert (extractor.stats.llm_calls, extractor.stats.tokens, extractor.stats.cached) == (1, 120, 0)


def test_batches_run_concurrently_and_the_cache_makes_a_second_pass_free(tmp_path: Path) -> None:
    model = ReadingModel(delay_s=0.05)
    with ScriptedOpenAIServer(model) as server:
        first = LLMExtractor(client(server), cache=ExtractionCache(tmp_path / "c.sqlite"), max_concurrency=4)
        graph = first.extract(CORPUS)
        assert len(server.requests) == len(CORPUS)
        # A new extractor on the same cache file (a re-ingest, another process): no call at all.
        again = LLMExtractor(client(server), cache=ExtractionCache(tmp_path / "c.sqlite"), max_concurrency=4)
        regraph = again.extract(CORPUS)
    assert 1 < model.peak <= 4
    assert len(server.requests) == len(CORPUS)
    assert (again.stats.llm_calls, again.stats.cached) == (0, len(CORPUS))
    assert regraph.relations == graph.relations and regraph.entities == graph.entities
    assert len({r.chunk_id for r in graph.relations if r.type == "AUTHOR_OF"}) == len(CORPUS)


def test_the_cache_is_keyed_by_content_and_prompt_version(tmp_path: Path) -> None:
    same_text = chunk("Anna Berg is the author of Cold Rivers.", n=1, doc_id="a")
    elsewhere = chunk("Anna Berg is the author of Cold Rivers.", n=7, doc_id="b")
    with ScriptedOpenAIServer(ReadingModel()) as server:
        extractor = LLMExtractor(client(server), cache=ExtractionCache(tmp_path / "c.sqlite"))
        extractor.extract([same_text])
        graph = extractor.extract([elsewhere])  # the same content in another document: no call
    assert len(server.requests) == 1
    assert {(r.doc_id, r.page) for r in graph.relations if r.type == "AUTHOR_OF"} == {("b", 7)}
    key = ExtractionCache.key(same_text, 6000)
    assert key == ExtractionCache.key(elsewhere, 6000) and len(PROMPT_VERSION) == 12
    assert key != ExtractionCache.key(chunk("Anna Berg is the author of Warm Rivers."), 6000)


def test_a_failed_chunk_falls_back_to_spacy_and_is_counted(nlp: Any, tmp_path: Path) -> None:
    chunks = [
        chunk("Anna Berg is the author of Cold Rivers.", n=1),
        chunk("Broken reply here: Marie Curie worked in Paris with Pierre Curie.", n=2),
    ]
    with ScriptedOpenAIServer(ReadingModel(broken="Broken")) as server:
        cache = ExtractionCache(tmp_path / "c.sqlite")
        extractor = LLMExtractor(client(server, schema_retries=1), fallback=SpacyExtractor(nlp), cache=cache)
        graph = extractor.extract(chunks)
    assert len(server.requests) == 3  # one call for the good chunk, the bad one asked twice
    assert extractor.stats.fallbacks == 1 and len(cache) == 1  # the failure is not cached
    names = {e.name for e in graph.entities}
    assert {"Anna Berg", "Marie Curie", "Paris"} <= names  # spaCy took the second chunk
    assert "1 fell back to spaCy" in extractor.stats.summary()


def llm_settings(workspace: Path, base_url: str | None, extractor: str = "auto") -> Settings:
    llm = {"base_url": base_url, "model": "scripted", "retry_backoff_s": 0.01} if base_url else {}
    return Settings(workspace=workspace, llm=llm, graph={"extractor": extractor})


def test_the_extractor_setting() -> None:
    assert extractor_name(llm_settings(Path("w"), None)) == "spacy"
    assert extractor_name(llm_settings(Path("w"), "http://127.0.0.1:9/v1")) == "llm"
    assert extractor_name(llm_settings(Path("w"), "http://127.0.0.1:9/v1", "spacy")) == "spacy"
    with pytest.raises(ValueError, match=r"graph.extractor is 'llm' but no LLM is configured"):
        llm_settings(Path("w"), None, "llm")


@pytest.mark.neo4j
def test_switching_to_neo4j_reuses_the_workspace_cache(neo4j_conn: dict[str, str], tmp_path: Path) -> None:
    with ScriptedOpenAIServer(ReadingModel()) as server:
        settings = llm_settings(tmp_path / "ws", server.base_url)
        embedded = NetworkxGraphStore(tmp_path / "graph.pkl")
        indexer = make_graph_indexer(settings, embedded)
        assert isinstance(indexer.extractor, LLMExtractor)
        indexer.add_chunks(CORPUS[:4])
        assert len(server.requests) == 4
        assert indexer.take_summary() == (
            "graph extraction (LLM): 4 chunks, 0 from the cache, 4 LLM calls, 480 tokens, 0 fell back to spaCy"
        )
        assert (tmp_path / "ws" / EXTRACTION_CACHE_FILE).is_file()
        neo: Neo4jGraphStore = fresh_neo4j_store(neo4j_conn)
        try:
            make_graph_indexer(settings, neo).add_chunks(CORPUS[:4])
            assert len(server.requests) == 4  # the graph moved to Neo4j without one LLM call
            with neo.driver().session(database=neo.database) as session:
                rows = session.run(
                    f"MATCH (a:{neo.entity_label})-[r:AUTHOR_OF]->(b:{neo.entity_label}) "
                    "RETURN a.name AS a, b.name AS b, r.description AS evidence ORDER BY a"
                ).data()
        finally:
            neo.drop_all()
            neo.close()
    assert len(rows) == 4
    assert rows[0] == {"a": "Person 1", "b": "Book 1", "evidence": "Person 1 is the author of Book 1."}


def test_ingest_reports_llm_extraction_and_a_reingest_costs_no_call(tmp_path: Path) -> None:
    from pagehop.assemble import open_workspace
    from pagehop.ingest.pipeline import delete, ingest

    notes = tmp_path / "notes.md"
    notes.write_text("# Berg\n\nAnna Berg is the author of Cold Rivers. Broken Hills is the author of Nothing.\n")
    with ScriptedOpenAIServer(ReadingModel(broken="Broken")) as server:
        settings = llm_settings(tmp_path / "ws", server.base_url).model_copy(
            update={"models": Settings().models.model_copy(update={"page_encoder": ""})}
        )
        with open_workspace(settings) as workspace:
            report = ingest(workspace, [notes], progress=False)
            assert report.ok, report.summary()
            assert "graph extraction (LLM): 1 chunks, 0 from the cache" in report.summary()
            assert "1 fell back to spaCy" in report.summary()  # the model's reply was invalid twice
            asked = len(server.requests)
            delete(workspace, notes)
            notes.write_text("# Berg\n\nAnna Berg is the author of Cold Rivers.\n")
            report = ingest(workspace, [notes], progress=False)
            assert "1 LLM calls" in report.summary()
            assert workspace.graph_store is not None
            author = entity_id_for("Anna Berg")
            paths = workspace.graph_store.neighbours(author)
            assert any(entity_id_for("Cold Rivers") in p.entity_ids for p in paths)
            delete(workspace, notes)
            report = ingest(workspace, [notes], progress=False)  # the same content again: from the cache
    assert "1 from the cache, 0 LLM calls" in report.summary()
    assert len(server.requests) == asked + 1
