"""DocPruner (arXiv 2509.23883): drop the image-patch vectors a page does not need.

For every page, the last layer's attention from one *global* token to each image-patch
token, averaged over heads, scores how much that patch matters to the page as a whole.
The page keeps the patches scoring strictly above ``mean + k * std`` of its own scores
(``k`` = ``settings.ingest.docpruner_k``), and always at least its best patch. The
threshold adapts per page: a dense table keeps many patches, a mostly blank page few.
``std`` is the population standard deviation (ddof 0) of that page's patch scores.

Which token is global for ColModernVBERT
----------------------------------------
The paper takes the EOS / last token for causal VLM retrievers (ColQwen family): with
causal attention only the final token has seen every patch. ColModernVBERT's language
model is ModernBERT, a *bidirectional* encoder: every token sees every patch, so "last"
has no special standing, and the retriever adds no pooling of its own. The token
ModernBERT-family models train to summarise a sequence is [CLS], the first real token:
``ModernBertForSequenceClassification`` and ``ModernVBertForSequenceClassification``
pool position 0 with the default ``classifier_pooling="cls"``, and
``ModernBertForMultipleChoice`` locates [CLS] under left padding with
``attention_mask.argmax(-1)``. The ColModernVBERT processor pads on the LEFT, so [CLS]
sits at each row's first non-pad position (not at index 0) and the final [SEP] at -1;
on the tiny test model the first real token of every page row is indeed [CLS] and the
last is [SEP] (checked in tests/retrieval/test_colmodernvbert.py). We therefore use the
first non-pad token ([CLS]). ``last_token_positions`` is kept for encoders that follow
the paper's causal (EOS) convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PruneResult:
    """Which patches one page keeps, and the numbers that decided it."""

    keep: torch.Tensor  # sorted int64 indices into the page's patches
    num_patches: int
    threshold: float
    mean: float
    std: float

    @property
    def kept(self) -> int:
        return int(self.keep.numel())

    def stats(self) -> dict[str, float]:
        return {
            "num_patches": float(self.num_patches),
            "kept": float(self.kept),
            "threshold": self.threshold,
            "mean": self.mean,
            "std": self.std,
        }


def prune_page(scores: torch.Tensor, k: float) -> PruneResult:
    """Keep the patches whose score is strictly above ``mean + k * std`` (at least the best one).

    ``scores``: (num_patches,) attention from the global token to each patch of one page.
    A large ``k`` keeps only the best patch; a very negative ``k`` keeps every patch.
    """
    if scores.ndim != 1 or scores.numel() == 0:
        raise ValueError(f"expected a non-empty 1-D tensor of patch scores, got shape {tuple(scores.shape)}")
    scores = scores.detach().to(torch.float32)
    if not torch.isfinite(scores).all():
        raise ValueError("patch scores contain NaN or infinity")
    mean = scores.mean()
    std = scores.std(correction=0)
    threshold = mean + k * std
    keep = torch.nonzero(scores > threshold).flatten()
    if keep.numel() == 0:
        keep = scores.argmax().reshape(1)
    return PruneResult(
        keep=keep.cpu(),
        num_patches=int(scores.numel()),
        threshold=float(threshold),
        mean=float(mean),
        std=float(std),
    )


def first_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's first real token: [CLS] under left (or no) padding."""
    if not bool(attention_mask.any(dim=-1).all()):
        raise ValueError("a row of the attention mask has no real token")
    # argmax returns the first maximal element, i.e. the first 1 in the row.
    return attention_mask.to(torch.int64).argmax(dim=-1)


def last_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token (EOS for causal retrievers), whatever the padding side."""
    if not bool(attention_mask.any(dim=-1).all()):
        raise ValueError("a row of the attention mask has no real token")
    seq_len = attention_mask.shape[-1]
    return seq_len - 1 - attention_mask.to(torch.int64).flip(-1).argmax(dim=-1)


def attention_rows(queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor, scaling: float) -> torch.Tensor:
    """Softmax attention of ONE query row per sequence over all its keys, averaged over heads.

    ``queries``: (batch, heads, head_dim), each sequence's global token after any position
    encoding; ``keys``: (batch, heads, seq, head_dim); ``key_mask``: (batch, seq), nonzero for
    real tokens. Returns (batch, seq) float32, zero on padding. This is the one row of the
    last layer's (seq, seq) attention matrix DocPruner reads, so the model itself can run
    fused (SDPA / flash) attention, which never materialises the weights.
    """
    if (
        queries.ndim != 3
        or keys.ndim != 4
        or keys.shape[:2] != queries.shape[:2]
        or keys.shape[-1] != queries.shape[-1]
    ):
        raise ValueError(
            f"expected (batch, heads, d) queries and (batch, heads, seq, d) keys, got "
            f"{tuple(queries.shape)} and {tuple(keys.shape)}"
        )
    logits = torch.einsum("bhd,bhsd->bhs", queries.to(torch.float32), keys.to(torch.float32)) * scaling
    real = key_mask.to(device=logits.device, dtype=torch.bool)[:, None, :]
    logits = logits.masked_fill(~real, float("-inf"))
    return logits.softmax(dim=-1).mean(dim=1)
