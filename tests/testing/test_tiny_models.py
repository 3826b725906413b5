"""The tiny checkpoints load through the production `from_pretrained` paths, offline."""

from __future__ import annotations

import os

# Before transformers/huggingface_hub are imported (they read these once), so that any
# attempt to reach the hub fails instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
import torch
from PIL import Image
from transformers import (
    AutoModelForImageTextToText,
    ColModernVBertForRetrieval,
    ColModernVBertProcessor,
    Qwen3VLForConditionalGeneration,
)

from pagehop.llm.qwen3vl_processor import Qwen3VLImageOnlyProcessor
from pagehop.testing import tiny_models
from pagehop.testing.tiny_models import (
    COLMODERNVBERT_EMBEDDING_DIM,
    build_tiny_colmodernvbert,
    load_tiny_qwen3vl_processor,
    render_test_page,
    tiny_colmodernvbert_path,
    tiny_qwen3vl_path,
)

# Default tiny ColModernVBERT: 64 px tiles, 8 px patches, pixel shuffle 2 -> 16 tokens a tile.
# An A4 page is resized to a 256 px longest edge, i.e. 4 rows x 3 columns of tiles plus one
# global tile: 13 tiles, 208 image tokens (the real checkpoint: 13 tiles of 64 = 832).
IMAGE_SEQ_LEN = 16
A4_TILES = 4 * 3 + 1


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    # huggingface_hub caches the flag at import; pin it in case something imported it earlier.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    yield


@pytest.fixture(scope="module")
def colmodernvbert() -> tuple[ColModernVBertForRetrieval, ColModernVBertProcessor]:
    path = tiny_colmodernvbert_path()
    model = ColModernVBertForRetrieval.from_pretrained(path, attn_implementation="eager").eval()
    return model, ColModernVBertProcessor.from_pretrained(path)


@pytest.fixture(scope="module")
def page() -> Image.Image:
    return render_test_page()


def test_colmodernvbert_embeds_pages_and_queries(
    colmodernvbert: tuple[ColModernVBertForRetrieval, ColModernVBertProcessor], page: Image.Image
) -> None:
    model, processor = colmodernvbert
    with torch.inference_mode():
        docs = processor.process_images([page])
        queries = processor.process_queries(["revenue growth in Q3", "blue bar chart"])
        doc_emb = model(**docs).embeddings
        query_emb = model(**queries).embeddings

    assert docs["pixel_values"].shape == (1, A4_TILES, 3, 64, 64)
    n_image_tokens = int((docs["input_ids"] == processor.image_token_id).sum())
    assert n_image_tokens == A4_TILES * IMAGE_SEQ_LEN == 208
    assert doc_emb.shape == (1, docs["input_ids"].shape[1], COLMODERNVBERT_EMBEDDING_DIM)
    assert query_emb.shape[::2] == (2, COLMODERNVBERT_EMBEDDING_DIM)

    # Keep only real tokens, as an index would; they are unit vectors, padding is zeroed.
    doc_vecs = [e[m.bool()] for e, m in zip(doc_emb, docs["attention_mask"], strict=True)]
    query_vecs = [e[m.bool()] for e, m in zip(query_emb, queries["attention_mask"], strict=True)]
    for vecs in (*doc_vecs, *query_vecs):
        torch.testing.assert_close(vecs.norm(dim=-1), torch.ones(len(vecs)))
    assert query_emb[queries["attention_mask"] == 0].abs().max() == 0

    by_hand = torch.tensor([[float((q @ d.T).max(dim=1).values.sum()) for d in doc_vecs] for q in query_vecs])
    torch.testing.assert_close(processor.score_retrieval(query_vecs, doc_vecs), by_hand)


def test_colmodernvbert_attention_layout(
    colmodernvbert: tuple[ColModernVBertForRetrieval, ColModernVBertProcessor], page: Image.Image
) -> None:
    """Where the global tokens sit and what eager attention returns.

    The tokenizer pads on the LEFT, so in a batch [CLS] is at the first non-pad position
    (`attention_mask.argmax(1)`), and the final [SEP] is always at index -1. Attentions are a
    tuple with one (batch, heads, seq, seq) tensor per text layer; the last layer attends
    globally, earlier sliding-window layers only locally.
    """
    model, processor = colmodernvbert
    landscape = page.resize((300, 200))  # 4 x 3 tiles too, but one text token shorter
    with torch.inference_mode():
        batch = processor.process_images([page, landscape])
        out = model(**batch, output_attentions=True)

    ids, mask = batch["input_ids"], batch["attention_mask"]
    batch_size, seq = ids.shape
    text_config = model.config.get_text_config()
    assert mask[1, 0] == 0, "the shorter page must be padded on the left"
    cls_pos = mask.argmax(dim=1)
    assert cls_pos.tolist() == [0, 1]
    assert (ids[torch.arange(batch_size), cls_pos] == processor.tokenizer.cls_token_id).all()
    assert (ids[:, -1] == processor.tokenizer.sep_token_id).all()

    assert len(out.attentions) == text_config.num_hidden_layers
    last = out.attentions[-1]
    assert last.shape == (batch_size, text_config.num_attention_heads, seq, seq)
    assert text_config.layer_types[-1] == "full_attention"
    for b, cls in enumerate(cls_pos.tolist()):
        row = last[b, :, cls]  # what [CLS] looks at, per head
        torch.testing.assert_close(row.sum(-1), torch.ones(row.shape[0]))
        assert (row[:, :cls] == 0).all(), "padding keys get no attention"
        assert (row[:, -1] > 0).all(), "the global layer reaches the far end"
        # The first (sliding-window) layer cannot see that far.
        assert (out.attentions[0][b, :, cls, -1] == 0).all()


def test_qwen3vl_generates_from_image_and_text(page: Image.Image) -> None:
    path = tiny_qwen3vl_path()
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = load_tiny_qwen3vl_processor(path)
    assert isinstance(model, Qwen3VLForConditionalGeneration)
    assert isinstance(processor, Qwen3VLImageOnlyProcessor)

    # Typed Any: transformers annotates chat messages as str-only content.
    messages: Any = [
        {"role": "system", "content": "Answer from the page."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What grew?"}]},
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == (
        "<|im_start|>system\nAnswer from the page.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What grew?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    inputs = processor(text=[prompt], images=[page], return_tensors="pt")
    merged_patches = int(inputs["image_grid_thw"].prod()) // processor.image_processor.merge_size**2
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == merged_patches

    with torch.inference_mode():
        # min_new_tokens: a random model may otherwise pick <|im_end|> early.
        output = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    assert new_tokens.shape == (1, 8)
    assert isinstance(processor.batch_decode(new_tokens, skip_special_tokens=True)[0], str)

    # The one-call path: images inside the messages, tokenized by the processor.
    inline: Any = [{"role": "user", "content": [{"type": "image", "image": page}, {"type": "text", "text": "?"}]}]
    batch: Any = processor.apply_chat_template(
        inline, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    torch.testing.assert_close(batch["pixel_values"], inputs["pixel_values"])


def test_builds_are_seeded(tmp_path: Path) -> None:
    def weights(out: Path) -> dict[str, torch.Tensor]:
        model = ColModernVBertForRetrieval.from_pretrained(out)
        return {k: v.clone() for k, v in model.state_dict().items()}

    a = weights(build_tiny_colmodernvbert(tmp_path / "a", seed=0))
    b = weights(build_tiny_colmodernvbert(tmp_path / "b", seed=0))
    c = weights(build_tiny_colmodernvbert(tmp_path / "c", seed=1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_cache_builds_once_into_env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEHOP_TINY_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(tiny_models, "_cache", {})
    first = tiny_qwen3vl_path()
    assert first.parent == tmp_path and (first / "model.safetensors").is_file()
    assert tiny_qwen3vl_path() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name], "no staging folders left"
    # A second process sharing the folder reuses the finished build.
    monkeypatch.setattr(tiny_models, "_cache", {})
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    assert tiny_qwen3vl_path() == first
    assert (first / "model.safetensors").stat().st_mtime_ns == mtime
