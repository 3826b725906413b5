"""Walking a relation graph held as a networkx MultiDiGraph; both backends share these.

The embedded store walks its whole graph; the Neo4j store pulls a bounded neighbourhood
(``bounded_neighbourhood`` with a Cypher fetcher) into a small MultiDiGraph and walks that,
so paths, neighbours and PageRank come out the same on both.

Graph layout: node = entity id with ``name``; edge key = relation type; edge attributes
``description`` and ``evidence``: {(doc_id, chunk_id): page}. Walks ignore direction; a step
taken against an edge's direction is written ``^TYPE`` in ``GraphPath.relations``
(``A -^DIRECTED-> B`` reads "B directed A").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import networkx as nx

from pagehop.graph.base import GraphPath, Mention, Relation

MAX_ENUMERATED_PATHS = 1000  # enough to sort the shortest few out of
NeighbourFetcher = Callable[[list[str]], dict[str, set[str]]]


def undirected_neighbours(graph: nx.MultiDiGraph, node: str) -> set[str]:
    return set(graph.successors(node)) | set(graph.predecessors(node))


def local_fetcher(graph: nx.MultiDiGraph) -> NeighbourFetcher:
    return lambda frontier: {n: undirected_neighbours(graph, n) for n in frontier if n in graph}


def bounded_neighbourhood(
    fetch: NeighbourFetcher, seed_ids: Iterable[str], known: Callable[[str], bool], hops: int, limit: int
) -> list[str]:
    """Breadth-first in both directions: seeds first, neighbours in id order, at most ``limit`` ids."""
    selected = [s for s in dict.fromkeys(seed_ids) if known(s)][:limit]
    seen = set(selected)
    frontier = list(selected)
    for _ in range(hops):
        if not frontier:
            break
        neighbours = fetch(frontier)
        next_frontier: list[str] = []
        for node in frontier:
            for neighbour in sorted(neighbours.get(node, set()) - seen):
                if len(selected) >= limit:
                    return selected
                seen.add(neighbour)
                selected.append(neighbour)
                next_frontier.append(neighbour)
        frontier = next_frontier
    return selected


def neighbour_paths(graph: nx.MultiDiGraph, entity_id: str, hops: int, limit: int) -> list[GraphPath]:
    """Every simple walk of 1..``hops`` steps from ``entity_id``, shortest first, at most ``limit``."""
    if entity_id not in graph:
        return []
    paths: list[GraphPath] = []
    frontier: list[list[str]] = [[entity_id]]
    for _ in range(hops):
        next_frontier: list[list[str]] = []
        for walk in frontier:
            for neighbour in sorted(undirected_neighbours(graph, walk[-1])):
                if neighbour in walk:
                    continue
                extended = [*walk, neighbour]
                paths.append(path_of(graph, extended))
                if len(paths) >= limit:
                    return paths
                next_frontier.append(extended)
        frontier = next_frontier
    return paths


def simple_paths(graph: nx.MultiDiGraph, source_id: str, target_id: str, max_hops: int, limit: int) -> list[GraphPath]:
    """Simple paths of at most ``max_hops`` steps, shortest first, at most ``limit``.

    A depth-first search pruned by the breadth-first distance to the target: it only steps onto
    nodes that can still reach the target in time, so hubs do not blow it up. A node stepped onto is
    at least one step from the source, so distances up to ``max_hops - 1`` are all it needs (the
    search's last ring, the largest around a hub, is never read).
    """
    if source_id not in graph or target_id not in graph or source_id == target_id:
        return []
    to_target = _distances(graph, target_id, max_hops - 1)
    found: list[list[str]] = []
    stack: list[list[str]] = [[source_id]]
    while stack and len(found) < MAX_ENUMERATED_PATHS:
        walk = stack.pop()
        steps_left = max_hops - len(walk)
        # filtered before sorting: a hub's neighbours are many, the ones near the target few
        onward = [n for n in undirected_neighbours(graph, walk[-1]) if to_target.get(n, max_hops) <= steps_left]
        for neighbour in sorted(onward):
            if neighbour in walk:
                continue
            if neighbour == target_id:
                found.append([*walk, neighbour])
            else:
                stack.append([*walk, neighbour])
    return [path_of(graph, walk) for walk in sorted(found, key=lambda w: (len(w), w))[:limit]]


def _distances(graph: nx.MultiDiGraph, start: str, cutoff: int) -> dict[str, int]:
    """Steps from ``start`` to every node within ``cutoff``, edges taken both ways (a breadth-first
    search over the adjacency: an undirected view of the graph costs more to build than the search)."""
    distance = {start: 0}
    frontier = [start]
    for step in range(1, cutoff + 1):
        next_frontier = []
        for node in frontier:
            for neighbour in undirected_neighbours(graph, node):
                if neighbour not in distance:
                    distance[neighbour] = step
                    next_frontier.append(neighbour)
        frontier = next_frontier
    return distance


def path_of(graph: nx.MultiDiGraph, walk: Sequence[str]) -> GraphPath:
    """The GraphPath along ``walk``, each step citing its relation's first evidence."""
    relations: list[str] = []
    provenance: list[Mention] = []
    for a, b in itertools.pairwise(walk):
        if graph.has_edge(a, b):
            key, data = min(graph[a][b].items())
            relations.append(key)
        else:
            key, data = min(graph[b][a].items())
            relations.append("^" + key)
        (doc_id, chunk_id), page = min(data["evidence"].items())
        provenance.append(Mention(entity_id=a, doc_id=doc_id, chunk_id=chunk_id, page=page))
    names = [graph.nodes[n]["name"] for n in walk]
    return GraphPath(entity_ids=list(walk), names=names, relations=relations, provenance=provenance)


def edges_among(graph: nx.MultiDiGraph, nodes: Sequence[str]) -> list[tuple[str, str]]:
    """(source, target) once per relation between ``nodes``, read straight off the adjacency: a
    subgraph view filters every edge through Python, and was the larger part of PageRank's time on
    the 2Wiki graph (cProfile of 15 questions)."""
    inside = set(nodes)
    return [
        (source, target)
        for source in inside
        for target, by_type in graph.succ[source].items()
        if target in inside
        for _ in by_type
    ]


def relations_in(graph: nx.MultiDiGraph, nodes: Sequence[str]) -> list[Relation]:
    """One Relation per (source, target, type) among ``nodes``, citing its first evidence."""
    relations = []
    for source, target, key, data in graph.subgraph(nodes).edges(keys=True, data=True):
        (doc_id, chunk_id), page = min(data["evidence"].items())
        relations.append(
            Relation(
                source_id=source,
                target_id=target,
                type=key,
                description=data["description"],
                doc_id=doc_id,
                chunk_id=chunk_id,
                page=page,
            )
        )
    return relations
