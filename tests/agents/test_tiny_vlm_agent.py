"""The whole agent loop on the tiny random Qwen3-VL: garbage answers, but every stage is schema-valid
and the loop completes within its budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.config import AgentSettings
from pagehop.engine import Pagehop
from pagehop.llm.transformers_llm import ASCII_CHARS, TransformersLLM
from pagehop.testing.tiny_models import tiny_qwen3vl_path


@pytest.fixture(scope="module")
def tiny_vlm() -> Iterator[TransformersLLM]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield TransformersLLM(tiny_qwen3vl_path(), max_string_chars=8, max_items=2, string_chars=ASCII_CHARS)
    torch.set_num_threads(threads)


def test_loop_completes_within_budget(
    tiny_vlm: TransformersLLM, wiki_retriever: WorkspaceRetriever, tmp_path: Path
) -> None:
    settings = AgentSettings(max_rounds=2, max_llm_calls=5, max_sub_queries=2, hits_per_query=2, page_images=1)
    with Pagehop(wiki_retriever, tiny_vlm, settings, threads_path=tmp_path / "threads.sqlite") as engine:
        answer = engine.ask("Who is the mother of the director of film Atomised (Film)?")
    assert answer.usage.llm_calls <= 5
    assert answer.trace[0].stage == "decompose"
    assert answer.trace[0].answered_by == tiny_vlm.name
    assert answer.stop_reason in {"verified", "round budget", "nothing new to search"}
    assert isinstance(answer.answer, str)
    assert answer.trace[-1].stage in {"verify", "expand"}
    for citation in answer.citations:  # whatever it cites must be real evidence
        assert citation.doc_id and citation.evidence_id.startswith("E")
