"""Kill trials through the real command line: SIGKILLs at random (seeded) moments, then equal to a clean ingest.

A few trials per graph store; ``benchmarks/crash_trials.py`` runs the same code with 20 per store.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from pagehop.ingest.pipeline import AHEAD_GROUPS, TEXT_BATCH
from pagehop.testing.crash_trials import StoreConfig, build_passage_folder, format_table, run_store_trials
from pagehop.testing.tiny_models import tiny_colmodernvbert_path

TRIALS = 3


@pytest.mark.slow
@pytest.mark.parametrize("graph_store", ["networkx", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def test_killed_ingests_end_equal_to_a_clean_ingest(
    graph_store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    neo4j = request.getfixturevalue("neo4j_conn") if graph_store == "neo4j" else None
    result = run_store_trials(
        tmp_path,
        StoreConfig(graph_store, neo4j),
        tiny_colmodernvbert_path(),
        trials=TRIALS,
        seed=7,
        check_delete=graph_store == "networkx",  # the delete check costs two more runs; one store is enough here
    )
    print(format_table([result]))
    assert result.trials == TRIALS and result.episodes >= 1
    assert result.mismatches == 0, result.differences


@pytest.mark.slow
def test_ingests_killed_while_groups_are_parsed_ahead_end_equal_to_a_clean_ingest(tmp_path: Path) -> None:
    """Enough one-chunk passages for AHEAD_GROUPS full groups and a partial one: the kills land while groups
    are parsed in the spawned process, started groups are pending, and some groups are committed (networkx)."""
    passages = TEXT_BATCH * AHEAD_GROUPS + TEXT_BATCH // 2
    log: list[str] = []
    result = run_store_trials(
        tmp_path,
        StoreConfig("networkx"),
        tiny_colmodernvbert_path(),
        trials=TRIALS,
        seed=11,
        check_delete=False,
        build=functools.partial(build_passage_folder, count=passages),
        log=log.append,
    )
    print("\n".join(log), format_table([result]), sep="\n")
    assert f"{passages} chunks" in log[0]  # one chunk per passage: the groups fill
    assert result.trials == TRIALS and result.episodes >= 1
    assert result.mismatches == 0, result.differences
