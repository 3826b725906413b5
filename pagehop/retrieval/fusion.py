"""The one fusion of rankings in pagehop: reciprocal rank fusion (Cormack et al., 2009).

Every place that merges rankings — the text index (dense + BM25), the retriever (text, page and
title channels), the agent's stages (channels and sub-queries) — calls :func:`reciprocal_rank_fusion`
with a ``key`` saying when two items are the same thing. Hits and evidence are the same thing when
they point at the same page of the same document (:func:`page_key`), so a page hit and a text hit of
one page merge into one slot instead of taking two.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, TypeVar

RRF_K = 60  # the constant from the RRF paper; damps the weight of the very top ranks

T = TypeVar("T")


class OnPage(Protocol):
    @property
    def doc_id(self) -> str: ...

    @property
    def page(self) -> int | None: ...


def page_key(item: OnPage) -> tuple[str, int | None]:
    """What makes two hits the same evidence: the document and the page they point at."""
    return (item.doc_id, item.page)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[T]],
    key: Callable[[T], Hashable],
    weights: Sequence[float] | None = None,
) -> list[tuple[T, float]]:
    """Items of all rankings, best first, each with its fused score ``sum(w / (RRF_K + rank))``.

    Items with the same ``key`` merge: the best-ranked copy is kept (the first of the earliest ranking
    on ties) and their scores add up. Ties keep first-seen order, so equal-weight rankings interleave.
    """
    if weights is not None and len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    fused: dict[Hashable, list] = {}  # key -> [kept item, score, best rank, first seen]
    for index, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[index]
        for rank, item in enumerate(ranking):
            entry = fused.get(key(item))
            if entry is None:
                fused[key(item)] = [item, weight / (RRF_K + rank + 1), rank, len(fused)]
                continue
            entry[1] += weight / (RRF_K + rank + 1)
            if rank < entry[2]:
                entry[0], entry[2] = item, rank
    ordered = sorted(fused.values(), key=lambda entry: (-entry[1], entry[3]))
    return [(entry[0], entry[1]) for entry in ordered]
