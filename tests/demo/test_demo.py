"""The bundled demo end to end on the embedded default: ingest, knowledge graph, agent, citations."""

from pathlib import Path

from pagehop.config import Settings
from pagehop.demo import run_demo


def test_demo_answers_the_three_hop_question_with_citations(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    summary, answer = run_demo(settings)
    assert "3 documents ingested" in summary
    assert "graph" in summary  # the knowledge graph was built beside the text channel
    assert answer.answer == "Tallinn"
    assert answer.supported
    assert answer.answered_by == "no-llm policy"
    # The passage the question names and the passage its names lead to, with the answer, lead the citations.
    assert {(c.title, c.page) for c in answer.citations[:2]} == {
        ("Harbor Lane Robotics - Annual Review 2021", 1),
        ("Kestrel Optics", 1),
    }

    # A second run finds the sample already ingested and gives the same answer.
    summary, again = run_demo(settings)
    assert "0 documents ingested" in summary and "3 skipped" in summary
    assert again.answer == "Tallinn"
