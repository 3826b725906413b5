"""The chain's last fact among the cited passages, on a small hand-made chain (real spaCy, MiniLM, BM25).

Ported from the fifth pass (branch hops5): the last resolved hop's best page takes a cited slot when the
coverage order ranks it below the five, not when the hop went astray, and not the slot of a passage that
names the question's names. The page its answer was read from does too, and takes the second place when
the answer's sentence names what the hop asked about (fourteenth pass)."""

from __future__ import annotations

import pytest

from pagehop.agents import policy as policy_module
from pagehop.agents.policy import CITED_PASSAGES, NoLLMPolicy
from pagehop.agents.state import Evidence, Fact, SubQuery


@pytest.fixture(scope="module")
def policy() -> NoLLMPolicy:
    return NoLLMPolicy()


def _evidence(title: str, body: str, number: int, sub_query: str = "1") -> Evidence:
    return Evidence(
        id=f"E{number}", sub_query_id=sub_query, channel="text", doc_id=f"d{number}", title=title, text=body
    )


CHAIN_QUESTION = "What is the name of the river in the town where Ilse Marrow was born?"
CHAIN_PASSAGES = {
    # round-one passages that share the question's words and names; they name the town as the last hop's
    # passage does, so that mention gives it no place above them
    "Ilse Marrow": "Ilse Marrow was a painter born in Venn, a town of Dravia.",
    "Rivers of towns": "The river of a town is often named in the town's name; a town where a painter was born "
    "may name its river after her, as Venn did.",
    "Town names": "The name of a town where people were born, such as Venn, often comes from the river that flows "
    "in it.",
    "Painters born in towns": "Many painters were born in a town by a river whose name they painted, in Venn too.",
    "River name": "A river name is the name of the river, and a town such as Venn may be named after it.",
    "Born by the river": "Born by the River is the name of a painting of Venn and its river.",
}


def _chain(last_body: str, passages: dict[str, str] = CHAIN_PASSAGES) -> tuple[list[SubQuery], list[Evidence]]:
    """The question's chain, its last hop (grounded with the town) listed after bridge sub-queries that each
    brought a passage sharing the question's words: the last hop's own passage (``last_body``) ranks last."""
    titles = list(passages)
    sub_queries = [
        SubQuery(id="1", text=CHAIN_QUESTION, status="answered", answer="Venn"),
        SubQuery(id="2", text="which town where Ilse Marrow was born", status="answered", answer="Venn"),
    ]
    evidence = [_evidence(titles[0], passages[titles[0]], 0, sub_query="2")]
    for i, title in enumerate(titles[1:], start=1):
        sub_queries.append(SubQuery(id=str(3 + i), text=title, status="answered", answer=title))
        evidence.append(_evidence(title, passages[title], i, sub_query=str(3 + i)))
    sub_queries.append(
        SubQuery(
            id="3",
            text="What is the name of the river in #2?",
            depends_on=["2"],
            grounded="What is the name of the river in Venn?",
            status="answered",
        )
    )
    evidence.append(_evidence("Lisk", last_body, 99, sub_query="3"))
    return sub_queries, evidence


def test_the_last_hops_passage_takes_the_fifth_cited_slot(policy: NoLLMPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    sub_queries, evidence = _chain("The Lisk is a stream that flows through Venn and Ostra County.")
    ranked = [e.title for e in policy.rank(CHAIN_QUESTION, sub_queries, evidence)]
    assert ranked.index("Lisk") == CITED_PASSAGES - 1
    assert ranked[0] == "Ilse Marrow"  # the first hop keeps its place
    monkeypatch.setattr(policy_module, "_last_hop_cited", lambda analysis, ranked, sub_queries, evidence: ranked)
    assert [e.title for e in policy.rank(CHAIN_QUESTION, sub_queries, evidence)].index("Lisk") >= CITED_PASSAGES


def test_a_last_hop_that_went_astray_moves_nothing(policy: NoLLMPolicy) -> None:
    # the hop's passage does not name the answer it was grounded with
    sub_queries, evidence = _chain("The Lisk is a stream of the northern hills.")
    ranked = [e.title for e in policy.rank(CHAIN_QUESTION, sub_queries, evidence)]
    assert ranked.index("Lisk") >= CITED_PASSAGES


def test_a_cited_passage_that_names_the_question_keeps_its_slot(policy: NoLLMPolicy) -> None:
    # every cited passage names Ilse Marrow: none is a mere sharer of the question's words
    naming = {title: f"{body} Ilse Marrow is one example." for title, body in CHAIN_PASSAGES.items()}
    sub_queries, evidence = _chain("The Lisk is a stream that flows through Venn and Ostra County.", naming)
    ranked = [e.title for e in policy.rank(CHAIN_QUESTION, sub_queries, evidence)]
    assert ranked.index("Lisk") >= CITED_PASSAGES


def _answered_from_lisk(fact: str, passages: dict[str, str] = CHAIN_PASSAGES) -> tuple[list[SubQuery], list[Evidence]]:
    """The chain with its last hop answered from Lisk's passage (found first by another sub-query), ``fact``
    being the sentence the answer was read from."""
    sub_queries, evidence = _chain("The Lisk is a stream that flows through Venn and Ostra County.", passages)
    evidence[-1] = evidence[-1].model_copy(update={"sub_query_id": evidence[-2].sub_query_id})
    last = sub_queries[-1]
    sub_queries[-1] = last.model_copy(update={"answer": "Lisk", "facts": [Fact(evidence_id="E99", text=fact)]})
    return sub_queries, evidence


def test_the_page_the_last_hop_answered_from_is_cited_though_found_first_by_another(policy: NoLLMPolicy) -> None:
    # An earlier sub-query (the last bridge name's, as its second hit) found the last fact's page first, so
    # evidence holds it under that one and the last hop brought no page of its own; its answer was read there.
    sub_queries, evidence = _answered_from_lisk("The Lisk")
    without_fact = [sq.model_copy(update={"facts": []}) for sq in sub_queries]
    assert [e.title for e in policy.rank(CHAIN_QUESTION, without_fact, evidence)].index("Lisk") >= CITED_PASSAGES
    ranked = [e.title for e in policy.rank(CHAIN_QUESTION, sub_queries, evidence)]
    assert ranked.index("Lisk") == CITED_PASSAGES - 1
    assert ranked[0] == "Ilse Marrow"


def test_the_page_the_last_hop_answered_from_is_second_when_its_sentence_names_the_hop(policy: NoLLMPolicy) -> None:
    sub_queries, evidence = _answered_from_lisk("The Lisk is a stream that flows through Venn and Ostra County.")
    ranked = [e.title for e in policy.rank(CHAIN_QUESTION, sub_queries, evidence)]
    assert ranked[:2] == ["Ilse Marrow", "Lisk"]
    # an answer read from a sentence that does not write the town says nothing of the chain: no second place
    sub_queries, evidence = _answered_from_lisk("The Lisk is a stream.")
    assert [e.title for e in policy.rank(CHAIN_QUESTION, sub_queries, evidence)].index("Lisk") > 1


def test_the_first_passages_bridge_keeps_the_second_place(policy: NoLLMPolicy) -> None:
    # the first passage names the second ("Rivers of towns"): that is the chain's middle link, kept
    naming = {**CHAIN_PASSAGES, "Ilse Marrow": CHAIN_PASSAGES["Ilse Marrow"] + " She wrote Rivers of towns."}
    sub_queries, evidence = _answered_from_lisk("The Lisk flows through Venn.", naming)
    ranked = [e.title for e in policy.rank(CHAIN_QUESTION, sub_queries, evidence)]
    assert ranked[:2] == ["Ilse Marrow", "Rivers of towns"]
