"""Inline citation markers placed after the sentences that state each claim."""

from __future__ import annotations

import html

from pagehop.agents.citations import cite_claims, render_marked
from pagehop.agents.state import Answer, Citation, Claim, Evidence

EVIDENCE = [
    Evidence(id="E1", sub_query_id="1", channel="text", doc_id="kestrel", page=1, text="Harbor Lane acquired Kestrel"),
    Evidence(id="E2", sub_query_id="2", channel="text", doc_id="harbor", page=1, text="founded by Mirela Voss"),
    Evidence(id="E3", sub_query_id="3", channel="text", doc_id="harbor", page=1, text="grew up in Tallinn"),
    Evidence(id="E4", sub_query_id="3", channel="graph", doc_id="harbor", page=1, text="x", graph_path="A -R-> B"),
]
CITATIONS = [
    Citation(doc_id="kestrel", page=1, evidence_id="E1"),
    Citation(doc_id="harbor", page=1, evidence_id="E2"),  # E3 is the same page: it cites [2] too
    Citation(doc_id="harbor", page=1, evidence_id="E4", graph_path="A -R-> B"),
]
ANSWER = "Kestrel Optics was acquired by Harbor Lane Robotics. Its founder, Mirela Voss, was born in Tallinn."


def test_markers_follow_the_sentence_that_states_each_claim() -> None:
    claims = [
        Claim(text="Mirela Voss was born in Tallinn", evidence_ids=["E3", "E4"]),
        Claim(text="Harbor Lane Robotics acquired Kestrel Optics", evidence_ids=["E1"]),
    ]
    cited = cite_claims(ANSWER, claims, EVIDENCE, CITATIONS, supported=True)
    assert [c.citations for c in cited] == [[2, 3], [1]]
    assert all(c.supported for c in cited)
    assert render_marked(ANSWER, cited) == (
        "Kestrel Optics was acquired by Harbor Lane Robotics[1]. Its founder, Mirela Voss, was born in Tallinn[2][3]."
    )


def test_unsupported_and_unplaceable_claims() -> None:
    claims = [
        Claim(text="Harbor Lane Robotics acquired Kestrel Optics", evidence_ids=["E1"]),
        Claim(text="The deal closed in winter", evidence_ids=[]),  # shares no word with the answer
    ]
    cited = cite_claims(ANSWER, claims, EVIDENCE, CITATIONS, supported=False)
    assert [c.supported for c in cited] == [False, False]
    marked = render_marked(ANSWER, cited)
    assert marked.startswith("Kestrel Optics was acquired by Harbor Lane Robotics[1][unverified]. Its")
    assert marked.endswith("born in Tallinn.[unverified]")
    # Only claims with a source count as supported, whatever the verdict.
    assert [c.supported for c in cite_claims(ANSWER, claims, EVIDENCE, CITATIONS, supported=True)] == [True, False]


def test_the_answer_model_renders_the_same_markers_for_every_client() -> None:
    claims = cite_claims("Tallinn", [Claim(text="born in: Tallinn", evidence_ids=["E3"])], EVIDENCE, CITATIONS, True)
    answer = Answer(question="q", answer="Tallinn", citations=CITATIONS, claims=claims)
    assert answer.marked_answer == "Tallinn[2]"
    assert answer.model_dump()["marked_answer"] == "Tallinn[2]"  # in the JSON API's answer
    linked = render_marked(
        "a < b", answer.claims, marker=lambda n: f'<a href="#s{n}">[{n}]</a>', text=html.escape
    )  # a UI's own rendering of the same positions
    assert linked == 'a &lt; b<a href="#s2">[2]</a>'


def test_a_graph_fact_of_a_cited_page_is_listed_with_its_path() -> None:
    """Plain-text source lists (the terminal, the OpenAI-compatible content) tell a page's text from a graph
    fact found on the same page."""
    page, fact = CITATIONS[1].model_copy(update={"title": "Harbor Lane"}), CITATIONS[2]
    assert page.label() == "Harbor Lane, p. 1 (harbor)"
    assert fact.label() == "harbor, p. 1 (harbor) via A -R-> B"
