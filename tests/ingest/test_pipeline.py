"""End-to-end ingestion into a real workspace: catalog, images, text index, hooks, replacement, delete."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pagehop.config import Settings
from pagehop.ingest import delete, ingest
from pagehop.ingest.ocr import tesseract_path
from pagehop.retrieval.base import PageEmbedding
from pagehop.schema import Chunk, Document, Page
from pagehop.testing.pdf import pdf_bytes, write_pdf
from pagehop.workspace import Workspace

from .conftest import text_image

GIRAFFE = "The giraffe lives in the savanna of East Africa.\nIt browses acacia leaves at dawn."
EIFFEL = "The Eiffel Tower was finished in 1889 for the Paris World Fair."


class RecordingHook:
    """A derived-data channel that keeps what it was given, like a graph extractor would."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.docs: dict[str, tuple[Document, list[Page], list[Chunk]]] = {}
        self.deleted: list[str] = []
        self.fail_on = fail_on

    def add_document(self, doc: Document, pages: Sequence[Page], chunks: Sequence[Chunk]) -> None:
        self.docs[doc.doc_id] = (doc, list(pages), list(chunks))
        if self.fail_on and self.fail_on in doc.source_path:
            raise RuntimeError("extraction failed")

    def delete_document(self, doc_id: str) -> None:
        self.deleted.append(doc_id)
        self.docs.pop(doc_id, None)


def stored_doc_dirs(ws: Workspace) -> set[str]:
    return {p.name for p in ws.pages_dir.iterdir()}


def test_ingest_pdf_and_markdown_then_find_them(workspace: Workspace, docs: Path) -> None:
    write_pdf(docs / "animals.pdf", [GIRAFFE, EIFFEL], title="Field Notes")
    (docs / "sub").mkdir()
    (docs / "sub" / "myths.md").write_text("# Sea Myths\n\nThe kraken is a legendary sea monster of Norway.\n")

    report = ingest(workspace, [docs], ocr="never", progress=False)

    assert report.ok and not report.skipped
    assert (len(report.ingested), report.pages, report.ocr_pages) == (2, 3, 0)
    assert report.channels == ["text"]
    assert "2 documents ingested (3 pages, 0 OCR'd)" in report.summary()
    pdf_doc = workspace.find_document(docs / "animals.pdf")
    assert pdf_doc is not None and (pdf_doc.title, pdf_doc.kind, pdf_doc.num_pages) == ("Field Notes", "pdf", 2)
    page2 = workspace.get_page(pdf_doc.doc_id, 2)
    assert page2 is not None and page2.text == EIFFEL and page2.text_source == "pdf"
    assert page2.image_path and not workspace.absolute(page2.image_path).exists()  # drawn when first asked for
    assert workspace.page_image(pdf_doc.doc_id, 2) == workspace.absolute(page2.image_path)
    assert page2.thumbnail_path and workspace.page_image(pdf_doc.doc_id, 2, thumbnail=True)
    for chunk in workspace.get_chunks(pdf_doc.doc_id):
        page = workspace.get_page(chunk.doc_id, chunk.page_start)
        assert page is not None and page.text[chunk.char_start : chunk.char_end] == chunk.text
        assert workspace.get_chunk(chunk.chunk_id) == chunk

    (hit,) = workspace.text_index.search("When was the Eiffel Tower built?", k=1)
    assert (hit.doc_id, hit.page, hit.channel, hit.title) == (pdf_doc.doc_id, 2, "text", "Field Notes")
    (hit,) = workspace.text_index.search("kraken", k=1)
    md_doc = workspace.find_document(hit.doc_id)
    assert md_doc is not None and (md_doc.title, md_doc.kind, hit.page) == ("Sea Myths", "text", 1)
    assert workspace.get_page(md_doc.doc_id, 1).image_path is None  # type: ignore[union-attr]


@pytest.mark.skipif(tesseract_path() is None, reason="tesseract is not installed")
def test_scans_are_ocred_and_searchable(workspace: Workspace, docs: Path) -> None:
    text_image("Quokka sightings on Rottnest").save(docs / "photo.png")
    frames = [text_image("Invoice number 4471"), text_image("Total due: seventy euros")]
    frames[0].save(docs / "fax.tif", save_all=True, append_images=frames[1:])
    text_image("Lighthouse keeper logbook").save(docs / "scan.pdf", format="PDF", resolution=72)

    report = ingest(workspace, [docs], progress=False)  # ocr "auto": none of these has a text layer

    assert report.ok and (report.pages, report.ocr_pages) == (4, 4)
    fax = workspace.find_document(docs / "fax.tif")
    assert fax is not None and fax.num_pages == 2
    page = workspace.get_page(fax.doc_id, 2)
    assert page is not None and page.text_source == "ocr" and "seventy" in page.text
    (hit,) = workspace.text_index.search("quokka", k=1)
    assert hit.doc_id == workspace.find_document(docs / "photo.png").doc_id  # type: ignore[union-attr]
    (hit,) = workspace.text_index.search("lighthouse keeper", k=1)
    assert hit.doc_id == workspace.find_document(docs / "scan.pdf").doc_id  # type: ignore[union-attr]


def test_reingest_is_idempotent(workspace: Workspace, docs: Path) -> None:
    write_pdf(docs / "a.pdf", [GIRAFFE])
    (docs / "b.txt").write_text(EIFFEL)
    first = ingest(workspace, [docs], ocr="never", progress=False)
    chunks_before = len(workspace.text_index)

    second = ingest(workspace, [docs, docs / "a.pdf"], ocr="never", progress=False)

    assert len(first.ingested) == 2 and not second.ingested and not second.failed
    assert [why.split(":")[0] for _, why in second.skipped] == ["unchanged", "unchanged"]
    assert len(workspace.list_documents()) == 2 and len(workspace.text_index) == chunks_before


def test_changed_file_replaces_the_old_version(settings: Settings, docs: Path) -> None:
    hook = RecordingHook()
    workspace = Workspace.open(settings, hooks=[hook])
    path = write_pdf(docs / "report.pdf", [GIRAFFE])
    old_id = ingest(workspace, [path], ocr="never", progress=False).ingested[0].doc_id
    write_pdf(path, [GIRAFFE, EIFFEL])

    report = ingest(workspace, [path], ocr="never", progress=False)

    (new,) = report.ingested
    assert new.replaced == [old_id] and new.pages == 2
    assert workspace.get_document(old_id) is None and workspace.get_chunks(old_id) == []
    assert [d.doc_id for d in workspace.list_documents()] == [new.doc_id]
    assert stored_doc_dirs(workspace) == {new.doc_id}
    assert workspace.text_index.doc_ids() == {new.doc_id}
    assert set(hook.docs) == {new.doc_id} and old_id in hook.deleted
    assert workspace.find_document(path).doc_id == new.doc_id  # type: ignore[union-attr]
    workspace.close()


def test_delete_removes_everything_derived(settings: Settings, docs: Path) -> None:
    hook = RecordingHook()
    workspace = Workspace.open(settings, hooks=[hook])
    keep = write_pdf(docs / "keep.pdf", [EIFFEL])
    drop = write_pdf(docs / "drop.pdf", [GIRAFFE])
    ingest(workspace, [keep, drop], ocr="never", progress=False)
    drop_id = workspace.find_document(drop).doc_id  # type: ignore[union-attr]

    deleted = delete(workspace, str(drop))  # by path; by id works the same

    assert deleted is not None and deleted.doc_id == drop_id
    assert workspace.get_document(drop_id) is None and workspace.get_page(drop_id, 1) is None
    assert drop_id not in stored_doc_dirs(workspace) and drop_id not in workspace.text_index.doc_ids()
    assert drop_id in hook.deleted and drop_id not in hook.docs
    assert all(h.doc_id != drop_id for h in workspace.text_index.search("giraffe savanna", k=5))
    assert delete(workspace, drop_id) is None  # nothing left to delete
    reopened = Workspace.open(settings)  # the deletion is on disk, not only in memory
    assert [d.title for d in reopened.list_documents()] == ["keep"]
    assert drop_id not in reopened.text_index.doc_ids()
    reopened.close()
    workspace.close()


def test_bad_files_fail_alone_and_leave_nothing_behind(tmp_path: Path, docs: Path) -> None:
    settings = Settings(
        workspace=tmp_path / "ws", ingest={"dpi": 50, "max_file_mb": 0.05, "max_image_pixels": 2_000_000}
    )
    workspace = Workspace.open(settings)
    good = write_pdf(docs / "good.pdf", [EIFFEL])
    bad = {
        "locked.pdf": pdf_bytes(["secret"], encrypted=True),
        "empty-tree.pdf": pdf_bytes([]),
        "cut.pdf": pdf_bytes([GIRAFFE] * 5)[:400],
        "picture.pdf": (docs / "good.pdf").read_bytes().replace(b"%PDF-", b"\x89PNG\r\n\x1a\n", 1),
        "huge.txt": b"words " * 20_000,
        "notes.docx": b"PK\x03\x04",
    }
    for name, content in bad.items():
        (docs / name).write_bytes(content)
    from PIL import Image

    Image.new("L", (2000, 2000), 255).save(docs / "bomb.png")
    # A folder walk passes over unsupported extensions; a file named explicitly is attempted and fails.
    report = ingest(workspace, [docs, docs / "notes.docx"], ocr="never", progress=False)

    assert [d.path for d in report.ingested] == [str(good)]
    reasons = {Path(path).name: why for path, why in report.failed}
    assert set(reasons) == {*bad, "bomb.png"}
    assert "encrypted" in reasons["locked.pdf"]
    assert "no pages" in reasons["empty-tree.pdf"]
    assert "corrupt or truncated" in reasons["cut.pdf"]
    assert "content is PNG" in reasons["picture.pdf"]
    assert "MB limit" in reasons["huge.txt"]
    assert "unsupported file type" in reasons["notes.docx"]
    assert "decompression bomb" in reasons["bomb.png"]
    only_good = workspace.find_document(good).doc_id  # type: ignore[union-attr]
    assert [d.doc_id for d in workspace.list_documents()] == [only_good]
    assert stored_doc_dirs(workspace) == {only_good} and workspace.text_index.doc_ids() == {only_good}
    workspace.close()


def test_a_failing_hook_fails_only_its_document(settings: Settings, docs: Path) -> None:
    hook = RecordingHook(fail_on="bad.pdf")
    workspace = Workspace.open(settings, hooks=[hook])
    write_pdf(docs / "bad.pdf", [GIRAFFE])
    write_pdf(docs / "good.pdf", [EIFFEL])

    report = ingest(workspace, [docs], ocr="never", progress=False)

    assert [Path(p).name for p, _ in report.failed] == ["bad.pdf"]
    assert "RuntimeError: extraction failed" in report.failed[0][1]
    (good,) = workspace.list_documents()
    assert set(hook.docs) == {good.doc_id} and stored_doc_dirs(workspace) == {good.doc_id}
    _, pages, chunks = hook.docs[good.doc_id]
    assert [p.page for p in pages] == [1] and chunks and chunks[0].text.startswith("The Eiffel Tower")
    workspace.close()


def test_page_encoder_vectors_are_indexed_recorded_and_deleted(settings: Settings, docs: Path) -> None:
    """The visual channel through its Protocols: tiny random-weight ColModernVBERT + the local page index."""
    from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
    from pagehop.retrieval.page_index import LocalPageIndex
    from pagehop.testing.tiny_models import tiny_colmodernvbert_path

    encoder = ColModernVBertEncoder(tiny_colmodernvbert_path(), device="cpu", docpruner_k=-0.25)
    page_index = LocalPageIndex(settings.workspace / "page_index", dim=encoder.embedding_dim)
    workspace = Workspace.open(settings, page_encoder=encoder, page_index=page_index)
    path = write_pdf(docs / "two.pdf", [GIRAFFE, EIFFEL])
    (docs / "note.md").write_text("Text files have no page image to encode.")

    report = ingest(workspace, [docs], ocr="never", progress=False)

    assert report.ok and report.channels == ["text", "page"]
    doc_id = workspace.find_document(path).doc_id  # type: ignore[union-attr]
    assert sorted(page_index.pages()) == [(doc_id, 1), (doc_id, 2)]
    stats = [workspace.page_vector_stats(doc_id, page) for page in (1, 2)]
    assert all(s is not None and 0 < s["vectors_kept"] <= s["num_patches"] for s in stats)
    assert report.vectors_kept == sum(s["vectors_kept"] for s in stats if s)
    assert report.vectors_kept + report.vectors_pruned == sum(s["num_patches"] for s in stats if s)
    assert page_index.get_vectors(doc_id, 1).shape == (stats[0]["vectors_kept"], encoder.embedding_dim)  # type: ignore[index]
    (query,) = encoder.encode_queries(["giraffe"])
    assert {hit[0] for hit in page_index.search(query, k=5)} == {doc_id}

    delete(workspace, doc_id)

    assert len(page_index) == 0
    workspace.close()


class StreamRecordingEncoder:
    """The tiny ColModernVBERT, recording each page stream ingest opens; optionally failing on one page."""

    def __init__(self, fail_on_page: int | None = None) -> None:
        from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
        from pagehop.testing.tiny_models import tiny_colmodernvbert_path

        self.encoder = ColModernVBertEncoder(tiny_colmodernvbert_path(), device="cpu", docpruner_k=-0.25)
        self.embedding_dim = self.encoder.embedding_dim
        self.streams: list[int] = []  # pages read from each stream
        self.fail_on_page = fail_on_page

    def encode_page_stream(self, images: Iterable[Image.Image]) -> Iterator[PageEmbedding]:
        self.streams.append(0)

        def counted() -> Iterator[Image.Image]:
            for image in images:
                self.streams[-1] += 1
                if self.streams[-1] == self.fail_on_page:
                    raise RuntimeError("the page encoder ran out of memory")
                yield image

        return self.encoder.encode_page_stream(counted())

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        return self.encoder.encode_queries(queries)


def test_a_documents_pages_reach_the_encoder_as_one_stream(settings: Settings, docs: Path) -> None:
    from pagehop.retrieval.page_index import LocalPageIndex

    encoder = StreamRecordingEncoder()
    page_index = LocalPageIndex(settings.workspace / "page_index", dim=encoder.embedding_dim)
    workspace = Workspace.open(settings, page_encoder=encoder, page_index=page_index)
    texts = [f"Page {n}: the harbour ledger lists ship number {n}." for n in range(1, 11)]
    path = write_pdf(docs / "ledger.pdf", texts)

    report = ingest(workspace, [path], ocr="never", progress=False)

    assert report.ok and encoder.streams == [10]  # one stream, not one call per batch of pages
    doc_id = workspace.find_document(path).doc_id  # type: ignore[union-attr]
    assert sorted(page_index.pages()) == [(doc_id, n) for n in range(1, 11)]
    rendered = [Image.open(workspace.page_image(doc_id, n)) for n in (1, 7)]  # type: ignore[arg-type]
    for n, direct in zip((1, 7), encoder.encoder.encode_pages(rendered), strict=True):
        np.testing.assert_allclose(page_index.get_vectors(doc_id, n), direct.vectors, atol=2e-3)  # type: ignore[arg-type]
    workspace.close()


def test_a_page_encoder_failure_fails_its_document_and_leaves_no_vectors(settings: Settings, docs: Path) -> None:
    from pagehop.retrieval.page_index import LocalPageIndex

    encoder = StreamRecordingEncoder(fail_on_page=3)
    page_index = LocalPageIndex(settings.workspace / "page_index", dim=encoder.embedding_dim)
    workspace = Workspace.open(settings, page_encoder=encoder, page_index=page_index)
    bad = write_pdf(docs / "five.pdf", [f"Page {n} of the report." for n in range(1, 6)])
    (docs / "note.md").write_text("Text files have no page image to encode.")

    report = ingest(workspace, [docs], ocr="never", progress=False)

    ((path, why),) = report.failed
    assert path == str(bad) and why == "RuntimeError: the page encoder ran out of memory"
    assert [Path(d.path).name for d in report.ingested] == ["note.md"]
    assert len(page_index) == 0 and stored_doc_dirs(workspace) <= {report.ingested[0].doc_id}
    workspace.close()


def test_without_tesseract_pages_are_still_ingested_with_a_warning(
    workspace: Workspace, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # a system where tesseract is not installed
    text_image("Quokka sightings").save(docs / "photo.png")

    report = ingest(workspace, [docs], progress=False)

    assert report.ok and (report.pages, report.ocr_pages) == (1, 0)
    assert any("tesseract is not installed" in w for w in report.warnings)
    (doc,) = workspace.list_documents()
    page = workspace.get_page(doc.doc_id, 1)
    assert page is not None and page.text_source == "none" and page.image_path is not None


def test_a_long_ingest_saves_the_text_index_as_it_goes(
    settings: Settings, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is on disk mid-ingest already holds the earlier documents, so a crash re-embeds little."""
    from pagehop.ingest import pipeline
    from pagehop.retrieval.text_index import HybridTextIndex

    monkeypatch.setattr(pipeline, "TEXT_BATCH", 1)
    monkeypatch.setattr(pipeline, "TEXT_SAVE_SECONDS", 0.0)
    on_disk: list[int] = []

    def saved_chunks() -> int:
        live = workspace.text_index
        return len(HybridTextIndex(live.folder, embedder=live.embedder_ref))

    class DiskReader(RecordingHook):
        def add_document(self, doc: Document, pages: Sequence[Page], chunks: Sequence[Chunk]) -> None:
            on_disk.append(saved_chunks())

    workspace = Workspace.open(settings, hooks=[DiskReader()])
    for i, text in enumerate([GIRAFFE, EIFFEL, "The kraken is a sea monster of Norway."]):
        (docs / f"{i}.txt").write_text(text)

    ingest(workspace, [docs], ocr="never", progress=False)

    assert on_disk == [0, 1, 2]
    assert saved_chunks() == 3
    workspace.close()
