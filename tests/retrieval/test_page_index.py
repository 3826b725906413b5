"""LocalPageIndex: exact MaxSim, persistence, tombstones, compaction, crash safety, first stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pagehop.retrieval import page_index as page_index_module
from pagehop.retrieval.base import PageIndex
from pagehop.retrieval.page_index import LocalPageIndex, PageIndexError, summary_vectors

DIM = 16


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)


def _corpus(seed: int = 0, docs: int = 4, pages: int = 5) -> dict[tuple[str, int], np.ndarray]:
    rng = np.random.default_rng(seed)
    return {(f"doc{d}", p): _unit(rng, int(rng.integers(1, 30))) for d in range(docs) for p in range(1, pages + 1)}


def _brute_force(corpus: dict[tuple[str, int], np.ndarray], query: np.ndarray) -> list[tuple[str, int, float]]:
    scored = [
        (doc, page, float((v.astype(np.float32) @ query.T).max(axis=0).sum())) for (doc, page), v in corpus.items()
    ]
    return sorted(scored, key=lambda hit: -hit[2])


def _filled(folder: Path, corpus: dict[tuple[str, int], np.ndarray], **kwargs) -> LocalPageIndex:
    index = LocalPageIndex(folder, dim=DIM, **kwargs)
    index.add_many([(doc, page, v) for (doc, page), v in corpus.items()])
    return index


def _assert_same_hits(got: list[tuple[str, int, float]], expected: list[tuple[str, int, float]]) -> None:
    assert [(d, p) for d, p, _ in got] == [(d, p) for d, p, _ in expected]
    np.testing.assert_allclose([s for *_, s in got], [s for *_, s in expected], rtol=1e-5, atol=1e-5)


def test_search_is_exact_maxsim(tmp_path: Path) -> None:
    corpus = _corpus()
    index = _filled(tmp_path, corpus)
    assert isinstance(index, PageIndex)
    assert len(index) == len(corpus)
    query = _unit(np.random.default_rng(1), 7).astype(np.float32)
    _assert_same_hits(index.search(query, k=5), _brute_force(corpus, query)[:5])
    _assert_same_hits(index.search(query, k=1000), _brute_force(corpus, query))


def test_blocks_and_segments_do_not_change_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = _corpus(seed=2, docs=6, pages=8)
    monkeypatch.setattr(page_index_module, "_BLOCK_VECTORS", 40)  # many small blocks
    index = _filled(tmp_path, corpus, max_segment_vectors=100)  # many segments
    assert index.stats()["segments"] > 3
    query = _unit(np.random.default_rng(3), 5).astype(np.float32)
    _assert_same_hits(index.search(query, k=20), _brute_force(corpus, query)[:20])


def test_reopen_gives_the_same_results(tmp_path: Path) -> None:
    corpus = _corpus()
    index = _filled(tmp_path, corpus)
    index.add("late", 1, corpus[("doc0", 1)])  # a second commit into the same segment
    query = _unit(np.random.default_rng(4), 6).astype(np.float32)
    before = index.search(query, k=10)
    reopened = LocalPageIndex(tmp_path, dim=DIM)
    assert len(reopened) == len(index)
    assert reopened.search(query, k=10) == before
    np.testing.assert_array_equal(reopened.get_vectors("doc2", 3), corpus[("doc2", 3)])
    with pytest.raises(PageIndexError, match="32-d"):
        LocalPageIndex(tmp_path, dim=32)


def test_adding_a_stored_page_replaces_it(tmp_path: Path) -> None:
    corpus = _corpus()
    index = _filled(tmp_path, corpus)
    replacement = _unit(np.random.default_rng(5), 3)
    index.add("doc1", 2, replacement)
    corpus[("doc1", 2)] = replacement
    assert len(index) == len(corpus)
    np.testing.assert_array_equal(index.get_vectors("doc1", 2), replacement)
    query = _unit(np.random.default_rng(6), 4).astype(np.float32)
    _assert_same_hits(index.search(query, k=len(corpus)), _brute_force(corpus, query))
    _assert_same_hits(LocalPageIndex(tmp_path, dim=DIM).search(query, k=len(corpus)), _brute_force(corpus, query))


def test_delete_document_tombstones_then_compacts(tmp_path: Path) -> None:
    corpus = _corpus(docs=5)
    index = _filled(tmp_path, corpus, compact_threshold=0.3)
    query = _unit(np.random.default_rng(7), 5).astype(np.float32)

    index.delete_document("doc0")  # 20% dead: tombstones only
    del_corpus = {key: v for key, v in corpus.items() if key[0] != "doc0"}
    assert len(index) == len(del_corpus)
    assert index.dead_fraction() == pytest.approx(0.2)
    _assert_same_hits(index.search(query, k=100), _brute_force(del_corpus, query))
    _assert_same_hits(LocalPageIndex(tmp_path, dim=DIM).search(query, k=100), _brute_force(del_corpus, query))
    old_files = {p.name for p in tmp_path.glob("seg-*")}

    index.delete_document("doc1")  # 40% dead: compaction rewrites the live pages
    del_corpus = {key: v for key, v in del_corpus.items() if key[0] != "doc1"}
    assert index.dead_fraction() == 0.0
    assert not old_files & {p.name for p in tmp_path.glob("seg-*")}, "old segments are removed"
    _assert_same_hits(index.search(query, k=100), _brute_force(del_corpus, query))
    reopened = LocalPageIndex(tmp_path, dim=DIM)
    assert len(reopened) == len(del_corpus)
    _assert_same_hits(reopened.search(query, k=100), _brute_force(del_corpus, query))

    index.delete_document("no-such-doc")  # a no-op, not an error
    assert len(index) == len(del_corpus)


def test_a_crash_mid_append_leaves_only_complete_pages(tmp_path: Path) -> None:
    corpus = _corpus()
    index = _filled(tmp_path, corpus)
    query = _unit(np.random.default_rng(8), 5).astype(np.float32)
    expected = index.search(query, k=100)
    # A writer died after writing part of a page and before committing the manifest.
    for path in tmp_path.glob("seg-*"):
        with open(path, "ab") as handle:
            handle.write(b"\x7f" * 37)
    (tmp_path / ".manifest.json.999.tmp").write_text('{"half": ')
    reopened = LocalPageIndex(tmp_path, dim=DIM)
    assert len(reopened) == len(corpus)
    assert reopened.search(query, k=100) == expected
    # The next append truncates the garbage before writing, so later pages read back intact.
    extra = _unit(np.random.default_rng(9), 4)
    reopened.add("new", 1, extra)
    assert not list(tmp_path.glob(".manifest.json.*.tmp")), "the writer sweeps stale temp manifests"
    corpus[("new", 1)] = extra
    _assert_same_hits(LocalPageIndex(tmp_path, dim=DIM).search(query, k=100), _brute_force(corpus, query))


def test_a_failed_manifest_commit_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = _corpus()
    index = _filled(tmp_path, corpus, compact_threshold=0.2)
    query = _unit(np.random.default_rng(10), 5).astype(np.float32)
    expected = index.search(query, k=100)

    def crash(self: LocalPageIndex) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(LocalPageIndex, "_write_manifest", crash)
    with pytest.raises(OSError):
        index.add("doc0", 1, _unit(np.random.default_rng(11), 3))  # would replace a page
    with pytest.raises(OSError):
        index.compact()
    monkeypatch.undo()
    assert index.search(query, k=100) == expected
    assert LocalPageIndex(tmp_path, dim=DIM).search(query, k=100) == expected


def test_bad_input_is_rejected_and_stores_nothing(tmp_path: Path) -> None:
    index = _filled(tmp_path, _corpus())
    count = len(index)
    good = np.ones((2, DIM), np.float16)
    bad_pages = [
        ("doc", 1, np.ones((2, DIM + 1))),  # wrong dim
        ("doc", 1, np.zeros((0, DIM))),  # no vectors
        ("doc", 1, np.full((2, DIM), np.nan)),  # NaN
        ("doc", 1, np.full((2, DIM), 1e6)),  # overflows float16
        ("doc", 0, good),  # pages are 1-based
        ("", 1, good),
        ("doc", 1, np.ones((2, DIM), np.int32)),
    ]
    for bad in bad_pages:
        with pytest.raises(ValueError):
            index.add_many([("fine", 1, good), bad])
    assert len(index) == count
    assert len(LocalPageIndex(tmp_path, dim=DIM)) == count
    with pytest.raises(ValueError):
        index.search(np.ones((3, DIM + 2)), k=3)
    with pytest.raises(ValueError):
        index.search(np.ones((3, DIM)), k=0)


def test_empty_index_returns_no_hits(tmp_path: Path) -> None:
    index = LocalPageIndex(tmp_path, dim=DIM)
    assert len(index) == 0
    assert index.search(np.ones((2, DIM)), k=5) == []
    assert index.search(np.ones((2, DIM)), k=5, candidates=10) == []


def test_first_stage_rescores_exactly_and_finds_clustered_matches(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    topics = _unit(rng, 200).astype(np.float32)
    corpus = {}
    for d in range(300):  # each page mixes 3 of 200 topics, with token noise
        mix = topics[rng.choice(len(topics), 3, replace=False)]
        v = mix[rng.integers(0, 3, 40)] + 0.2 * rng.normal(size=(40, DIM))
        corpus[(f"d{d}", 1)] = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)
    index = _filled(tmp_path, corpus)
    recalls = []
    for _ in range(10):
        target = corpus[(f"d{rng.integers(300)}", 1)].astype(np.float32)
        query = target[rng.choice(40, 6, replace=False)] + 0.2 * rng.normal(size=(6, DIM))
        exact = index.search(query, k=10)
        approx = index.search(query, k=10, candidates=30)
        exact_scores = {(doc, page): score for doc, page, score in index.search(query, k=len(corpus))}
        for doc, page, score in approx:  # candidates are re-ranked with exact MaxSim
            assert score == pytest.approx(exact_scores[(doc, page)], rel=1e-6)
        recalls.append(len({hit[:2] for hit in exact} & {hit[:2] for hit in approx}) / 10)
        assert index.search(query, k=10, candidates=len(corpus)) == exact
    assert np.mean(recalls) >= 0.8  # 0.91 measured with this seed


def test_summary_vectors_are_the_centroids_of_a_pages_token_groups() -> None:
    rng = np.random.default_rng(13)
    groups = np.eye(4, DIM, dtype=np.float32)  # four orthogonal "regions" on a page
    tokens = np.repeat(groups, 10, axis=0) + 0.05 * rng.normal(size=(40, DIM))
    s = summary_vectors(tokens, 4).astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-3)
    # Each region has a summary close to its own direction.
    assert (s @ groups.T).max(axis=0).min() > 0.98
    np.testing.assert_array_equal(summary_vectors(tokens, 4), summary_vectors(tokens, 4))
    assert summary_vectors(tokens[:1], 4).shape == (4, DIM)  # short pages repeat centroids


def test_manifest_is_plain_json_with_committed_sizes(tmp_path: Path) -> None:
    corpus = _corpus(docs=1, pages=3)
    _filled(tmp_path, corpus)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (segment,) = manifest["segments"]
    assert segment["num_pages"] == 3
    assert segment["num_vectors"] == sum(len(v) for v in corpus.values())
    assert (tmp_path / f"{segment['name']}.vec").stat().st_size == segment["num_vectors"] * DIM * 2


def test_a_second_instance_sees_the_writers_commits_and_compactions(tmp_path: Path) -> None:
    corpus = _corpus(docs=4)
    writer = _filled(tmp_path, corpus, compact_threshold=0.3)
    reader = LocalPageIndex(tmp_path, dim=DIM)  # e.g. the server, while the CLI ingests
    query = _unit(np.random.default_rng(14), 5).astype(np.float32)
    _assert_same_hits(reader.search(query, k=100), _brute_force(corpus, query))

    extra = _unit(np.random.default_rng(15), 6)
    writer.add("new", 1, extra)
    corpus[("new", 1)] = extra
    _assert_same_hits(reader.search(query, k=100), _brute_force(corpus, query))

    writer.delete_document("doc0")
    writer.delete_document("doc1")  # passes the threshold: old segment files are deleted
    corpus = {key: v for key, v in corpus.items() if key[0] not in {"doc0", "doc1"}}
    _assert_same_hits(reader.search(query, k=100), _brute_force(corpus, query))
    assert len(reader) == len(corpus)


def test_open_page_index_follows_settings(tmp_path: Path) -> None:
    from pagehop.config import Settings
    from pagehop.retrieval.page_index import open_page_index
    from pagehop.retrieval.qdrant_index import QdrantPageIndex

    local = open_page_index(Settings(workspace=tmp_path), dim=DIM)
    assert isinstance(local, LocalPageIndex)
    assert local.folder == tmp_path / "page_index"
    qdrant = open_page_index(Settings(workspace=tmp_path, page_index="qdrant"), dim=DIM)
    assert isinstance(qdrant, QdrantPageIndex)
    assert (tmp_path / "qdrant").is_dir()
    qdrant.client.close()


def _clustered(rng: np.random.Generator, pages: int, topics: int = 60) -> dict[tuple[str, int], np.ndarray]:
    """Pages mixing 3 of ``topics`` directions, with varied lengths (as after pruning)."""
    centres = _unit(rng, topics).astype(np.float32)
    corpus = {}
    for d in range(pages):
        mix = centres[rng.choice(topics, 3, replace=False)]
        length = int(rng.integers(5, 60))
        v = mix[rng.integers(0, 3, length)] + 0.25 * rng.normal(size=(length, DIM))
        corpus[(f"d{d // 7}", d % 7 + 1)] = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)
    return corpus


def _queries(rng: np.random.Generator, corpus: dict[tuple[str, int], np.ndarray], count: int) -> list[np.ndarray]:
    pages = list(corpus.values())
    out = []
    for _ in range(count):
        page = pages[rng.integers(len(pages))].astype(np.float32)
        q = page[rng.integers(0, len(page), 8)] + 0.25 * rng.normal(size=(8, DIM))
        out.append((q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
    return out


def test_device_resident_search_returns_the_exact_top_k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The GPU path is device-agnostic torch; on this CPU it runs the very same code.
    from pagehop.retrieval import resident

    monkeypatch.setattr(resident, "CHUNK_PAGES", 64)  # several chunks and blocks per segment
    monkeypatch.setattr(resident, "BLOCK_PAGES", 16)
    rng = np.random.default_rng(21)
    corpus = _clustered(rng, 300)
    index = _filled(tmp_path, corpus, device="cpu", max_segment_vectors=4000)
    assert index.stats()["segments"] > 1
    for query in _queries(rng, corpus, 12):
        _assert_same_hits(index.search(query, k=10, exact=False), index.search(query, k=10))

    # Appends, deletions and compaction reach the device copy.
    extra = _clustered(np.random.default_rng(22), 70)
    index.add_many([(f"new-{doc}", page, v) for (doc, page), v in extra.items()])
    index.delete_document("d0")
    query = _queries(rng, extra, 1)[0]
    _assert_same_hits(index.search(query, k=10, exact=False), index.search(query, k=10))
    for doc in [f"d{i}" for i in range(1, 20)]:
        index.delete_document(doc)
    assert index.dead_fraction() < 0.25  # compacted: new segment names
    _assert_same_hits(index.search(query, k=10, exact=False), index.search(query, k=10))
    assert all(doc != "d5" for doc, _, _ in index.search(query, k=len(index), exact=False))


def test_cpu_fast_path_uses_the_first_stage_once_the_index_is_large(tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    corpus = _clustered(rng, 400)
    index = _filled(tmp_path, corpus, fast_candidates=80)  # 400 pages > 4 x 80: first stage
    recalls = []
    for query in _queries(rng, corpus, 12):
        exact = index.search(query, k=10)
        fast = index.search(query, k=10, exact=False)
        assert fast == index.search(query, k=10, candidates=80)  # exactly the first stage's answer
        exact_scores = {(doc, page): score for doc, page, score in index.search(query, k=len(corpus))}
        for doc, page, score in fast:
            assert score == pytest.approx(exact_scores[(doc, page)], rel=1e-6)
        recalls.append(len({hit[:2] for hit in exact} & {hit[:2] for hit in fast}) / 10)
    assert np.mean(recalls) >= 0.85  # noisy 16-d tokens: 0.92 over 30 queries at 80 candidates
    small = _filled(tmp_path / "small", dict(list(corpus.items())[:100]), fast_candidates=40)
    query = _queries(rng, corpus, 1)[0]
    assert small.search(query, k=10, exact=False) == small.search(query, k=10)  # small index: the exact scan


def test_from_settings_keeps_vectors_on_cuda_only(tmp_path: Path) -> None:
    from pagehop.config import Settings

    assert LocalPageIndex.from_settings(Settings(workspace=tmp_path, models={"device": "cpu"}))._resident is None
    on_gpu = LocalPageIndex.from_settings(Settings(workspace=tmp_path, models={"device": "cuda"}), dim=DIM)
    assert on_gpu._resident is not None and on_gpu._resident.device.type == "cuda"
    # On CUDA this runs the GPU path; without CUDA the index falls back to the CPU with a warning.
    corpus = _corpus(seed=24)
    on_gpu.add_many([(doc, page, v) for (doc, page), v in corpus.items()])
    query = _unit(np.random.default_rng(25), 4).astype(np.float32)
    _assert_same_hits(on_gpu.search(query, k=5, exact=False), _brute_force(corpus, query)[:5])


def _codebook_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("codebook-*.f16"))


def _fast_recall(index: LocalPageIndex, queries: list[np.ndarray], candidates: int) -> float:
    """Mean recall@10 of the fast path against exact search; checks its scores are the exact ones."""
    recalls = []
    for query in queries:
        exact = index.search(query, k=10)
        fast = index.search(query, k=10, exact=False)
        assert fast == index.search(query, k=10, candidates=candidates)
        exact_scores = {(doc, page): score for doc, page, score in index.search(query, k=len(index))}
        for doc, page, score in fast:
            assert score == pytest.approx(exact_scores[(doc, page)], rel=1e-6)
        recalls.append(len({hit[:2] for hit in exact} & {hit[:2] for hit in fast}) / 10)
    return float(np.mean(recalls))


def test_codebook_is_trained_persisted_and_follows_appends_deletes_and_compaction(tmp_path: Path) -> None:
    rng = np.random.default_rng(31)
    everything = list(_clustered(rng, 400).items())
    corpus, extra = dict(everything[:300]), dict(everything[300:])
    index = _filled(tmp_path, corpus, fast_candidates=60, codebook_min_pages=200, max_segment_vectors=4000)
    assert index.stats()["segments"] > 1
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["codebook"]["trained_on"] == 300
    assert manifest["codebook"]["centroids"] == 300 * 8 // 400  # ~400 summaries per inverted list
    assert _codebook_files(tmp_path) == [f"{manifest['codebook']['name']}.f16"]
    queries = _queries(rng, corpus, 10)
    assert _fast_recall(index, queries, 60) >= 0.85  # 0.95 measured with this seed

    # A query scores only the pages in its tokens' nearest cells, not the whole index.
    shortlist = index._first_stage(queries[0], len(index))
    assert 10 <= len(shortlist) < len(index)

    # Reopening reads the same codebook and gives the same answers.
    reopened = LocalPageIndex(tmp_path, dim=DIM, fast_candidates=60, codebook_min_pages=200)
    assert index._codebook is not None and reopened._codebook is not None
    np.testing.assert_array_equal(reopened._codebook.centroids, index._codebook.centroids)
    for query in queries:
        assert reopened.search(query, k=10, exact=False) == index.search(query, k=10, exact=False)

    # Appends (less than a doubling) keep the codebook and extend the inverted lists.
    index.add_many([(doc, page, v) for (doc, page), v in extra.items()])
    assert json.loads((tmp_path / "manifest.json").read_text())["codebook"] == manifest["codebook"]
    new_queries = _queries(rng, extra, 6)
    assert _fast_recall(index, new_queries, 60) >= 0.85  # 0.90 measured
    for segment in index._segments:
        assert index._segment_cells(segment).pages == segment.num_pages
    assert _fast_recall(reopened, new_queries, 60) >= 0.85  # another instance picks the new pages up

    # Deleted pages never come back; compaction rewrites segments and their lists follow.
    for doc in [f"d{i}" for i in range(12)]:
        index.delete_document(doc)
    assert index.dead_fraction() < 0.25  # compacted
    names = {segment.name for segment in index._segments}
    assert set(index._cells) <= names
    for query in queries + new_queries:
        hits = index.search(query, k=len(index), exact=False)
        assert all(doc not in {f"d{i}" for i in range(12)} for doc, _, _ in hits)
    assert _fast_recall(index, queries + new_queries, 60) >= 0.85  # 0.93 measured

    # Doubling the index retrains the codebook; the old file goes.
    more = _clustered(np.random.default_rng(33), 400)
    index.add_many([(f"more-{doc}", page, v) for (doc, page), v in more.items()])
    retrained = json.loads((tmp_path / "manifest.json").read_text())["codebook"]
    assert retrained["name"] != manifest["codebook"]["name"]
    assert retrained["trained_on"] == len(index)
    assert _codebook_files(tmp_path) == [f"{retrained['name']}.f16"]
    assert _fast_recall(index, _queries(rng, more, 6), 60) >= 0.8  # 0.87 measured
    assert reopened.search(queries[0], k=10, exact=False) == index.search(queries[0], k=10, exact=False)


def test_a_missing_codebook_file_is_reported_as_damage(tmp_path: Path) -> None:
    corpus = _clustered(np.random.default_rng(34), 60)
    _filled(tmp_path, corpus, codebook_min_pages=50)
    (name,) = _codebook_files(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(PageIndexError, match="codebook"):
        LocalPageIndex(tmp_path, dim=DIM)


def test_train_codebook_gives_deterministic_unit_centroids() -> None:
    from pagehop.retrieval.page_index import train_codebook

    rng = np.random.default_rng(35)
    groups = np.eye(4, DIM, dtype=np.float32)
    sample = np.repeat(groups, 25, axis=0) + 0.05 * rng.normal(size=(100, DIM)).astype(np.float32)
    sample /= np.linalg.norm(sample, axis=1, keepdims=True)
    centroids = train_codebook(sample, 4)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    assert (centroids @ groups.T).max(axis=0).min() > 0.99  # one centroid per group
    np.testing.assert_array_equal(train_codebook(sample, 4), centroids)
    assert train_codebook(sample[:3], 10).shape == (3, DIM)  # never more centroids than rows


def test_a_failed_codebook_commit_keeps_the_pages_and_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = _clustered(np.random.default_rng(36), 60)
    real_write = LocalPageIndex._write_manifest
    calls = []

    def write_then_fail_the_codebook(self: LocalPageIndex) -> None:
        calls.append(self._codebook is not None)
        if self._codebook is not None:
            raise OSError("disk full")
        real_write(self)

    monkeypatch.setattr(LocalPageIndex, "_write_manifest", write_then_fail_the_codebook)
    index = _filled(tmp_path, corpus, codebook_min_pages=50)
    assert calls == [False, True]  # the pages' commit, then the codebook's, which failed
    assert len(index) == 60 and index._codebook is None and _codebook_files(tmp_path) == []
    monkeypatch.setattr(LocalPageIndex, "_write_manifest", real_write)
    query = _queries(np.random.default_rng(37), corpus, 1)[0]
    _assert_same_hits(index.search(query, k=5, candidates=60), _brute_force(corpus, query)[:5])
    index.add("late", 1, corpus[("d0", 1)])  # the next write trains it
    assert index._codebook is not None and len(_codebook_files(tmp_path)) == 1
    assert "codebook" in json.loads((tmp_path / "manifest.json").read_text())


# -- stored inverted lists --------------------------------------------------------------

LISTS_LOG = "pagehop.retrieval.page_index"


def _cells_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("cells-*.i32"))


def _lists_index(folder: Path, **kwargs: Any) -> LocalPageIndex:
    return LocalPageIndex(folder, dim=DIM, fast_candidates=60, codebook_min_pages=200, **kwargs)


def _filled_with_lists(folder: Path, seed: int) -> tuple[LocalPageIndex, dict, np.random.Generator]:
    """300 clustered pages in several segments, with a codebook and stored lists."""
    rng = np.random.default_rng(seed)
    corpus = _clustered(rng, 300)
    index = _filled(folder, corpus, fast_candidates=60, codebook_min_pages=200, max_segment_vectors=4000)
    return index, corpus, rng


def _assert_lists_stored_and_fresh(folder: Path, *, orphans: bool = False) -> LocalPageIndex:
    """A new instance reads every segment's lists from its file, and they equal freshly derived ones.

    No lists file but those the manifest names is left, unless ``orphans`` (a writer died)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    named = {f"{entry['cells']['name']}.i32" for entry in manifest["segments"]}
    assert named <= set(_cells_files(folder)) if orphans else named == set(_cells_files(folder))
    index = _lists_index(folder)
    assert index._codebook is not None
    for segment, entry in zip(index._segments, manifest["segments"], strict=True):
        assert entry["cells"]["codebook"] == manifest["codebook"]["name"]
        assert entry["cells"]["pages"] == entry["num_pages"]
        lists = index._segment_cells(segment)
        assert lists.stored == segment.cells, f"{segment.name}'s lists were derived, not read"
        _, _, summaries = index._arrays(segment)
        fresh = page_index_module._nearest_centroid(summaries.reshape(-1, DIM), index._codebook.centroids)
        np.testing.assert_array_equal(lists.cells, fresh)
    return index


def test_inverted_lists_are_stored_and_follow_appends_deletes_compaction_and_retraining(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(41)
    everything = list(_clustered(rng, 400).items())
    corpus, extra = dict(everything[:300]), dict(everything[300:])
    index = _filled(tmp_path, corpus, fast_candidates=60, codebook_min_pages=200, max_segment_vectors=4000)
    assert index.stats()["segments"] > 1
    queries = _queries(rng, corpus, 8)
    with caplog.at_level("INFO", logger=LISTS_LOG):
        reopened = _assert_lists_stored_and_fresh(tmp_path)
        for query in queries:
            assert reopened.search(query, k=10, exact=False) == index.search(query, k=10, exact=False)
    assert not [r for r in caplog.records if r.name == LISTS_LOG], "stored lists are read without deriving"

    # An append extends the last segment's file (same name, more pages) in the same commit.
    before = {e["name"]: e["cells"] for e in json.loads((tmp_path / "manifest.json").read_text())["segments"]}
    index.add_many([(doc, page, v) for (doc, page), v in extra.items()])
    after = {e["name"]: e["cells"] for e in json.loads((tmp_path / "manifest.json").read_text())["segments"]}
    grown = [name for name in before if after[name]["pages"] > before[name]["pages"]]
    assert grown and all(after[name]["name"] == before[name]["name"] for name in grown)
    assert all(after[name] == before[name] for name in before if name not in grown)
    _assert_lists_stored_and_fresh(tmp_path)

    # Deleted pages drop out: tombstones first, then compaction writes the new segments' lists.
    gone = {f"d{i}" for i in range(12)}
    for doc in sorted(gone):
        index.delete_document(doc)
    assert index.dead_fraction() > 0  # tombstones, not compacted yet
    for compacted in (False, True):
        if compacted:
            index.compact()
            assert not {f"{cells['name']}.i32" for cells in after.values()} & set(_cells_files(tmp_path))
        reopened = _assert_lists_stored_and_fresh(tmp_path)
        for query in queries:
            hits = reopened.search(query, k=len(reopened), candidates=len(reopened))
            assert not gone & {doc for doc, _, _ in hits}
            assert reopened.search(query, k=10, exact=False) == index.search(query, k=10, exact=False)

    # A retrained codebook replaces every lists file in the commit that names it.
    old_files = set(_cells_files(tmp_path))
    more = _clustered(np.random.default_rng(42), 400)
    index.add_many([(f"more-{doc}", page, v) for (doc, page), v in more.items()])
    assert not old_files & set(_cells_files(tmp_path))
    _assert_lists_stored_and_fresh(tmp_path)


def _damage(folder: Path, how: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    path = folder / f"{manifest['segments'][0]['cells']['name']}.i32"
    if how == "missing":
        path.unlink()
    elif how == "short":
        path.write_bytes(path.read_bytes()[:-4])
    else:  # same size, other (valid) centroid numbers: a silently wrong list if it were used
        path.write_bytes(np.zeros(path.stat().st_size // 4, np.int32).tobytes())


@pytest.mark.parametrize("how", ["missing", "short", "overwritten"])
def test_a_damaged_or_missing_lists_file_is_derived_again_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    index, corpus, rng = _filled_with_lists(tmp_path, 43)
    queries = _queries(rng, corpus, 8)
    expected = [index.search(query, k=10, candidates=30) for query in queries]
    _damage(tmp_path, how)

    with caplog.at_level("WARNING", logger=LISTS_LOG):
        reader = _lists_index(tmp_path)
        assert [reader.search(query, k=10, candidates=30) for query in queries] == expected
    (warning,) = [r.getMessage() for r in caplog.records if r.name == LISTS_LOG]
    assert "damaged" in warning and "deriving" in warning
    assert reader._segment_cells(reader._segments[0]).stored is None

    # The next write stores them again (a fresh file; the damaged one is swept).
    writer = _lists_index(tmp_path)
    writer.search(queries[0], k=10, candidates=30)  # reads (and finds the damage) like any search
    writer.add("late", 1, corpus[("d0", 1)])
    caplog.clear()
    with caplog.at_level("WARNING", logger=LISTS_LOG):
        _assert_lists_stored_and_fresh(tmp_path)
    assert not caplog.records


def test_an_index_written_before_the_lists_were_stored_gets_them_on_its_next_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index, corpus, rng = _filled_with_lists(tmp_path, 44)
    queries = _queries(rng, corpus, 6)
    expected = [index.search(query, k=10, exact=False) for query in queries]
    # The manifest as the previous version wrote it: no "cells" entries, no lists files.
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for entry in manifest["segments"]:
        del entry["cells"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for name in _cells_files(tmp_path):
        (tmp_path / name).unlink()

    with caplog.at_level("INFO", logger=LISTS_LOG):
        old = _lists_index(tmp_path)
        assert [old.search(query, k=10, exact=False) for query in queries] == expected
    assert any("not stored" in r.getMessage() for r in caplog.records if r.name == LISTS_LOG)
    assert _cells_files(tmp_path) == [], "a reader never writes"

    old.store_inverted_lists()
    _assert_lists_stored_and_fresh(tmp_path)
    old.store_inverted_lists()  # current: nothing to do
    assert [old.search(query, k=10, exact=False) for query in queries] == expected


_KILL_BEFORE_COMMIT = """
import os, sys
import numpy as np
from pagehop.retrieval.page_index import LocalPageIndex

commits, real_write = [], LocalPageIndex._write_manifest

def die_at_the_last_commit(self):
    commits.append(1)
    if len(commits) == int(sys.argv[3]):
        os._exit(3)  # the process dies with the lists files written and the manifest not yet swapped
    real_write(self)

LocalPageIndex._write_manifest = die_at_the_last_commit
index = LocalPageIndex(sys.argv[1], dim={dim}, fast_candidates=60, codebook_min_pages=200)
pages = np.load(sys.argv[2])
index.add_many([("crash", i + 1, pages[i]) for i in range(len(pages))])
"""


# An append that extends the lists dies at its commit; one that doubles the index commits
# its pages (and their lists), then dies at the retrained codebook's commit.
@pytest.mark.parametrize(("grow", "commit"), [(50, 1), (400, 2)])
def test_a_crash_before_the_manifest_swap_leaves_the_old_lists_intact(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, grow: int, commit: int
) -> None:
    import subprocess
    import sys

    folder = tmp_path / "index"
    _, corpus, rng = _filled_with_lists(folder, 45)
    codebook = json.loads((folder / "manifest.json").read_text())["codebook"]
    new_pages = np.stack([v[:5] for v in list(_clustered(np.random.default_rng(46), grow).values())])
    np.save(tmp_path / "pages.npy", new_pages)
    script = tmp_path / "crash.py"
    script.write_text(_KILL_BEFORE_COMMIT.format(dim=DIM))
    args = [sys.executable, str(script), str(folder), str(tmp_path / "pages.npy"), str(commit)]
    assert subprocess.run(args, check=False).returncode == 3
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["codebook"] == codebook, "the old codebook is still the committed one"
    stored = {f"{entry['cells']['name']}.i32" for entry in manifest["segments"]}
    left_over = set(_cells_files(folder)) - stored
    assert left_over if commit == 2 else True, "the dead writer had written new lists files"

    with caplog.at_level("INFO", logger=LISTS_LOG):
        reader = _assert_lists_stored_and_fresh(folder, orphans=True)  # the committed lists, intact
        for query in _queries(rng, corpus, 6):
            hits = reader.search(query, k=10, candidates=30)
            exact = {(doc, page): score for doc, page, score in reader.search(query, k=len(reader))}
            assert all(score == pytest.approx(exact[(doc, page)], rel=1e-6) for doc, page, score in hits)
    assert not [r for r in caplog.records if r.name == LISTS_LOG]

    # The next writer sweeps the dead writer's files (their names may be reused, by a retrain)
    # and truncates its bytes before appending.
    writer = _lists_index(folder)
    writer.add("late", 1, corpus[("d0", 1)])
    _assert_lists_stored_and_fresh(folder)


def test_a_failed_commit_of_the_lists_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index, corpus, rng = _filled_with_lists(tmp_path, 47)
    query = _queries(rng, corpus, 1)[0]
    expected = index.search(query, k=10, exact=False)
    files = _cells_files(tmp_path)

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(LocalPageIndex, "_write_manifest", full_disk)
    with pytest.raises(OSError):
        index.add("new", 1, corpus[("d0", 1)])
    monkeypatch.undo()
    assert _cells_files(tmp_path) == files
    assert index.search(query, k=10, exact=False) == expected
    index.add("new", 1, corpus[("d0", 1)])  # truncates the failed append's bytes, then extends
    _assert_lists_stored_and_fresh(tmp_path)


def test_a_reader_whose_lists_a_writer_replaced_reloads_instead_of_deriving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer, _, rng = _filled_with_lists(tmp_path, 48)
    reader = _lists_index(tmp_path)  # has read the manifest, not the lists yet
    more = _clustered(np.random.default_rng(49), 400)
    writer.add_many([(f"more-{doc}", page, v) for (doc, page), v in more.items()])  # retrains: new lists files
    with pytest.raises(FileNotFoundError):
        reader._segment_cells(reader._segments[0])  # what a search racing the writer would meet
    query = _queries(rng, more, 1)[0]
    with caplog.at_level("INFO", logger=LISTS_LOG):
        assert reader.search(query, k=10, exact=False) == writer.search(query, k=10, exact=False)
    assert not [r for r in caplog.records if r.name == LISTS_LOG]
