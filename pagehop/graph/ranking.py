"""Personalized PageRank over a bounded subgraph, shared by both store backends.

Chunk ranking, HippoRAG-style: after PPR over the entity graph (edges undirected, parallel
relations add weight), a chunk's score is the SUM of the PPR scores of the entities it mentions.
We chose the sum over a bipartite entity-chunk graph because it keeps PPR on the (smaller)
entity graph, needs no chunk nodes in the walk, and lets a chunk that mentions two seeds'
neighbourhoods outrank one that mentions only one - the multi-hop case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TypeAlias

import numpy as np
from scipy import sparse

DAMPING = 0.5  # HippoRAG's setting: restart often, stay close to the seeds.
MAX_ITERATIONS = 100  # networkx's defaults: at DAMPING 0.5 the error halves each step
TOLERANCE = 1e-6  # per node
Matrix: TypeAlias = sparse.csr_array  # a relation matrix


def personalized_pagerank(
    entity_ids: Iterable[str],
    relations: Iterable[tuple[str, str]],
    chunk_mentions: Mapping[str, Iterable[str]],
    seeds: Mapping[str, float],
    top_k: int,
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Rank entities by PPR from ``seeds`` and chunks by the sum of their entities' scores.

    ``relations`` holds one (source, target) pair per relation; ``chunk_mentions`` maps each
    entity id to the chunk ids that mention it.
    """
    nodes, adjacency = relation_matrix(entity_ids, relations)
    return rank_by_pagerank(nodes, adjacency, chunk_mentions, seeds, top_k)


def relation_matrix(entity_ids: Iterable[str], relations: Iterable[tuple[str, str]]) -> tuple[list[str], Matrix]:
    """The nodes (``entity_ids`` first, then any other end of a relation) and the symmetric matrix whose
    entry counts the relations between two of them either way; a relation of a node to itself is left out."""
    nodes = list(dict.fromkeys(entity_ids))
    index = {node: i for i, node in enumerate(nodes)}
    sources, targets = [], []
    for source, target in relations:
        if source == target:
            continue
        for node in (source, target):
            if node not in index:
                index[node] = len(nodes)
                nodes.append(node)
        sources.append(index[source])
        targets.append(index[target])
    rows = np.array(sources + targets, dtype=np.int64)
    cols = np.array(targets + sources, dtype=np.int64)
    shape = (len(nodes), len(nodes))
    return nodes, sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=shape)  # duplicates add up


def rank_by_pagerank(
    nodes: list[str],
    adjacency: Matrix,
    chunk_mentions: Mapping[str, Iterable[str]],
    seeds: Mapping[str, float],
    top_k: int,
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """:func:`personalized_pagerank` over a matrix of :func:`relation_matrix`'s (or rows and columns of one)."""
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    index = {node: i for i, node in enumerate(nodes)}
    personalization = np.zeros(len(nodes))
    for node, weight in seeds.items():
        if node in index and weight > 0:
            personalization[index[node]] = weight
    if not personalization.any():
        return [], []
    scores = _pagerank(adjacency, personalization / personalization.sum())
    chunk_scores: dict[str, float] = defaultdict(float)
    for entity_id, score in zip(nodes, scores.tolist(), strict=True):
        for chunk_id in chunk_mentions.get(entity_id, ()):
            chunk_scores[chunk_id] += score
    return _top(nodes, scores, top_k), _top(list(chunk_scores), np.array(list(chunk_scores.values())), top_k)


def _pagerank(adjacency: Matrix, restart: np.ndarray) -> np.ndarray:
    """networkx's ``pagerank`` (its scipy power iteration) over ``adjacency``, without building a networkx
    graph per query: that and its conversion to a sparse matrix took about half of PageRank's time
    (py-spy, MuSiQue questions). A node without edges sends its score back along the restart vector, as
    networkx does."""
    n = adjacency.shape[0]
    out_weight = np.asarray(adjacency.sum(axis=1)).ravel()
    dangling = out_weight == 0
    inverse = np.divide(1.0, out_weight, out=np.zeros(n), where=~dangling)
    transition = sparse.diags_array(inverse) @ adjacency
    x = np.full(n, 1.0 / n)
    for _ in range(MAX_ITERATIONS):
        last = x
        x = DAMPING * (x @ transition + x[dangling].sum() * restart) + (1 - DAMPING) * restart
        if np.abs(x - last).sum() < n * TOLERANCE:
            break
    return x


def _top(keys: list[str], scores: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The ``k`` best positive scores, ties broken by key so both backends return the same order. Only
    the scores at or above the k-th best are sorted: sorting every entity and chunk of a neighbourhood
    took 6.5 % of the samples with the graph channel on (py-spy, 60 2Wiki questions)."""
    candidates = np.flatnonzero(scores > 0)
    if len(candidates) > k:
        kth_best = np.partition(scores[candidates], len(candidates) - k)[len(candidates) - k]
        candidates = candidates[scores[candidates] >= kth_best]  # every tie with the k-th stays in the sort
    ranked = sorted(candidates.tolist(), key=lambda i: (-scores[i], keys[i]))
    return [(keys[i], float(scores[i])) for i in ranked[:k]]
