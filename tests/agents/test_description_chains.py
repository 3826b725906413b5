"""Description chains and the mechanisms around them, on small hand-made corpora (real spaCy, MiniLM, BM25).

A question that reaches its answer through descriptions ("the capital of the province where the singer
of Velmora Sunrise died") is asked one link at a time, innermost first, each link grounded with the
answer of the one before; sub-queries that name something are answered from the passage about it;
the answers of resolved links count as names in the coverage ranking (a passage that only mentions one
does not stand in for the passage about it) and are followed when no passage is about them; and names
match without their accents.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pagehop.agents.analysis import HOP_ANSWER, PLACE
from pagehop.agents.policy import NoLLMPolicy
from pagehop.agents.state import Evidence, SubQuery
from pagehop.config import AgentSettings
from pagehop.engine import Pagehop
from pagehop.testing.passages import PassageWorld
from pagehop.text import name_tokens

# An invented world: no model knows these people and songs; the places are real so the recogniser types them.
PASSAGES = {
    "Velmora Sunrise": "Velmora Sunrise is a 1974 folk song written and recorded by the singer Anselm Quarry.",
    "Anselm Quarry": "Anselm Quarry was a folk singer and fiddler. He spent his last years in Tasmania, where he "
    "died in 1990.",
    "Tasmania": "Tasmania is an island state of Australia. Its capital and largest city is Hobart.",
    # Distractors that share the question's words but not its chain.
    "Capitals of provinces": "The capital of a province is where a singer often died in old folk songs; many "
    "a province names its capital after a song.",
    "Sunrise (song)": "Sunrise is a song by a singer who died young; it was a hit in the capital of every "
    "province of Canada.",
    "Folk singers who died": "Folk singers who died in a province far from its capital are remembered in songs "
    "about the sunrise.",
    "Quarry (mining)": "A quarry is a place where stone is dug out; the largest quarry of the province lies "
    "north of its capital.",
}
QUESTION = "What is the capital of the province where the singer of Velmora Sunrise died?"


WORLD = PassageWorld(PASSAGES)
DOC_OF = WORLD.doc_of


@pytest.fixture(scope="module")
def policy() -> NoLLMPolicy:
    return NoLLMPolicy()


@pytest.fixture(scope="module")
def engine() -> Iterator[Pagehop]:
    # Two hits per sub-query and a single round: no bridge hop can stand in for the chain.
    settings = AgentSettings(hits_per_query=2, graph_facts_per_query=0, max_rounds=1)
    with WORLD.engine(settings) as built:
        yield built


def _evidence(number: int, title: str, text: str, sub_query: str = "1") -> Evidence:
    return Evidence(
        id=f"E{number}", sub_query_id=sub_query, channel="text", doc_id=f"d{number}", title=title, text=text
    )


def test_a_question_through_descriptions_becomes_a_chain_innermost_first(policy: NoLLMPolicy) -> None:
    assert policy.analyze(QUESTION).chain == [
        "which singer of Velmora Sunrise",
        f"which province where {HOP_ANSWER} died",
        f"What is the capital of {HOP_ANSWER}?",
    ]
    # a possessive name is a description too, and "city of birth" is one head
    assert policy.analyze("Which region is Corin Vale's city of birth located in?").chain == [
        "which city of birth of Corin Vale",
        f"Which region is {HOP_ANSWER} located in?",
    ]
    # "the place of birth of X" is a description of X; "the city of Keldra" names a city
    assert policy.analyze("What river flows through the place of birth of Corin Vale?").chain == [
        "which place of birth of Corin Vale",
        f"What river flows through {HOP_ANSWER}?",
    ]
    assert policy.analyze("What river flows through the city of Keldra?").chain == []
    # a relative clause ends where the clause on its own noun ends, not where a nested one does
    assert policy.analyze(
        "Who was the mother of the king under whom the army that crossed Keldra reached the sea?"
    ).chain == [
        "which army that crossed Keldra",
        f"which king under whom {HOP_ANSWER} reached the sea",
        f"which mother of {HOP_ANSWER}",
    ]
    # a clause that would leave the question no verb gives the question back its participle (the parser
    # hangs "taken" on the name)
    assert policy.analyze("When was the country that produced Velmora Sunrise taken by the Dutch?").chain == [
        "which country that produced Velmora Sunrise",
        f"When was {HOP_ANSWER} taken by the Dutch?",
    ]
    # what the question asks ("what kind of ...") and a lone description are no chain
    assert policy.analyze("What kind of plane did Corin Vale fly?").chain == []
    assert policy.analyze("Who is the wife of Corin Vale?").chain == []
    # the sub-queries: each hop names the one before by its placeholder
    sub_queries = policy.decompose(QUESTION, max_sub_queries=6)
    assert [(sq.text, sq.depends_on) for sq in sub_queries[:4]] == [
        (QUESTION, []),
        ("which singer of Velmora Sunrise", []),
        ("which province where #2 died", ["2"]),
        ("What is the capital of #3?", ["3"]),
    ]


def test_the_chain_reaches_the_last_link_in_one_round(engine: Pagehop) -> None:
    answer = engine.ask(QUESTION)
    grounded = {sq.id: (sq.grounded, sq.answer) for sq in answer.sub_queries}
    assert grounded["2"] == ("which singer of Velmora Sunrise", "Anselm Quarry")
    assert grounded["3"] == ("which province where Anselm Quarry died", "Tasmania")
    assert grounded["4"][0] == "What is the capital of Tasmania?"  # the question, one link at a time
    cited = [c.doc_id for c in answer.citations[:5]]
    assert {DOC_OF["Velmora Sunrise"], DOC_OF["Anselm Quarry"], DOC_OF["Tasmania"]} <= set(cited)
    assert answer.usage.llm_calls == 0


def test_a_sub_query_that_names_something_is_answered_from_the_passage_about_it(policy: NoLLMPolicy) -> None:
    evidence = [
        # shares the sub-query's words, names a country, but is not about the river
        _evidence(
            1, "Rivers of the world", "Which country a river is found in decides its name; the Nile is found in Egypt."
        ),
        # about the river, without the words "country" or "found"
        _evidence(2, "Bemba River", "The Bemba River flows south through Zimbabwe into the Limpopo."),
    ]
    answer, facts = policy.answer("which country where the Bemba River is found", evidence)
    assert answer == "Zimbabwe"
    assert facts[0].evidence_id == "E2"


def test_resolved_hops_are_followed_and_covered(policy: NoLLMPolicy) -> None:
    sub_queries = [
        SubQuery(id="1", text="which singer of Velmora Sunrise", status="answered", answer="Anselm Quarry"),
        SubQuery(id="2", text="which province where #1 died", depends_on=["1"], status="answered", answer="Tasmania"),
    ]
    song = _evidence(1, "Velmora Sunrise", PASSAGES["Velmora Sunrise"])
    distractor = _evidence(2, "Folk singers who died", PASSAGES["Folk singers who died"])
    # No passage is about the singer yet: his name is the next round's first sub-query.
    expanded = policy.expand(
        "Which province did the singer of Velmora Sunrise die in?", sub_queries, [song, distractor], 1
    )
    assert [sq.text for sq in expanded[2:3]] == ["Anselm Quarry"]
    # Once his passage is in, it is no longer followed, and it ranks above the distractor it ties with.
    singer = _evidence(3, "Anselm Quarry", PASSAGES["Anselm Quarry"], sub_query="2")
    evidence = [song, distractor, singer]
    assert policy._unfollowed_hops(sub_queries, policy._passages([evidence]), set()) == []
    ranked = policy.rank("Which province did the singer of Velmora Sunrise die in?", sub_queries, evidence)
    assert [e.title for e in ranked[:2]] == ["Velmora Sunrise", "Anselm Quarry"]


def test_names_match_without_accents_and_compounds_of_type_nouns_type_the_answer(policy: NoLLMPolicy) -> None:
    assert name_tokens("Aschenbrödel") == name_tokens("Aschenbrodel") == ("aschenbrodel",)
    assert name_tokens("Tekezé River") == ("tekeze", "river")
    assert policy.analyze("What is the birthplace of Corin Vale?").answer_labels == PLACE
    assert policy.analyze("What is the statement of Corin Vale?").answer_labels != PLACE


def test_a_resolved_hops_passage_is_not_replaced_by_a_mention_of_its_name(policy: NoLLMPolicy) -> None:
    """The song's passage names the singer (the hop's answer) and a lyricist: the singer's own passage, the
    chain's middle link, comes second although the lyricist's ranked better in retrieval."""
    question = "Which province did the singer of Velmora Sunrise die in?"
    sub_queries = [
        SubQuery(id="1", text="which singer of Velmora Sunrise", status="answered", answer="Anselm Quarry"),
        SubQuery(id="2", text="which province where #1 died", depends_on=["1"], status="answered", answer="Tasmania"),
    ]
    song = _evidence(
        1, "Velmora Sunrise", "Velmora Sunrise is a folk song with words by Oskar Fenn, recorded by Anselm Quarry."
    )
    lyricist = _evidence(2, "Oskar Fenn", "Oskar Fenn wrote words for radio plays and hymns.")
    singer = _evidence(3, "Anselm Quarry", "Anselm Quarry recorded folk songs on the fiddle.")
    ranked = policy.rank(question, sub_queries, [song, lyricist, singer])
    assert [e.title for e in ranked] == ["Velmora Sunrise", "Anselm Quarry", "Oskar Fenn"]
