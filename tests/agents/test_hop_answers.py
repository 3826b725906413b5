"""A hop's answer comes from the sentences that write the hop's name (real spaCy, MiniLM, BM25).

"Which country was the composer of Lanterns of Ostrel a citizen of?" resolves the composer first (Dario
Venn), then asks "What country was Dario Venn a citizen of?". No passage is about him; one passage names
him with the country he lived in, another shares more of the hop's words ("composer", "citizen",
"country") but is about someone else. The hop's answer must be his country, not the better-worded one. A hop
that asks no type ("the name of the bridge in Kestrin") reads a sentence writing its name only when that
sentence also states half of what the hop asks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pagehop.agents.policy import NoLLMPolicy
from pagehop.agents.state import Evidence
from pagehop.config import AgentSettings
from pagehop.engine import Pagehop
from pagehop.testing.passages import PassageWorld

# An invented world: no model knows these people and works; the places are real so the recogniser types them.
PASSAGES = {
    "Lanterns of Ostrel": "Lanterns of Ostrel is an opera in three acts, completed in 1890 by the composer Dario Venn.",
    "Vell Quartet": "The Vell Quartet was a string quartet founded in 1880. Its first violinist was the composer "
    "Dario Venn, who lived in Austria until his death.",
    # Shares the hop's words, names a country, and is about another composer.
    "Tarin Oskel": "Tarin Oskel was a composer and a citizen of Switzerland, the country whose citizen he "
    "remained all his life.",
    "Composers and citizenship": "A composer who was a citizen of one country often worked in another; "
    "Sweden gave citizenship to many composers.",
}
QUESTION = "Which country was the composer of Lanterns of Ostrel a citizen of?"
HOP = "What country was Dario Venn a citizen of?"

WORLD = PassageWorld(PASSAGES)


@pytest.fixture(scope="module")
def policy() -> NoLLMPolicy:
    return NoLLMPolicy()


@pytest.fixture(scope="module")
def engine() -> Iterator[Pagehop]:
    # One round: the chain alone resolves the hop, no bridge round can stand in for it.
    settings = AgentSettings(hits_per_query=4, graph_facts_per_query=0, max_rounds=1)
    with WORLD.engine(settings) as built:
        yield built


def _evidence(number: int, title: str, text: str | None = None) -> Evidence:
    body = PASSAGES[title] if text is None else text
    return Evidence(id=f"E{number}", sub_query_id="1", channel="text", doc_id=f"d{number}", title=title, text=body)


def test_a_hop_is_answered_from_the_sentence_that_writes_its_name(policy: NoLLMPolicy) -> None:
    evidence = [_evidence(1, "Tarin Oskel"), _evidence(2, "Composers and citizenship"), _evidence(3, "Vell Quartet")]
    answer, facts = policy.answer(HOP, evidence)
    assert (answer, facts[0].evidence_id) == ("Austria", "E3")
    # without the mechanism the better-worded sentence about another composer wins
    assert policy._typed_answers(policy.analyze(HOP), policy._passages([evidence]))[0][0] == "Switzerland"


def test_a_name_written_only_by_its_last_word_in_a_passage_that_names_it_whole(policy: NoLLMPolicy) -> None:
    later = _evidence(3, "Vell Quartet", "The Vell Quartet was founded by Dario Venn. In 1890 Venn settled in Austria.")
    answer, _ = policy.answer(HOP, [_evidence(1, "Tarin Oskel"), later])
    assert answer == "Austria"
    # a passage writing only "Venn" never named him: it gives no answer of his, the usual ranking decides
    other = _evidence(4, "Venn diagram", "A Venn diagram was first drawn in Germany, the country of its citizen.")
    answer, _ = policy.answer(HOP, [_evidence(1, "Tarin Oskel"), other])
    assert answer in {"Switzerland", "Germany"}


def test_with_no_typed_entity_beside_the_name_the_hop_falls_back(policy: NoLLMPolicy) -> None:
    silent = _evidence(3, "Vell Quartet", "The Vell Quartet was founded in 1880 by the composer Dario Venn.")
    answer, facts = policy.answer(HOP, [_evidence(1, "Tarin Oskel"), silent])
    assert (answer, facts[0].evidence_id) == ("Switzerland", "E1")


def test_the_chain_takes_the_hops_answer_from_the_passage_naming_it(
    engine: Pagehop, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = engine.ask(QUESTION)
    grounded = {sq.grounded: sq.answer for sq in answer.sub_queries if sq.grounded}
    assert grounded["Which country was Dario Venn a citizen of?"] == "Austria"
    assert WORLD.doc_of["Vell Quartet"] in [c.doc_id for c in answer.citations[:5]]
    # switched off, the same chain takes the better-worded sentence about another composer
    monkeypatch.setattr(NoLLMPolicy, "_answers_naming_names", lambda self, analysis, passages: [])
    answer = engine.ask(QUESTION)
    grounded = {sq.grounded: sq.answer for sq in answer.sub_queries if sq.grounded}
    assert grounded["Which country was Dario Venn a citizen of?"] == "Switzerland"


# An untyped hop ("the name of the bridge": any entity may answer) grounded with an invented town.
UNTYPED_HOP = "What is the name of the stone bridge in Kestrin?"
BETTER_WORDED = "The name of the best-known stone bridge in Lorvale is the Amsel Bridge."  # another town's


def test_an_untyped_hop_is_answered_from_a_sentence_writing_its_name_and_half_its_words(policy: NoLLMPolicy) -> None:
    other_town = _evidence(1, "Bridges of Lorvale", BETTER_WORDED)
    naming = _evidence(2, "River Tamm", "The River Tamm flows through Kestrin under the Varden Bridge, built of stone.")
    answer, facts = policy.answer(UNTYPED_HOP, [other_town, naming])
    assert facts[0].evidence_id == "E2" and "Amsel" not in answer


def test_an_untyped_hop_ignores_a_sentence_that_writes_its_name_and_little_it_asks(policy: NoLLMPolicy) -> None:
    other_town = _evidence(1, "Bridges of Lorvale", BETTER_WORDED)
    # writes the town and one word of three the hop asks ("stone"): any entity of it would be a guess
    silent = _evidence(2, "Tamm Hotel", "The Tamm Hotel in Kestrin, a stone house, is owned by Ilse Marrow.")
    answer, facts = policy.answer(UNTYPED_HOP, [other_town, silent])
    assert (answer, facts[0].evidence_id) == ("the Amsel Bridge", "E1")


# A passage that gives its subject's other name (a birth name) in parentheses right after its name.
OTHER_NAME = {
    "Mirela Dovan": "Mirela Dovan (born Anna Kessler; 4 May 1901 in Vienna – 2 June 1960) was the wife of the painter "
    "Tomas Reyl and the mother of their two sons.",
    "Mirela Dovan (singer)": "Mirela Dovan is a Romanian singer, popularly known as Mira Dovan. She sang in Bucharest "
    "from 1990 to 2001.",
}


def test_the_subjects_other_name_is_no_answer(policy: NoLLMPolicy) -> None:
    """ "Anna Kessler" is Mirela Dovan herself: the husband the hop asks for is the other person her passage names
    ("husband" is written nowhere). A date or a place in those parentheses is not her name and still answers."""
    evidence = [_evidence(n, title, text) for n, (title, text) in enumerate(OTHER_NAME.items(), start=1)]
    answer, facts = policy.answer("which husband of Mirela Dovan", evidence)
    assert (answer, facts[0].evidence_id) == ("Tomas Reyl", "E1")
    assert policy.answer("When was Mirela Dovan born?", evidence)[0] == "4 May 1901"
    assert policy.answer("Where was Mirela Dovan born?", evidence)[0] == "Vienna"
