"""Tiny random-weight checkpoints of the production model classes, built offline.

Tests must not download anything, yet they should exercise the exact classes and
`from_pretrained` paths that production uses. These builders instantiate
`ColModernVBertForRetrieval` and `Qwen3VLForConditionalGeneration` from tiny configs,
pair them with tokenizers and PIL image processors built in code (no torchvision, no
hub), and `save_pretrained` everything into a folder that loads back like a real
checkpoint. Builds are seeded and deterministic, and take well under a second.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    ColModernVBertConfig,
    ColModernVBertForRetrieval,
    ColModernVBertProcessor,
    Idefics3ImageProcessorPil,
    ModernBertConfig,
    ModernVBertConfig,
    PreTrainedTokenizerFast,
    Qwen2Tokenizer,
    Qwen2VLImageProcessorPil,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    SiglipVisionConfig,
)

from pagehop.llm.qwen3vl_processor import Qwen3VLImageOnlyProcessor

__all__ = [
    "COLMODERNVBERT_EMBEDDING_DIM",
    "QWEN3VL_CHAT_TEMPLATE",
    "build_full_size_colmodernvbert",
    "build_tiny_colmodernvbert",
    "build_tiny_qwen3vl",
    "load_tiny_qwen3vl_processor",
    "render_test_page",
    "tiny_colmodernvbert_path",
    "tiny_qwen3vl_path",
]

COLMODERNVBERT_EMBEDDING_DIM = 128

# Page tiling mirrors the real checkpoint (longest edge 2048 = 4 tiles of 512 px), so an
# A4 page becomes 3 x 4 tiles + 1 global tile, the same layout as in production.
_TILES_PER_LONGEST_EDGE = 4

# Idefics3-style tokens the ColModernVBERT processor looks up by name.
_IDEFICS3_TOKENS = [
    "<fake_token_around_image>",
    "<image>",
    "<end_of_utterance>",
    "<global-img>",
    "<|begin_of_text|>",
    *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
]
_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

_QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Enough of Qwen's template for pagehop: string or OpenAI-style list content, one
# vision block per image part, and the assistant generation prompt.
QWEN3VL_CHAT_TEMPLATE = r"""{%- for message in messages %}
{{- '<|im_start|>' + message['role'] + '\n' }}
{%- if message['content'] is string %}
{{- message['content'] }}
{%- else %}
{%- for part in message['content'] %}
{%- if part['type'] in ('image', 'image_url') %}
{{- '<|vision_start|><|image_pad|><|vision_end|>' }}
{%- elif part['type'] == 'text' %}
{{- part['text'] }}
{%- endif %}
{%- endfor %}
{%- endif %}
{{- '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{%- endif %}
"""


def build_tiny_colmodernvbert(out_dir: Path, *, seed: int = 0, image_size: int = 64, patch_size: int = 8) -> Path:
    """Save a tiny ColModernVBERT retriever (model + processor) into `out_dir`.

    Each `image_size` tile yields `(image_size / patch_size) ** 2 / 4` image tokens (pixel
    shuffle 2); the defaults give 16 per tile and 13 tiles (208 image tokens) per A4 page.
    Load it with `attn_implementation="eager"` to get attention weights back.
    """
    if image_size % patch_size or (image_size // patch_size) % 2:
        raise ValueError("image_size / patch_size must be an even integer (pixel shuffle factor 2)")
    return _save_colmodernvbert(
        out_dir,
        seed=seed,
        # Production reads the last layer's attention; ModernBERT's last layer is global there
        # (22 layers, every third global), so keep the last tiny layer global too.
        text={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "layer_types": ["sliding_attention", "full_attention"],
            "local_attention": 32,
            "max_position_embeddings": 2048,
        },
        vision={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
        image_size=image_size,
        patch_size=patch_size,
        pixel_shuffle=2,
    )


def build_full_size_colmodernvbert(out_dir: Path, *, seed: int = 0) -> Path:
    """Save a ColModernVBERT of the released model's shapes with random weights into `out_dir`: a SigLIP
    512/16 vision tower (base size, 12 layers), a 22-layer ModernBERT-base (every third layer global, the
    last among them), pixel shuffle 4 (64 image tokens per 512-px tile: 1,088 for a US-letter page).

    For speed and memory benchmarks only (GPU page encoding): its vectors carry no page semantics. The
    tokenizer is the tiny one's; the vocabulary is sized like ModernBERT's so the embedding table is too.
    """
    return _save_colmodernvbert(
        out_dir,
        seed=seed,
        text={
            "vocab_size": 50_368,
            "hidden_size": 768,
            "intermediate_size": 1152,
            "num_hidden_layers": 22,
            "num_attention_heads": 12,
            "layer_types": ["full_attention" if i % 3 == 0 else "sliding_attention" for i in range(22)],
            "local_attention": 128,
            "max_position_embeddings": 8192,
        },
        vision={"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12},
        image_size=512,
        patch_size=16,
        pixel_shuffle=4,
    )


def _save_colmodernvbert(
    out_dir: Path,
    *,
    seed: int,
    text: dict[str, Any],
    vision: dict[str, Any],
    image_size: int,
    patch_size: int,
    pixel_shuffle: int,
) -> Path:
    """A random-weight ColModernVBERT of the given shapes, its processor and tokenizer, saved to `out_dir`."""
    out_dir = Path(out_dir)
    tokenizer = _bert_style_tokenizer()
    text_config = ModernBertConfig(
        **{"vocab_size": len(tokenizer), **text},
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    vision_config = SiglipVisionConfig(**vision, image_size=image_size, patch_size=patch_size)
    config = ColModernVBertConfig(
        vlm_config=ModernVBertConfig(
            text_config=text_config,
            vision_config=vision_config,
            image_token_id=_token_id(tokenizer, "<image>"),
            pixel_shuffle_factor=pixel_shuffle,
        ),
        embedding_dim=COLMODERNVBERT_EMBEDDING_DIM,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ColModernVBertForRetrieval(config)
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": _TILES_PER_LONGEST_EDGE * image_size},
        max_image_size={"longest_edge": image_size},
    )
    processor = ColModernVBertProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=(image_size // patch_size) ** 2 // pixel_shuffle**2,
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def build_tiny_qwen3vl(out_dir: Path, *, seed: int = 0) -> Path:
    """Save a tiny Qwen3-VL (model, tokenizer, image processor, chat template) into `out_dir`.

    Reload the model with `AutoModelForImageTextToText.from_pretrained` and the processor
    with `load_tiny_qwen3vl_processor` (AutoProcessor would return only the tokenizer).
    """
    out_dir = Path(out_dir)
    tokenizer = _qwen_tokenizer()
    ids = {token: _token_id(tokenizer, token) for token in _QWEN_SPECIALS}
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            # mrope sections (t, h, w) must sum to head_dim / 2.
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e4,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 64,
            "num_position_embeddings": 256,
            "deepstack_visual_indexes": [0, 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = None
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        # Pixel budgets, not edges: a page lands between 4 and 64 merged image tokens.
        size={"shortest_edge": 64 * 64, "longest_edge": 256 * 256},
    )
    processor = Qwen3VLImageOnlyProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN3VL_CHAT_TEMPLATE
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def load_tiny_qwen3vl_processor(path: Path | str) -> Qwen3VLImageOnlyProcessor:
    """Reload the processor saved by `build_tiny_qwen3vl` (offline, no video processor)."""
    return Qwen3VLImageOnlyProcessor.from_pretrained(str(path))


def tiny_colmodernvbert_path() -> Path:
    """Folder with the default tiny ColModernVBERT, built at most once per process."""
    return _cached("colmodernvbert-v1", build_tiny_colmodernvbert)


def tiny_qwen3vl_path() -> Path:
    """Folder with the default tiny Qwen3-VL, built at most once per process."""
    return _cached("qwen3vl-v1", build_tiny_qwen3vl)


def render_test_page(text: str = "Quarterly report\nRevenue grew 12% in Q3.", *, scale: int = 2) -> Image.Image:
    """A white A4-proportioned page (210 x 297 at `scale` px/mm) with text, a table and a bar."""
    width, height = 210 * scale, 297 * scale
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    draw.multiline_text((12 * scale, 12 * scale), text, fill="black", spacing=4)
    # A small table and a filled bar give the vision tower some structure to see.
    top = 60 * scale
    for row in range(4):
        y = top + row * 10 * scale
        draw.line((12 * scale, y, 198 * scale, y), fill="black", width=1)
    draw.rectangle((12 * scale, 120 * scale, 120 * scale, 140 * scale), fill=(40, 90, 200))
    return page


# -- tokenizers ---------------------------------------------------------------------


def _bert_style_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE over the 256 byte symbols, `[CLS] $A [SEP]`, Idefics3 specials."""
    vocab = {token: i for i, token in enumerate([*_BERT_SPECIALS, *pre_tokenizers.ByteLevel.alphabet()])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(token, normalized=False, special=True) for token in _IDEFICS3_TOKENS])
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        # Left padding, as FACTS.md records for the processor: the [CLS] token then sits at
        # the first non-pad position and the final [SEP] always at index -1.
        padding_side="left",
        model_max_length=2048,
    )


def _qwen_tokenizer() -> Qwen2Tokenizer:
    """Qwen2 byte-level tokenizer: the 256 byte symbols, no merges, chat/vision specials."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: i for i, token in enumerate(sorted(alphabet))}
    for token in _QWEN_SPECIALS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": _QWEN_SPECIALS})
    return tokenizer


def _token_id(tokenizer: PreTrainedTokenizerFast, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(token_id, int) or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise ValueError(f"{token!r} is not in the vocabulary")
    return token_id


# -- per-process cache --------------------------------------------------------------

_cache: dict[str, Path] = {}
_cache_lock = threading.Lock()
_tmp_root: Path | None = None


def _cached(name: str, build: Callable[[Path], Path]) -> Path:
    global _tmp_root
    with _cache_lock:
        if name in _cache:
            return _cache[name]
        env_root = os.environ.get("PAGEHOP_TINY_MODELS_DIR")
        if env_root:
            root = Path(env_root)
        else:
            if _tmp_root is None:
                _tmp_root = Path(tempfile.mkdtemp(prefix="pagehop-tiny-models-"))
                atexit.register(shutil.rmtree, _tmp_root, True)
            root = _tmp_root
        target = root / name
        if not (target / "config.json").is_file():
            root.mkdir(parents=True, exist_ok=True)
            # Build beside the target and rename, so parallel workers sharing
            # PAGEHOP_TINY_MODELS_DIR never see (or load) a half-written folder.
            staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
            build(staging)
            try:
                staging.rename(target)
            except OSError:  # another process won the race; its folder is identical
                shutil.rmtree(staging, ignore_errors=True)
        _cache[name] = target
        return target
