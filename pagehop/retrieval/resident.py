"""Page vectors resident on an accelerator, scored exhaustively by MaxSim in torch.

``LocalPageIndex`` uses this when CUDA is present: every live page's vectors are copied
once to device memory (float16, the format the index stores, so nothing is rounded on the
way) and each query scores all of them with one matmul per block. The code is plain torch
and device-agnostic, so the same path runs (slowly) on a CPU in tests.

Layout: pages of one segment are cut into chunks of ``CHUNK_PAGES``; inside a chunk they
are sorted by length and packed into blocks of ``BLOCK_PAGES`` pages, each block padded to
its longest page by repeating the page's own last vector. A repeated vector never changes
a maximum, so no masking is needed and padding waste stays small. A segment that grows
(pages appended after loading) reloads only its last, partial chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

CHUNK_PAGES = 4096
BLOCK_PAGES = 512
# Largest (pages x padded length x query tokens) score tensor built at once.
_MAX_SCORE_ELEMENTS = 1 << 26

# Reads (vectors, ends) of local pages [start, stop) of a segment: vectors back to back
# (float16, (n, dim)) and each page's end offset relative to the first one.
ReadPages = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class _Block:
    local: torch.Tensor  # (pages,) int64 local page ids, on the device
    vectors: torch.Tensor  # (pages, padded length, dim) on the device


@dataclass
class _ResidentSegment:
    loaded_pages: int = 0
    # One list of blocks per chunk of CHUNK_PAGES pages; only the last chunk can be partial.
    chunks: list[list[_Block]] = field(default_factory=list)


class ResidentMaxSim:
    """Device copies of segments' page vectors and exhaustive MaxSim over them."""

    def __init__(self, device: str | torch.device, dtype: torch.dtype = torch.float16) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self._segments: dict[str, _ResidentSegment] = {}

    def sync(self, segments: dict[str, tuple[int, ReadPages]]) -> None:
        """Make the resident copy match ``segments``: name -> (committed pages, reader)."""
        for name in list(self._segments):
            if name not in segments:
                del self._segments[name]  # compacted away
        for name, (num_pages, read) in segments.items():
            resident = self._segments.setdefault(name, _ResidentSegment())
            if resident.loaded_pages == num_pages:
                continue
            if resident.loaded_pages > num_pages:  # cannot shrink in place: start over
                resident = self._segments[name] = _ResidentSegment()
            first_chunk = resident.loaded_pages // CHUNK_PAGES
            del resident.chunks[first_chunk:]  # the partial last chunk is rebuilt whole
            for start in range(first_chunk * CHUNK_PAGES, num_pages, CHUNK_PAGES):
                stop = min(start + CHUNK_PAGES, num_pages)
                resident.chunks.append(self._blocks(start, *read(start, stop)))
            resident.loaded_pages = num_pages

    def scores(self, name: str, query: np.ndarray) -> np.ndarray:
        """MaxSim of every loaded page of segment ``name``, in local page order (float32)."""
        resident = self._segments[name]
        q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32)).to(self.device, self.dtype)
        out = torch.empty(resident.loaded_pages, dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            for chunk in resident.chunks:
                for block in chunk:
                    out[block.local] = _block_maxsim(block.vectors, q)
        return out.cpu().numpy()

    def memory_bytes(self) -> int:
        return sum(
            block.vectors.numel() * block.vectors.element_size()
            for resident in self._segments.values()
            for chunk in resident.chunks
            for block in chunk
        )

    def _blocks(self, first_local: int, vectors: np.ndarray, ends: np.ndarray) -> list[_Block]:
        starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
        lengths = ends - starts
        order = np.argsort(lengths, kind="stable")
        blocks = []
        for begin in range(0, len(order), BLOCK_PAGES):
            pages = order[begin : begin + BLOCK_PAGES]
            width = int(lengths[pages].max())
            # Row j of a page is its vector min(j, length - 1): short pages repeat their last vector.
            offsets = np.minimum(np.arange(width)[None, :], lengths[pages, None] - 1) + starts[pages, None]
            padded = torch.from_numpy(np.ascontiguousarray(vectors[offsets]))
            blocks.append(
                _Block(
                    local=torch.from_numpy(pages + first_local).to(self.device),
                    vectors=padded.to(self.device, self.dtype),
                )
            )
        return blocks


def _block_maxsim(vectors: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(pages,) float32 MaxSim of a padded (pages, length, dim) block against (tokens, dim)."""
    pages, length, dim = vectors.shape
    step = max(1, _MAX_SCORE_ELEMENTS // max(1, length * q.shape[0]))
    parts = []
    for start in range(0, pages, step):
        part = vectors[start : start + step]
        sims = (part.reshape(-1, dim) @ q.T).view(part.shape[0], length, -1)
        parts.append(sims.amax(dim=1).to(torch.float32).sum(dim=1))
    return torch.cat(parts)
