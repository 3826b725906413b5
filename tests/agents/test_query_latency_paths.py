"""The no-LLM agent's fast paths give the same results as the slow ones: a round's queries embedded in one
call, evidence parses cached, the title index refreshed by a cheap catalog signature."""

from __future__ import annotations

from pathlib import Path

import spacy
import torch

from pagehop.agents.policy import DocCache
from pagehop.agents.retriever import QueryBatching, WorkspaceRetriever
from pagehop.config import Settings
from pagehop.eval.engine_adapter import ChannelFilter
from pagehop.ingest import delete, ingest
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk
from pagehop.workspace import Workspace

TEXTS = {
    "d1": "Kestrel Optics makes lenses for lighthouses on the northern coast.",
    "d2": "Quayside Automation builds cranes that unload ships at night.",
    "d3": "Harbor Lane Robotics was founded by Ilinca Dorne in a former fish market.",
}


def _index() -> HybridTextIndex:
    index = HybridTextIndex(None, device="cpu")
    index.add(
        [
            Chunk(chunk_id=f"c-{d}", doc_id=d, page_start=1, page_end=1, char_start=0, char_end=len(t), text=t, title=d)
            for d, t in TEXTS.items()
        ]
    )
    return index


def test_prepared_queries_rank_exactly_as_unprepared_ones() -> None:
    queries = ["who founded the robotics company", "lenses for lighthouses", "unloading ships"]
    cold = _index()
    expected = [[(h.doc_id, round(h.score, 6)) for h in cold.search(q, 3)] for q in queries]
    warm = _index()
    warm.prepare_queries(queries)  # one embedder call; a mix-up of vectors would reorder the hits
    assert [[(h.doc_id, round(h.score, 6)) for h in warm.search(q, 3)] for q in queries] == expected
    assert [hits[0][0] for hits in expected] == ["d3", "d1", "d2"]


def test_a_few_queries_embed_on_one_thread_and_the_setting_comes_back() -> None:
    index = _index()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        index.embed(["a short query"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_retrievers_pass_the_round_on_to_the_text_index() -> None:
    index = _index()
    retriever = WorkspaceRetriever(text_index=index)
    wrapped = ChannelFilter(retriever, "documents")
    assert isinstance(wrapped, QueryBatching) and isinstance(index, QueryBatching)
    wrapped.prepare_queries(["lenses for lighthouses"])
    assert [hit.doc_id for hit in wrapped.search("lenses for lighthouses", 1)] == ["d1"]


def test_the_doc_cache_parses_each_text_once_and_drops_the_least_recently_used() -> None:
    nlp = spacy.blank("en")
    cache = DocCache(size=2)
    first, second, again = cache.get_many(nlp, ["alpha beta", "gamma", "alpha beta"])
    assert first is again and first.text == "alpha beta" and second.text == "gamma"
    assert cache.get_many(nlp, ["gamma"])[0] is second  # a hit: not parsed again
    cache.get_many(nlp, ["delta"])  # over the size: "alpha beta" (least recently used) goes
    assert cache.get_many(nlp, ["gamma"])[0] is second
    assert cache.get_many(nlp, ["alpha beta"])[0] is not first


def test_the_title_index_is_rebuilt_only_when_the_catalog_signature_changes() -> None:
    catalog = [("a", "Kestrel Optics")]
    version = [1]
    listed = []

    def names() -> list[tuple[str, str]]:
        listed.append(1)
        return list(catalog)

    retriever = WorkspaceRetriever(names=names, names_version=lambda: version[0])
    for _ in range(3):
        assert [hit.doc_id for hit in retriever.named_documents("Who bought Kestrel Optics?", 5)] == ["a"]
    assert len(listed) == 1  # the names are listed once, not on every search
    catalog[0] = ("c", "Harbor Lane Robotics")
    version[0] += 1
    assert retriever.named_documents("Who bought Kestrel Optics?", 5) == []
    assert [hit.doc_id for hit in retriever.named_documents("Who founded Harbor Lane Robotics?", 5)] == ["c"]


def test_the_catalog_signature_follows_adds_deletes_and_a_delete_plus_an_add(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in (("kestrel.md", TEXTS["d1"]), ("quayside.md", TEXTS["d2"])):
        (docs / name).write_text(f"# {name}\n\n{text}\n")
    settings = Settings(workspace=tmp_path / "ws", ingest={"dpi": 50, "thumbnail_px": 64})
    with Workspace.open(settings) as workspace:
        empty = workspace.ready_signature()
        ingest(workspace, [docs], ocr="never", progress=False)
        two = workspace.ready_signature()
        assert two != empty and two == workspace.ready_signature()
        delete(workspace, docs / "kestrel.md")
        one = workspace.ready_signature()
        (docs / "harbor.md").write_text(f"# harbor\n\n{TEXTS['d3']}\n")
        ingest(workspace, [docs / "harbor.md"], ocr="never", progress=False)
        swapped = workspace.ready_signature()  # two documents again, but not the same two
        assert len({empty, two, one, swapped}) == 4 and swapped[0] == two[0] == 2
        retriever = WorkspaceRetriever.from_workspace(workspace)
        assert [h.title for h in retriever.named_documents("Who founded Harbor?", 5)] == ["harbor"]


def test_the_catalog_signature_sees_what_another_process_committed(tmp_path: Path) -> None:
    # The signature is re-read only when the catalog changed; a commit by another connection (an ingest
    # in another process) must count as a change, not only this connection's own commits.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kestrel.md").write_text(f"# kestrel\n\n{TEXTS['d1']}\n")
    settings = Settings(workspace=tmp_path / "ws", ingest={"dpi": 50, "thumbnail_px": 64})
    with Workspace.open(settings) as server:
        empty = server.ready_signature()
        assert server.ready_signature() == empty
        with Workspace.open(settings) as other:
            ingest(other, [docs], ocr="never", progress=False)
        assert server.ready_signature()[0] == 1
        retriever = WorkspaceRetriever.from_workspace(server)
        assert [h.title for h in retriever.named_documents("Who founded Kestrel?", 5)] == ["kestrel"]
