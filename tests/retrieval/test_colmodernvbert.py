"""ColModernVBERT encoder on the tiny random checkpoint: the real classes, processor and attention."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import ColModernVBertForRetrieval

from pagehop.config import Settings
from pagehop.retrieval.base import PageEncoder
from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder, batch_size_for_memory, collate_page_batches
from pagehop.retrieval.docpruner import first_token_positions, prune_page
from pagehop.retrieval.page_index import LocalPageIndex
from pagehop.testing.tiny_models import render_test_page, tiny_colmodernvbert_path

QUERIES = ["quarterly revenue growth", "blue bar chart"]


@pytest.fixture(scope="module")
def encoder() -> ColModernVBertEncoder:
    torch.manual_seed(0)
    return ColModernVBertEncoder(tiny_colmodernvbert_path(), device="cpu", docpruner_k=-0.25, batch_size=4)


@pytest.fixture(scope="module")
def unpruned() -> ColModernVBertEncoder:
    return ColModernVBertEncoder(tiny_colmodernvbert_path(), docpruner_k=None, batch_size=8)


@pytest.fixture(scope="module")
def pages() -> list[Image.Image]:
    # Different shapes give different tile counts, so a batch needs (left) padding.
    wide = render_test_page("Wide slide: revenue by region").resize((600, 150))
    return [render_test_page(), wide, render_test_page("Chart\nBlue bar = 40%")]


def _page_batch(encoder: ColModernVBertEncoder, images: list[Image.Image]) -> dict[str, torch.Tensor]:
    return dict(encoder.processor.process_images(images))


def test_is_a_page_encoder(encoder: ColModernVBertEncoder) -> None:
    assert isinstance(encoder, PageEncoder)
    assert encoder.embedding_dim == 128


def test_page_rows_pad_left_with_cls_first_and_sep_last(
    encoder: ColModernVBertEncoder, pages: list[Image.Image]
) -> None:
    batch = _page_batch(encoder, pages)
    tokenizer = encoder.processor.tokenizer
    mask = batch["attention_mask"]
    assert (mask == 0).any(), "the wide page should need padding beside the A4 pages"
    first = first_token_positions(mask)
    for row in range(len(pages)):
        assert mask[row, : first[row]].sum() == 0  # all padding sits on the left
        assert batch["input_ids"][row, first[row]] == tokenizer.cls_token_id
        assert batch["input_ids"][row, -1] == tokenizer.sep_token_id


def test_unpruned_vectors_are_the_image_token_embeddings_and_maxsim_matches_score_retrieval(
    unpruned: ColModernVBertEncoder, pages: list[Image.Image], tmp_path: Path
) -> None:
    full = unpruned
    embedded = full.encode_pages(pages)
    batch = _page_batch(full, pages)
    with torch.inference_mode():
        reference = full.model(**batch).embeddings
    for row, page in enumerate(embedded):
        image_positions = batch["input_ids"][row] == full.processor.image_token_id
        assert page.vectors.dtype == np.float16
        assert page.num_patches == page.vectors.shape[0] == int(image_positions.sum())
        np.testing.assert_allclose(page.vectors, reference[row][image_positions].numpy(), atol=2e-3)

    queries = full.encode_queries(QUERIES)
    # One page per call: score_retrieval zero-pads pages of different lengths, and a zero
    # vector would beat a query token's all-negative similarities.
    expected = torch.cat(
        [
            full.processor.score_retrieval(
                [torch.from_numpy(q) for q in queries], [torch.from_numpy(p.vectors.astype(np.float32))]
            )
            for p in embedded
        ],
        dim=1,
    )
    index = LocalPageIndex(tmp_path / "idx")
    for number, page in enumerate(embedded, start=1):
        index.add("doc", number, page.vectors)
    for qi, query in enumerate(queries):
        got = {page: score for _, page, score in index.search(query, k=len(pages))}
        for pi in range(len(pages)):
            assert got[pi + 1] == pytest.approx(float(expected[qi, pi]), rel=1e-5, abs=1e-5)


def test_pruned_vectors_follow_docpruner_on_the_eager_models_last_layer_attention(
    encoder: ColModernVBertEncoder, pages: list[Image.Image]
) -> None:
    # The reference is today's eager text attention, whose full weights we read directly.
    eager = ColModernVBertForRetrieval.from_pretrained(
        tiny_colmodernvbert_path(),
        attn_implementation={"vlm_config": {"text_config": "eager", "vision_config": "sdpa"}},
    ).eval()
    embedded = encoder.encode_pages(pages)
    patches = encoder.page_patches(pages)
    batch = _page_batch(encoder, pages)
    with torch.inference_mode():
        out = eager(**batch, output_attentions=True)
    last_layer = out.attentions[-1]  # (batch, heads, seq, seq)
    first = first_token_positions(batch["attention_mask"])
    for row, page in enumerate(embedded):
        image_positions = torch.nonzero(batch["input_ids"][row] == encoder.processor.image_token_id).flatten()
        eager_scores = last_layer[row, :, first[row], image_positions].mean(dim=0)
        torch.testing.assert_close(patches[row][1], eager_scores, rtol=1e-4, atol=1e-6)
        scores = eager_scores.double().numpy()
        threshold = scores.mean() + encoder.docpruner_k * scores.std()
        keep = np.flatnonzero(scores > threshold)
        if keep.size == 0:
            keep = np.array([scores.argmax()])
        assert page.num_patches == len(image_positions)
        assert page.stats["kept"] == len(keep) == page.vectors.shape[0]
        assert 0 < len(keep) < page.num_patches
        np.testing.assert_array_equal(prune_page(patches[row][1], encoder.docpruner_k).keep.numpy(), keep)
        assert page.stats["threshold"] == pytest.approx(threshold, rel=1e-4)
        np.testing.assert_allclose(page.vectors, out.embeddings[row][image_positions[keep]].numpy(), atol=2e-3)


def test_pipelined_encoder_returns_the_serial_vectors_and_kept_patches(
    encoder: ColModernVBertEncoder, pages: list[Image.Image]
) -> None:
    pipelined = ColModernVBertEncoder(
        tiny_colmodernvbert_path(), docpruner_k=encoder.docpruner_k, batch_size=encoder.batch_size, preprocess_workers=1
    )
    try:
        many = [*pages, *reversed(pages), pages[0]]  # odd count: a last, partial batch
        serial = encoder.encode_pages(many)
        streamed = pipelined.encode_pages(many)
        assert len(streamed) == len(serial)
        for one, other in zip(serial, streamed, strict=True):
            # Same batches, same padding: the very same numbers.
            assert one.stats == other.stats
            np.testing.assert_array_equal(one.vectors, other.vectors)
        # A stream that stops early leaves the pipeline reusable.
        stream = pipelined.encode_page_stream(iter(many))
        first = next(stream)
        stream.close()
        np.testing.assert_array_equal(first.vectors, streamed[0].vectors)
        with pytest.raises(RuntimeError, match="broken page"):
            pipelined.encode_pages(_failing_pages(pages))
        np.testing.assert_array_equal(pipelined.encode_pages(pages[:1])[0].vectors, streamed[0].vectors)
    finally:
        pipelined.close()


def _failing_pages(pages: list[Image.Image]) -> Iterator[Image.Image]:
    yield from pages
    raise RuntimeError("broken page")


def test_collated_single_pages_equal_the_processors_own_batch(
    encoder: ColModernVBertEncoder, pages: list[Image.Image]
) -> None:
    together = _page_batch(encoder, pages)
    parts = [_page_batch(encoder, [page]) for page in pages]
    collated = collate_page_batches(parts, encoder.processor.tokenizer.pad_token_id)
    assert collated.keys() == together.keys()
    for name, tensor in together.items():
        torch.testing.assert_close(collated[name], tensor, rtol=0, atol=0)


def test_gpu_batch_size_follows_free_memory() -> None:
    gib = 1 << 30
    assert batch_size_for_memory(10 * gib, 1 * gib) == 8  # 80 % of the free memory
    assert batch_size_for_memory(1 * gib, 4 * gib) == 1  # never below one page
    assert batch_size_for_memory(1000 * gib, 1 * gib) == 64  # capped


def test_batching_does_not_change_page_vectors(unpruned: ColModernVBertEncoder, pages: list[Image.Image]) -> None:
    full = unpruned
    batched = full.encode_pages(pages)
    single = [full.encode_pages([image])[0] for image in pages]
    for one, many in zip(single, batched, strict=True):
        np.testing.assert_allclose(one.vectors, many.vectors, atol=3e-3)


def test_queries_keep_every_real_token_normalised(encoder: ColModernVBertEncoder) -> None:
    vectors = encoder.encode_queries([*QUERIES, "q3"])
    tokens = encoder.processor.process_queries([*QUERIES, "q3"])["attention_mask"].sum(dim=1).tolist()
    assert [v.shape for v in vectors] == [(n, 128) for n in tokens]
    for v in vectors:
        assert v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    with pytest.raises(ValueError):
        encoder.encode_queries(["  "])


def test_from_settings_uses_the_configured_model_device_and_k() -> None:
    settings = Settings(
        models={"page_encoder": str(tiny_colmodernvbert_path()), "device": "cpu"},
        ingest={"docpruner_k": 0.5},
    )
    encoder = ColModernVBertEncoder.from_settings(settings)
    assert encoder.docpruner_k == 0.5
    assert encoder.device == torch.device("cpu")
    with pytest.raises(ValueError, match="disabled"):
        ColModernVBertEncoder.from_settings(Settings(models={"page_encoder": ""}))


def test_every_layer_runs_sdpa(encoder: ColModernVBertEncoder) -> None:
    assert encoder.model.vlm.text_model.config._attn_implementation == "sdpa"
    assert encoder.model.vlm.vision_model.config._attn_implementation == "sdpa"


def test_a_sliding_window_last_layer_is_refused(encoder: ColModernVBertEncoder) -> None:
    last = encoder.model.vlm.text_model.layers[-1].attn
    assert last.sliding_window is None
    last.sliding_window = 8
    try:
        with pytest.raises(ValueError, match="sliding-window"):
            encoder.encode_pages([render_test_page()])
    finally:
        last.sliding_window = None
