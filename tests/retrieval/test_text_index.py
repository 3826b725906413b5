"""The hybrid text channel with the real MiniLM embedder and BM25: ranking, deletes, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagehop.retrieval.base import TextIndex
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.schema import Chunk
from pagehop.testing.chunks import make_chunk


def chunk(doc_id: str, page: int, text: str, seq: int = 0) -> Chunk:
    return make_chunk(doc_id, page, text, seq=seq, title=f"Title of {doc_id}")


CORPUS = [
    chunk("zoo", 1, "Giraffes are the tallest land animals; they feed on acacia leaves in the savanna."),
    chunk("zoo", 2, "Penguins cannot fly, but they are excellent swimmers in cold Antarctic water."),
    chunk("fin", 1, "Net revenue for fiscal 2023 was 43.5 billion dollars, down six percent."),
    chunk("fin", 4, "The company repurchased shares under its buyback authorization XK-7731."),
    chunk("geo", 3, "Mount Kilimanjaro is a dormant volcano in Tanzania and the highest peak in Africa."),
]


@pytest.fixture(scope="module")
def index() -> HybridTextIndex:
    built = HybridTextIndex(None, device="cpu")
    built.add(CORPUS)
    return built


def test_it_is_a_text_index(index: HybridTextIndex) -> None:
    assert isinstance(index, TextIndex)
    assert len(index) == len(CORPUS) and index.doc_ids() == {"zoo", "fin", "geo"}


def test_hybrid_hit_points_to_document_and_page(index: HybridTextIndex) -> None:
    hits = index.search("Which animal eats leaves of acacia trees?", k=3)
    assert (hits[0].doc_id, hits[0].page, hits[0].chunk_id) == ("zoo", 1, "zoo:1:0")
    assert hits[0].channel == "text" and hits[0].title == "Title of zoo" and "Giraffes" in hits[0].text
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score


def test_dense_finds_paraphrases_and_bm25_finds_rare_tokens(index: HybridTextIndex) -> None:
    # No shared content word with the penguin chunk: only the embedding can connect them.
    assert index.search_dense("birds that swim but never take to the air", k=1)[0].chunk_id == "zoo:2:0"
    assert "zoo:2:0" not in [h.chunk_id for h in index.search_bm25("birds that swim but never take to the air", k=5)]
    # An identifier the embedder has never seen: BM25 matches it exactly, and fusion keeps it on top.
    assert [h.chunk_id for h in index.search_bm25("XK-7731", k=5)] == ["fin:4:0"]
    assert index.search("authorization XK-7731", k=1)[0].chunk_id == "fin:4:0"


def test_bm25_matches_plurals_and_ignores_stopwords(index: HybridTextIndex) -> None:
    assert index.search_bm25("giraffe", k=1)[0].chunk_id == "zoo:1:0"
    assert index.search_bm25("the and of", k=5) == []
    assert index.search("", k=5) == []


def test_delete_and_replace_by_document(tmp_path: Path) -> None:
    index = HybridTextIndex(None, device="cpu")
    index.add(CORPUS)
    index.delete_document("zoo")
    assert index.doc_ids() == {"fin", "geo"}
    assert all(h.doc_id != "zoo" for h in index.search("giraffes penguins animals", k=10))
    index.add([chunk("geo", 3, "Kilimanjaro has three volcanic cones: Kibo, Mawenzi and Shira.")])
    assert len(index) == 3  # same chunk id: replaced, not duplicated
    assert "Kibo" in index.search("Kilimanjaro", k=1)[0].text


def test_saved_index_reloads_identically(tmp_path: Path, index: HybridTextIndex) -> None:
    saved = HybridTextIndex(tmp_path / "text_index", device="cpu")
    saved.add(CORPUS)
    saved.save()
    reloaded = HybridTextIndex(tmp_path / "text_index", device="cpu")
    assert len(reloaded) == len(CORPUS)
    query = "highest mountain in Africa"
    assert [(h.chunk_id, round(h.score, 6)) for h in reloaded.search(query, k=3)] == [
        (h.chunk_id, round(h.score, 6)) for h in saved.search(query, k=3)
    ]
    # Vectors from another embedder are useless: the index starts empty (the workspace re-adds).
    assert len(HybridTextIndex(tmp_path / "text_index", embedder="/some/other-model", device="cpu")) == 0


def test_search_restricted_to_documents(index: HybridTextIndex) -> None:
    for search in (index.search, index.search_dense, index.search_bm25):
        hits = search("giraffes volcano revenue", 10, doc_ids={"geo", "fin"})
        assert hits and {h.doc_id for h in hits} <= {"geo", "fin"}
    assert index.search("giraffes", 5, doc_ids=set()) == []


def test_repeated_chunk_texts_are_embedded_once(index: HybridTextIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    footer = "Confidential: for internal use only."
    chunks = [chunk("memo", page, footer) for page in range(1, 6)] + [chunk("memo", 6, "Quarterly sales rose.")]
    chunks.append(chunk("memo", 7, "   "))
    model_inputs: list[str] = []
    embed = index.embed

    def recording(texts: list[str]) -> object:
        model_inputs.extend(texts)
        return embed(texts)

    monkeypatch.setattr(index, "embed", recording)
    vectors = index.embed_chunks(chunks)

    assert sorted(model_inputs) == sorted([footer, "Quarterly sales rose."])
    assert all((vectors[i] == vectors[0]).all() for i in range(5)) and abs(float(vectors[0] @ vectors[0]) - 1) < 1e-5
    assert float(vectors[5] @ vectors[0]) < 0.9 and not vectors[6].any()  # a blank chunk stays a zero row
