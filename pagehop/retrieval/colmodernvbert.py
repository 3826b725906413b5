"""ColModernVBERT page encoder: page images -> pruned multi-vector embeddings; queries -> token vectors.

Uses transformers' native ``ColModernVBertForRetrieval`` / ``ColModernVBertProcessor``
(never colpali-engine, which needs torchvision). Every layer runs SDPA attention. DocPruner
needs one row of the last text layer's attention matrix (the global token's), so a hook on
that layer's fused query/key/value projection recomputes just that row from the layer's own
projections and rotary embeddings: eager attention, which materialises (heads, seq, seq)
weights in all 22 layers, is never needed.

A page keeps only its image-patch token vectors (one 128-d vector per ``<image>`` token,
global tile included). The other tokens of a page sequence are the fixed prompt
("User: ... Describe the image. Assistant:") and tile markers: identical text on every page,
so they carry no page content and would only add the same near-constant MaxSim to all
pages while costing storage. Query vectors keep every real token, including the
``<end_of_utterance>`` augmentation tokens the processor appends (ColBERT-style query
augmentation is part of how the model was trained).

Pipeline: with ``preprocess_workers > 0`` pages are preprocessed (resize, tiling,
normalisation: ~0.4 s per real page on one core, the bottleneck of a GPU ingest) one page
per task in a pool of worker processes, fed and collated into batches by a background
thread, a bounded number of pages ahead of the forward pass; on CUDA the collated batch is
pinned and copied asynchronously. ``preprocess_workers=0`` is the plain serial loop. Both
give the same vectors (tests/retrieval/test_colmodernvbert.py).

Everything model-specific sits in small methods (``_image_token_mask``,
``_global_token_positions``, ``_last_attention_module``, ``_query_key_rows``) so a ColPali /
ColQwen encoder can subclass and override them.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import torch
from PIL import Image

from pagehop.models import resolve_model, torch_device
from pagehop.retrieval.base import PageEmbedding
from pagehop.retrieval.docpruner import attention_rows, first_token_positions, prune_page

if TYPE_CHECKING:
    from pagehop.config import Settings

DEFAULT_MODEL = "ModernVBERT/colmodernvbert-merged"
# Upper bound of an automatically sized CUDA batch: past this, throughput no longer grows.
MAX_AUTO_BATCH = 64
# Share of the free GPU memory an automatically sized batch may use.
GPU_MEMORY_SHARE = 0.8

PageBatch = dict[str, torch.Tensor]


class ColModernVBertEncoder:
    """A ``PageEncoder`` over ColModernVBERT with DocPruner pruning of page vectors."""

    attn_implementation: ClassVar[dict[str, Any] | str] = "sdpa"

    def __init__(
        self,
        model_ref: str | Path = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        docpruner_k: float | None = -0.25,
        batch_size: int | None = None,
        dtype: torch.dtype | None = None,
        preprocess_workers: int | None = None,
    ) -> None:
        """``docpruner_k=None`` turns pruning off (every image-patch vector is kept).

        ``batch_size=None``: 4 pages on a CPU; on CUDA sized from free GPU memory after the
        first page. ``preprocess_workers=None``: on CUDA one process per spare core (at most
        8), on a CPU none (the forward pass already uses every core).
        """
        from transformers import ColModernVBertForRetrieval, ColModernVBertProcessor

        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if preprocess_workers is not None and preprocess_workers < 0:
            raise ValueError("preprocess_workers must be >= 0")
        self.model_path = resolve_model(str(model_ref))
        self.device = torch.device(device)
        # bfloat16 halves memory and time on GPUs; CPUs lack fast bfloat16 kernels, so float32 there.
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.model: Any = cast(
            Any,
            ColModernVBertForRetrieval.from_pretrained(
                self.model_path, attn_implementation=self.attn_implementation, dtype=self.dtype
            ),
        )
        self.model.to(self.device).eval()
        self.processor: Any = ColModernVBertProcessor.from_pretrained(self.model_path)
        self.embedding_dim: int = int(self.model.config.embedding_dim)
        self.docpruner_k = docpruner_k
        on_cuda = self.device.type == "cuda"
        self.batch_size: int | None = batch_size if batch_size is not None or on_cuda else 4
        if preprocess_workers is None:
            preprocess_workers = min(8, max(0, (os.cpu_count() or 1) - 1)) if on_cuda else 0
        self.preprocess_workers = preprocess_workers
        self._pool: ProcessPoolExecutor | None = None

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

    def close(self) -> None:
        """Stop the preprocessing processes (they also stop with the interpreter)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # -- PageEncoder --------------------------------------------------------------

    def encode_pages(self, images: Sequence[Image.Image]) -> list[PageEmbedding]:
        """One ``PageEmbedding`` per image: pruned image-patch vectors as float16."""
        return list(self.encode_page_stream(images))

    def encode_page_stream(self, images: Iterable[Image.Image]) -> Iterator[PageEmbedding]:
        """``encode_pages`` over any iterable, in order, without holding every page in memory.

        With preprocessing workers the iterable is consumed on a background thread, so a
        generator that renders pages renders them while the model runs.
        """
        for vectors, scores in self.iter_page_patches(images):
            num_patches = int(vectors.shape[0])
            stats = {"num_patches": float(num_patches), "kept": float(num_patches)}
            if self.docpruner_k is not None:
                pruned = prune_page(scores, self.docpruner_k)
                vectors = vectors[pruned.keep]
                stats = pruned.stats()
            yield PageEmbedding(vectors.numpy().astype(np.float16), num_patches, stats)

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        """Per query, the (tokens, dim) float32 vectors of its real (non-pad) tokens."""
        if any(not q.strip() for q in queries):
            raise ValueError("queries must be non-empty text")
        vectors: list[np.ndarray] = []
        step = self.batch_size or MAX_AUTO_BATCH
        for start in range(0, len(queries), step):
            batch = self.processor.process_queries(list(queries[start : start + step]))
            batch = batch.to(self.device)
            with torch.inference_mode():
                embeddings = self.model(**batch).embeddings
            for row, mask in zip(embeddings, batch["attention_mask"].bool(), strict=True):
                vectors.append(row[mask].float().cpu().numpy())
        return vectors

    def page_patches(self, images: Sequence[Image.Image]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per page, every image-patch vector (float32, on CPU) and its DocPruner score, before pruning."""
        return list(self.iter_page_patches(images))

    def iter_page_patches(self, images: Iterable[Image.Image]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Per page, in order, its image-patch vectors and DocPruner scores.

        The score is the head-averaged last-layer attention from the global token to the patch.
        """
        batches = self._serial_batches(images) if self.preprocess_workers == 0 else self._pipelined_batches(images)
        try:
            for batch in batches:
                yield from self._encode_batch(batch)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    # -- model-specific bits, overridable -----------------------------------------

    def _image_token_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Which positions hold image-patch tokens (page content)."""
        return input_ids == self.processor.image_token_id

    def _global_token_positions(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """The token whose attention scores patches: [CLS], see pagehop.retrieval.docpruner."""
        return first_token_positions(attention_mask)

    def _last_attention_module(self) -> torch.nn.Module:
        """The language model's last self-attention layer (ModernBERT: fused ``Wqkv`` + rotary)."""
        module: torch.nn.Module = self.model.vlm.text_model.layers[-1].attn
        if getattr(module, "sliding_window", None) is not None:
            # A local-attention layer would let [CLS] see only nearby patches, not the page.
            raise ValueError("the last text layer uses sliding-window attention; DocPruner needs a global one")
        return module

    def _query_key_rows(
        self,
        module: Any,
        qkv: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        global_positions: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The global token's rotated query (batch, heads, d) and every rotated key (batch, heads, seq, d).

        Mirrors ModernBertAttention.forward: ``Wqkv`` output viewed as (3, heads, head_dim),
        then rotary embeddings on queries and keys (computed in float32 here).
        """
        batch, seq, _ = qkv.shape
        head_dim = int(module.head_dim)
        parts = qkv.view(batch, seq, 3, -1, head_dim)
        rows = torch.arange(batch, device=qkv.device)
        positions = global_positions.to(qkv.device)
        cos, sin = (t.to(torch.float32).expand(batch, seq, head_dim) for t in position_embeddings)
        query = _rotate(parts[rows, positions, 0].float(), cos[rows, positions, None], sin[rows, positions, None])
        keys = _rotate(parts[:, :, 1].float(), cos[:, :, None], sin[:, :, None]).transpose(1, 2)
        return query, keys

    # -- internals ----------------------------------------------------------------

    def _encode_batch(self, batch: PageBatch) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Forward one collated batch; on CUDA, measures the first batch to size the next ones."""
        on_cuda = self.device.type == "cuda"
        sizing = on_cuda and self.batch_size is None
        if sizing:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
        inputs = {
            name: tensor.to(self.device, non_blocking=on_cuda).to(self.dtype)
            if name == "pixel_values"
            else tensor.to(self.device, non_blocking=on_cuda)
            for name, tensor in batch.items()
        }
        try:
            global_positions = self._global_token_positions(inputs["attention_mask"])
            embeddings, scores = self._forward_with_global_attention(inputs, global_positions)
        except torch.OutOfMemoryError:
            rows = int(batch["input_ids"].shape[0])
            if rows == 1:
                raise
            del inputs
            torch.cuda.empty_cache()
            self.batch_size = max(1, rows // 2)
            for part in _split_batch(batch, self.batch_size):
                yield from self._encode_batch(part)
            return
        if sizing:
            per_page = (torch.cuda.max_memory_allocated(self.device) - before) / len(batch["input_ids"])
            free, _ = torch.cuda.mem_get_info(self.device)
            self.batch_size = batch_size_for_memory(free, per_page)
        image_mask = self._image_token_mask(inputs["input_ids"])
        for row in range(len(image_mask)):
            if not bool(image_mask[row].any()):
                raise RuntimeError("the processor produced no image tokens for a page")
            yield embeddings[row][image_mask[row]].float().cpu(), scores[row][image_mask[row]].cpu()

    def _serial_batches(self, images: Iterable[Image.Image]) -> Iterator[PageBatch]:
        chunk: list[Image.Image] = []
        for image in images:
            chunk.append(image.convert("RGB"))
            if len(chunk) >= (self.batch_size or 1):
                yield dict(self.processor.process_images(chunk))
                chunk = []
        if chunk:
            yield dict(self.processor.process_images(chunk))

    def _pipelined_batches(self, images: Iterable[Image.Image]) -> Iterator[PageBatch]:
        """Batches preprocessed by worker processes, fed and collated on a background thread.

        At most one batch plus ``2 * workers`` pages are in the pool and two collated batches
        wait for the model, so memory stays bounded however long the input is.
        """
        pool = self._worker_pool()
        ready: queue.Queue[PageBatch | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()
        pin = self.device.type == "cuda"

        def put(item: PageBatch | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            pending: list[Future[PageBatch]] = []
            window = 2 * self.preprocess_workers
            try:
                source = iter(images)
                exhausted = False
                while not stop.is_set():
                    while not exhausted and len(pending) < window + (self.batch_size or 1):
                        image = next(source, None)
                        if image is None:
                            exhausted = True
                        else:
                            pending.append(pool.submit(_preprocess_page, image))
                    if not pending:
                        break
                    # Before the first CUDA batch is measured, batches hold one page.
                    take = min(len(pending), self.batch_size or 1)
                    if take < (self.batch_size or 1) and not exhausted:
                        continue
                    parts = [future.result() for future in pending[:take]]
                    del pending[:take]
                    batch = collate_page_batches(parts, int(self.processor.tokenizer.pad_token_id))
                    if pin:
                        batch = {name: tensor.pin_memory() for name, tensor in batch.items()}
                    if not put(batch):
                        break
                    if self.batch_size is None:  # wait until the model has sized the batch
                        while self.batch_size is None and not stop.is_set():
                            stop.wait(0.01)
                put(None)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                put(exc)
            finally:
                for future in pending:
                    future.cancel()

        feeder = threading.Thread(target=produce, name="pagehop-page-preprocess", daemon=True)
        feeder.start()
        try:
            while True:
                item = ready.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            feeder.join()

    def _worker_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: forking a process that holds CUDA or torch threads is unsafe.
            self._pool = ProcessPoolExecutor(
                max_workers=self.preprocess_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_load_worker_processor,
                initargs=(str(self.model_path),),
            )
        return self._pool

    def _forward_with_global_attention(
        self, batch: Any, global_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings plus each row's head-averaged last-layer attention from its global token.

        A pre-hook on the last attention layer keeps its rotary embeddings; a hook on its
        fused projection then scores the global token's single attention row. Nothing of
        size (seq, seq) is ever built.
        """
        module: Any = self._last_attention_module()
        captured: list[torch.Tensor] = []
        rotary: list[tuple[torch.Tensor, torch.Tensor]] = []

        def keep_rotary(_module: torch.nn.Module, _args: Any, kwargs: dict[str, Any]) -> None:
            embeddings = kwargs.get("position_embeddings")
            if embeddings is None:
                raise RuntimeError("the last attention layer was called without rotary position embeddings")
            rotary.append(embeddings)

        def score_global_row(_module: torch.nn.Module, _inputs: Any, qkv: torch.Tensor) -> None:
            query, keys = self._query_key_rows(module, qkv, rotary[-1], global_positions)
            captured.append(attention_rows(query, keys, batch["attention_mask"], float(module.head_dim) ** -0.5))

        handles = [
            module.register_forward_pre_hook(keep_rotary, with_kwargs=True),
            module.Wqkv.register_forward_hook(score_global_row),
        ]
        try:
            with torch.inference_mode():
                embeddings = self.model(**batch).embeddings
        finally:
            for handle in handles:
                handle.remove()
        if len(captured) != 1:
            raise RuntimeError(f"expected one last-layer attention call, saw {len(captured)}")
        return embeddings, captured[0]


def batch_size_for_memory(free_bytes: int, bytes_per_page: float, cap: int = MAX_AUTO_BATCH) -> int:
    """Pages per batch that fit ``GPU_MEMORY_SHARE`` of the free memory, 1 to ``cap``."""
    if bytes_per_page <= 0:
        return cap
    return int(max(1, min(cap, GPU_MEMORY_SHARE * free_bytes // bytes_per_page)))


def collate_page_batches(parts: Sequence[PageBatch], pad_token_id: int) -> PageBatch:
    """Join single-page processor outputs into the batch the processor would have made.

    Token rows are padded on the LEFT (the ColModernVBERT processor's side) with the pad id
    and mask 0; tile stacks are padded at the end with all-zero tiles and masks, as the
    Idefics3 image processor does.
    """
    if not parts:
        raise ValueError("nothing to collate")
    seq = max(int(part["input_ids"].shape[1]) for part in parts)
    tiles = max(int(part["pixel_values"].shape[1]) for part in parts)
    out: dict[str, list[torch.Tensor]] = {name: [] for name in parts[0]}
    for part in parts:
        missing = seq - int(part["input_ids"].shape[1])
        for name, tensor in part.items():
            if name in ("input_ids", "attention_mask"):
                fill = pad_token_id if name == "input_ids" else 0
                tensor = torch.nn.functional.pad(tensor, (missing, 0), value=fill)
            elif name in ("pixel_values", "pixel_attention_mask"):
                extra = tiles - int(tensor.shape[1])
                if extra:
                    tensor = torch.cat([tensor, tensor.new_zeros((1, extra, *tensor.shape[2:]))], dim=1)
            out[name].append(tensor)
    return {name: torch.cat(tensors, dim=0) for name, tensors in out.items()}


def _split_batch(batch: PageBatch, size: int) -> Iterator[PageBatch]:
    rows = int(batch["input_ids"].shape[0])
    for start in range(0, rows, size):
        yield {name: tensor[start : start + size] for name, tensor in batch.items()}


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (the rotate-half form ModernBERT uses)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


# -- preprocessing worker processes ------------------------------------------------

_worker_processor: Any = None


def _load_worker_processor(model_path: str) -> None:
    global _worker_processor
    from transformers import ColModernVBertProcessor

    torch.set_num_threads(1)  # one page per process at a time: the pool is the parallelism
    _worker_processor = ColModernVBertProcessor.from_pretrained(model_path)


def _preprocess_page(image: Image.Image) -> PageBatch:
    return dict(_worker_processor.process_images([image.convert("RGB")]))
