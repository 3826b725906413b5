"""ColModernVBERT page encoder: page images -> pruned multi-vector embeddings; queries -> token vectors.

Uses transformers' native ``ColModernVBertForRetrieval`` / ``ColModernVBertProcessor``
(never colpali-engine, which needs torchvision). The language model is loaded with
``attn_implementation="eager"`` because only eager attention returns the weights that
DocPruner scores patches with (the vision tower keeps SDPA).

A page keeps only its image-patch token vectors (one 128-d vector per ``<image>`` token,
global tile included). The other tokens of a page sequence are the fixed prompt
("User: ... Describe the image. Assistant:") and tile markers: identical text on every page,
so they carry no page content and would only add the same near-constant MaxSim to all
pages while costing storage. Query vectors keep every real token, including the
``<end_of_utterance>`` augmentation tokens the processor appends (ColBERT-style query
augmentation is part of how the model was trained).

Everything model-specific sits in small methods (``_image_token_mask``,
``_global_token_positions``, ``_last_attention_module``) so a ColPali / ColQwen
encoder can subclass and override them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import torch
from PIL import Image

from pagehop.models import resolve_model, torch_device
from pagehop.retrieval.base import PageEmbedding
from pagehop.retrieval.docpruner import first_token_positions, global_attention_rows, prune_page

if TYPE_CHECKING:
    from pagehop.config import Settings

DEFAULT_MODEL = "ModernVBERT/colmodernvbert-merged"


class ColModernVBertEncoder:
    """A ``PageEncoder`` over ColModernVBERT with DocPruner pruning of page vectors."""

    # Eager attention only in the language model, whose last layer DocPruner reads. The
    # SigLIP tower stays on SDPA: eager there materialises (tiles, heads, 1024, 1024) float32
    # weights per layer, which on an H100 took a real-size batch of 8 pages to 18.5 GiB.
    attn_implementation: ClassVar[dict[str, Any] | str] = {
        "vlm_config": {"text_config": "eager", "vision_config": "sdpa"}
    }

    def __init__(
        self,
        model_ref: str | Path = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        docpruner_k: float | None = -0.25,
        batch_size: int = 4,
        dtype: torch.dtype | None = None,
    ) -> None:
        """``docpruner_k=None`` turns pruning off (every image-patch vector is kept)."""
        from transformers import ColModernVBertForRetrieval, ColModernVBertProcessor

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        path = resolve_model(str(model_ref))
        self.device = torch.device(device)
        # bfloat16 halves memory and time on GPUs; CPUs lack fast bfloat16 kernels, so float32 there.
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.model: Any = cast(
            Any,
            ColModernVBertForRetrieval.from_pretrained(
                path, attn_implementation=self.attn_implementation, dtype=self.dtype
            ),
        )
        self.model.to(self.device).eval()
        self.processor: Any = ColModernVBertProcessor.from_pretrained(path)
        self.embedding_dim: int = int(self.model.config.embedding_dim)
        self.docpruner_k = docpruner_k
        self.batch_size = batch_size

    @classmethod
    def from_settings(cls, settings: Settings) -> ColModernVBertEncoder:
        ref = settings.models.page_encoder
        if not ref:
            raise ValueError("models.page_encoder is empty: the visual page channel is disabled")
        return cls(
            ref,
            device=torch_device(settings.models.device),
            docpruner_k=settings.ingest.docpruner_k,
        )

    # -- PageEncoder --------------------------------------------------------------

    def encode_pages(self, images: Sequence[Image.Image]) -> list[PageEmbedding]:
        """One ``PageEmbedding`` per image: pruned image-patch vectors as float16."""
        pages: list[PageEmbedding] = []
        for vectors, scores in self.page_patches(images):
            num_patches = int(vectors.shape[0])
            stats = {"num_patches": float(num_patches), "kept": float(num_patches)}
            if self.docpruner_k is not None:
                pruned = prune_page(scores, self.docpruner_k)
                vectors = vectors[pruned.keep]
                stats = pruned.stats()
            pages.append(PageEmbedding(vectors.numpy().astype(np.float16), num_patches, stats))
        return pages

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        """Per query, the (tokens, dim) float32 vectors of its real (non-pad) tokens."""
        if any(not q.strip() for q in queries):
            raise ValueError("queries must be non-empty text")
        vectors: list[np.ndarray] = []
        for start in range(0, len(queries), self.batch_size):
            batch = self.processor.process_queries(list(queries[start : start + self.batch_size]))
            batch = batch.to(self.device)
            with torch.inference_mode():
                embeddings = self.model(**batch).embeddings
            for row, mask in zip(embeddings, batch["attention_mask"].bool(), strict=True):
                vectors.append(row[mask].float().cpu().numpy())
        return vectors

    def page_patches(self, images: Sequence[Image.Image]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per page, every image-patch vector (float32, on CPU) and its DocPruner score, before pruning.

        The score is the head-averaged last-layer attention from the global token to the patch.
        """
        patches: list[tuple[torch.Tensor, torch.Tensor]] = []
        for start in range(0, len(images), self.batch_size):
            batch = self.processor.process_images([im.convert("RGB") for im in images[start : start + self.batch_size]])
            batch = batch.to(self.device)
            batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
            global_positions = self._global_token_positions(batch["attention_mask"])
            embeddings, scores = self._forward_with_global_attention(batch, global_positions)
            image_mask = self._image_token_mask(batch["input_ids"])
            for row in range(len(image_mask)):
                if not bool(image_mask[row].any()):
                    raise RuntimeError("the processor produced no image tokens for a page")
                patches.append((embeddings[row][image_mask[row]].float().cpu(), scores[row][image_mask[row]].cpu()))
        return patches

    # -- model-specific bits, overridable -----------------------------------------

    def _image_token_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Which positions hold image-patch tokens (page content)."""
        return input_ids == self.processor.image_token_id

    def _global_token_positions(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """The token whose attention scores patches: [CLS], see pagehop.retrieval.docpruner."""
        return first_token_positions(attention_mask)

    def _last_attention_module(self) -> torch.nn.Module:
        """The language model's last self-attention; its forward returns (output, weights)."""
        module: torch.nn.Module = self.model.vlm.text_model.layers[-1].attn
        if getattr(module, "sliding_window", None) is not None:
            # A local-attention layer would let [CLS] see only nearby patches, not the page.
            raise ValueError("the last text layer uses sliding-window attention; DocPruner needs a global one")
        return module

    # -- internals ----------------------------------------------------------------

    def _forward_with_global_attention(
        self, batch: Any, global_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings plus each row's head-averaged last-layer attention from its global token.

        A forward hook reduces the last layer's (batch, heads, seq, seq) weights to
        (batch, seq) on the spot, instead of ``output_attentions=True``, which would keep
        every layer's full matrices (gigabytes for a batch of real ~1,100-token pages).
        """
        captured: list[torch.Tensor] = []

        def keep_global_row(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise RuntimeError(
                    "the attention layer returned no weights: load the model with attn_implementation='eager'"
                )
            captured.append(global_attention_rows(weights, global_positions))

        handle = self._last_attention_module().register_forward_hook(keep_global_row)
        try:
            with torch.inference_mode():
                embeddings = self.model(**batch).embeddings
        finally:
            handle.remove()
        if len(captured) != 1:
            raise RuntimeError(f"expected one last-layer attention call, saw {len(captured)}")
        return embeddings, captured[0]
