"""Ablations applied to the engine: settings, and a retriever with a channel hidden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pagehop.agents.retriever import GraphFact
from pagehop.config import Settings
from pagehop.eval.engine_adapter import ChannelFilter, ablated_settings
from pagehop.eval.runner import Ablation
from pagehop.schema import Hit


class BothChannels:
    def search(self, query: str, k: int) -> list[Hit]:
        return [Hit(channel="text", doc_id="d", page=1, score=1.0, text=query)][:k]

    def graph_search(self, query: str, k: int) -> list[GraphFact]:
        return [GraphFact(text=f"{query} -[rel]-> x", doc_id="d", page=2)][:k]

    def page_image(self, doc_id: str, page: int) -> Path | None:
        return Path(f"{doc_id}-{page}.png")


def test_channel_filter_hides_one_channel() -> None:
    documents = ChannelFilter(BothChannels(), "documents")
    assert len(documents.search("q", 5)) == 1 and documents.graph_search("q", 5) == []
    graph = ChannelFilter(BothChannels(), "graph")
    assert graph.search("q", 5) == [] and len(graph.graph_search("q", 5)) == 1
    both = ChannelFilter(BothChannels(), "both")
    assert len(both.search("q", 5)) == 1 and len(both.graph_search("q", 5)) == 1
    assert both.page_image("d", 3) == Path("d-3.png")
    with pytest.raises(ValueError, match="channels must be"):
        ChannelFilter(BothChannels(), "text")


def test_ablated_settings() -> None:
    settings = Settings(llm={"base_url": "http://127.0.0.1:9/v1"})
    changed = ablated_settings(settings, Ablation(max_rounds=1, docpruner_k=0.5, use_llm=False))
    assert (changed.agent.max_rounds, changed.ingest.docpruner_k, changed.llm.base_url) == (1, 0.5, None)
    # the original is untouched, and an empty ablation changes nothing
    assert settings.llm.base_url == "http://127.0.0.1:9/v1"
    assert ablated_settings(settings, Ablation()) == settings


def test_the_real_engine_runs_under_the_runner(tmp_path: Path) -> None:
    """Pagehop (no LLM) as the system: its Answer, trace and usage land in the records as they should."""
    from pagehop.eval.engine_adapter import engine_for_eval
    from pagehop.eval.runner import PREDICTIONS_FILE, load_predictions, run_eval

    dataset = tmp_path / "tiny.jsonl"
    questions = [
        {"id": "h", "question": "Who was Hamlet written by?", "answers": ["Shakespeare"]},
        {"id": "p", "question": "What is the capital of France?", "answers": ["Paris"]},
    ]
    dataset.write_text("".join(json.dumps(q) + "\n" for q in questions))
    with engine_for_eval(Settings(), BothChannels(), Ablation(name="no-llm", use_llm=False, max_rounds=1)) as engine:
        # two questions at once: the engine is shared by the runner's threads
        result = run_eval(dataset, out_dir=tmp_path / "run", system=engine, concurrency=2, progress=False, report=False)
    assert (result["n"], result["n_errors"], result["cost.llm_calls_mean"]) == (2, 0, 0.0)
    for record in load_predictions(tmp_path / "run" / PREDICTIONS_FILE).values():
        assert record.trace[0].startswith("[decompose r0] ")
        assert record.answered_by
        assert "decompose" in record.cost.stage_seconds
