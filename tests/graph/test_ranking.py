"""PageRank without networkx at query time: the same scores as ``networkx.pagerank`` on the graph the
old code built (undirected, one unit of weight per relation, self-relations dropped)."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from pagehop.graph.ranking import DAMPING, personalized_pagerank
from pagehop.graph.walks import simple_paths


def _networkx_scores(nodes: list[str], relations: list[tuple[str, str]], seeds: dict[str, float]) -> dict[str, float]:
    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    for source, target in relations:
        if source == target:
            continue
        if graph.has_edge(source, target):
            graph[source][target]["weight"] += 1.0
        else:
            graph.add_edge(source, target, weight=1.0)
    return nx.pagerank(graph, alpha=DAMPING, personalization=seeds, weight="weight")


@pytest.mark.parametrize("seed", range(5))
def test_scores_and_order_match_networkx(seed: int) -> None:
    rng = random.Random(seed)
    nodes = [f"e{i:03d}" for i in range(rng.randint(20, 120))]
    # parallel and reversed relations, self-relations and isolated nodes (dangling) included
    relations = [(rng.choice(nodes[:-5]), rng.choice(nodes[:-5])) for _ in range(len(nodes) * 2)]
    relations += relations[:10] + [(t, s) for s, t in relations[10:20]]
    seeds = {rng.choice(nodes): rng.uniform(0.1, 1.0) for _ in range(3)} | {nodes[-1]: 0.2}
    mentions = {node: [f"c{rng.randint(0, 30)}" for _ in range(rng.randint(0, 3))] for node in nodes}

    entities, chunks = personalized_pagerank(nodes, relations, mentions, seeds, top_k=len(nodes))

    expected = _networkx_scores(nodes, relations, seeds)
    assert [e for e, _ in entities] == sorted((e for e in expected if expected[e] > 0), key=lambda e: (-expected[e], e))
    for entity, score in entities:
        assert score == pytest.approx(expected[entity], abs=1e-12)
    chunk_totals: dict[str, float] = {}
    for node, chunk_ids in mentions.items():
        for chunk in chunk_ids:
            chunk_totals[chunk] = chunk_totals.get(chunk, 0.0) + expected[node]
    assert [c for c, _ in chunks] == sorted(chunk_totals, key=lambda c: (-chunk_totals[c], c))[: len(chunks)]


def test_top_k_keeps_ties_at_the_cut_in_id_order() -> None:
    # a star: the leaves tie, so which of them make the top 3 is decided by id alone
    leaves = [f"leaf{i}" for i in (7, 2, 9, 4, 1)]
    relations = [("hub", leaf) for leaf in leaves]
    mentions = {leaf: [f"c-{leaf}"] for leaf in leaves} | {"hub": ["c-hub", "c-leaf9"]}
    entities, chunks = personalized_pagerank(["hub", *leaves], relations, mentions, {"hub": 1.0}, top_k=3)
    assert [e for e, _ in entities] == ["hub", "leaf1", "leaf2"]
    assert entities[1][1] == entities[2][1]
    # c-leaf9 is mentioned by the hub and a leaf, so it sums both; the other leaves' chunks tie
    assert [c for c, _ in chunks] == ["c-leaf9", "c-hub", "c-leaf1"]


def test_seeds_outside_the_graph_rank_nothing() -> None:
    assert personalized_pagerank(["a", "b"], [("a", "b")], {}, {"z": 1.0}, top_k=3) == ([], [])
    assert personalized_pagerank(["a", "b"], [("a", "b")], {}, {"a": 0.0}, top_k=3) == ([], [])
    with pytest.raises(ValueError, match="top_k"):
        personalized_pagerank(["a"], [], {}, {"a": 1.0}, top_k=0)


def test_simple_paths_walk_both_directions_shortest_first() -> None:
    graph = nx.MultiDiGraph()
    for node in "abcde":
        graph.add_node(node, name=node.upper())
    evidence = {"evidence": {("d1", "c1"): 1}, "description": ""}
    for source, target in [("a", "b"), ("c", "b"), ("c", "d"), ("a", "e"), ("e", "d")]:
        graph.add_edge(source, target, key="R", **evidence)
    paths = simple_paths(graph, "a", "d", max_hops=3, limit=5)
    assert [p.entity_ids for p in paths] == [["a", "e", "d"], ["a", "b", "c", "d"]]
    assert paths[1].relations == ["R", "^R", "R"]  # b <- c is walked against its direction
    assert simple_paths(graph, "a", "d", max_hops=1, limit=5) == []
