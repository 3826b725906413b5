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

import networkx as nx

DAMPING = 0.5  # HippoRAG's setting: restart often, stay close to the seeds.


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
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    graph = nx.Graph()
    graph.add_nodes_from(entity_ids)
    for source, target in relations:
        if source == target:
            continue
        if graph.has_edge(source, target):
            graph[source][target]["weight"] += 1.0
        else:
            graph.add_edge(source, target, weight=1.0)
    personalization = {node: weight for node, weight in seeds.items() if node in graph and weight > 0}
    if not personalization:
        return [], []
    scores = nx.pagerank(graph, alpha=DAMPING, personalization=personalization, weight="weight")
    entity_ranking = _top(scores.items(), top_k)
    chunk_scores: dict[str, float] = defaultdict(float)
    for entity_id, score in scores.items():
        for chunk_id in chunk_mentions.get(entity_id, ()):
            chunk_scores[chunk_id] += score
    return entity_ranking, _top(chunk_scores.items(), top_k)


def _top(items: Iterable[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    # Ties broken by id so both backends return the same order.
    ranked = sorted(((key, float(score)) for key, score in items if score > 0), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:k]
