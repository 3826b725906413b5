"""Namesakes told apart by how the question writes a name: the qualifier after it ("Glass Tide (1952 Film)")
is part of the name, and a passage whose title carries another qualifier is not about it; a name of the
collection's documents written whole ("Oren Valsh, 3rd Count of Keldra") is one name, not the pieces
spaCy reads inside it, and two such names spaCy reads as one entity are two; a title that is the whole
name outranks a shorter title written inside it, and the bare name's own title a namesake with a qualifier;
a passage writing its own name does not thereby name a namesake whose name is part of it; and among
qualified namesakes, the one whose qualifier the question writes comes first."""

from __future__ import annotations

from pagehop.agents.policy import NoLLMPolicy
from pagehop.agents.state import Evidence, SubQuery
from pagehop.config import AgentSettings
from pagehop.retrieval.titles import TitleIndex
from pagehop.testing.passages import PassageWorld

# An invented world: three works share a name; the question's qualifier says which one it means.
WORLD = PassageWorld(
    {
        "Glass Tide (1931 film)": "Glass Tide is a 1931 film directed by Oren Valsh.",
        "Glass Tide (1952 film)": "Glass Tide is a 1952 film directed by Ilse Marrow.",
        "Glass Tide (novel)": "Glass Tide is a novel by Petra Quill.",
        "Oren Valsh": "Oren Valsh was a film director born in Porto.",
        "Ilse Marrow": "Ilse Marrow was a film director born in Lisbon.",
    }
)


def _evidence(world: PassageWorld, title: str, rank: int) -> Evidence:
    """A passage of ``world`` as the ``rank``-th retrieval hit of one sub-query."""
    return Evidence(
        id=f"E{rank}",
        sub_query_id="1",
        channel="text",
        doc_id=world.doc_of[title],
        page=1,
        chunk_id=f"c{rank}",
        title=title,
        text=f"{title}\n\n{world.passages[title]}",
        score=1.0 / rank,
    )


def test_the_qualifier_written_after_a_name_belongs_to_it() -> None:
    analysis = NoLLMPolicy().analyze("Where was the director of film Glass Tide (1952 Film) born?")
    assert analysis.names == ["Glass Tide (1952 Film)"]  # not "Glass Tide" and a name "Film"
    assert "1952" not in analysis.relation_terms


def test_the_qualified_film_and_its_director_answer_end_to_end() -> None:
    with WORLD.engine(AgentSettings(hits_per_query=3, graph_facts_per_query=0)) as engine:
        answer = engine.ask("Where was the director of film Glass Tide (1952 Film) born?")
    cited = [citation.doc_id for citation in answer.citations]
    assert answer.answer == "Lisbon"
    assert cited[:2] == [WORLD.doc_of["Glass Tide (1952 film)"], WORLD.doc_of["Ilse Marrow"]]


def test_the_namesake_retrieved_first_is_ranked_behind_the_qualified_passage() -> None:
    question = "Who directed Glass Tide (1952 Film)?"
    titles = ["Glass Tide (1931 film)", "Glass Tide (1952 film)", "Glass Tide (novel)"]  # retrieval order
    evidence = [_evidence(WORLD, title, i) for i, title in enumerate(titles, start=1)]
    ranked = NoLLMPolicy().rank(question, [SubQuery(id="1", text=question)], evidence)
    assert ranked[0].title == "Glass Tide (1952 film)"


# Titled namesakes: the question writes one document's name whole, commas and all.
COUNTS = PassageWorld(
    {
        "Oren Valsh, 3rd Count of Keldra": "Oren Valsh, 3rd Count of Keldra was a nobleman who held the coast. "
        "His mother was Petra Quill.",
        "Oren Valsh, 4th Count of Keldra": "Oren Valsh, 4th Count of Keldra was the son of Oren Valsh, 3rd Count "
        "of Keldra. The mother of the 4th Count was Ilse Marrow.",
        "Keldra": "Keldra is a county on the northern coast, ruled by counts.",
    }
)


def test_a_document_name_written_whole_is_one_name() -> None:
    titles = TitleIndex((doc_id, title) for title, doc_id in COUNTS.doc_of.items())
    question = "Who was the mother of Oren Valsh, 3rd Count of Keldra?"
    assert NoLLMPolicy().analyze(question).names == ["Oren Valsh", "3rd Count of Keldra"]  # spaCy alone
    analysis = NoLLMPolicy(document_names=titles.named_in).analyze(question)
    assert analysis.names == ["Oren Valsh, 3rd Count of Keldra"]
    assert "count" not in analysis.relation_terms


def test_a_document_name_written_without_its_qualifier_is_one_name() -> None:
    titles = TitleIndex([("d1", "Welcome to the Harbour (TV series)"), ("d2", "Ostrel (band)")])
    question = "Who performed in both Welcome to the Harbour and the band Ostrel?"
    assert NoLLMPolicy().analyze(question).names == ["Welcome", "Harbour", "Ostrel"]  # spaCy alone
    # several words are a name; one word without its qualifier ("Ostrel") stays as spaCy read it
    assert NoLLMPolicy(document_names=titles.named_in).analyze(question).names == ["Welcome to the Harbour", "Ostrel"]


def test_a_joiner_inside_a_document_name_joins_no_sides() -> None:
    titles = TitleIndex([("d1", "Tarn and Vell"), ("d2", "Ostrel Harbour Museum"), ("d3", "Keldra Museum")])
    policy = NoLLMPolicy(document_names=titles.named_in)
    analysis = policy.analyze("Which film came out first, Tarn And Vell or Glass Tide?")
    assert analysis.names == ["Tarn And Vell", "Glass Tide"]  # not "Tarn" and "Vell or Glass Tide"
    assert analysis.sides == ("Tarn And Vell", "Glass Tide")
    # the question's first word is capitalised as a sentence's: it is not part of the first name
    analysis = policy.analyze("Are Ostrel Harbour Museum and Keldra Museum located in the same country?")
    assert analysis.sides == ("Ostrel Harbour Museum", "Keldra Museum")


def test_two_document_names_the_recogniser_read_as_one_are_two_names() -> None:
    titles = TitleIndex([("d1", "Laserfall"), ("d2", "The Life of Ida Corrin")])
    question = "Did the movies Laserfall and The Life Of Ida Corrin, originate from the same country?"
    assert NoLLMPolicy().analyze(question).names == ["Laserfall and The Life Of Ida Corrin"]  # spaCy alone
    analysis = NoLLMPolicy(document_names=titles.named_in).analyze(question)
    assert analysis.names == ["Laserfall", "The Life Of Ida Corrin"]
    assert analysis.sides == ("Laserfall", "The Life Of Ida Corrin")


def test_a_description_chain_and_the_sides_of_a_comparison_keep_a_name_written_whole() -> None:
    titles = TitleIndex((doc_id, title) for title, doc_id in COUNTS.doc_of.items())
    policy = NoLLMPolicy(document_names=titles.named_in)
    # The question writes the name in its own case, with a possessive: the chain asks about the whole name.
    question = "When was Oren Valsh, 3Rd Count Of Keldra's mother born?"
    hops = [sq.text for sq in policy.decompose(question, 6)[1:]]
    assert hops[0] == "which mother of Oren Valsh, 3Rd Count Of Keldra", hops
    assert "#2" in hops[1] and "Keldra" not in hops[1]
    sides = policy.analyze("Who was born first, Oren Valsh, 3rd Count of Keldra or Ilse Marrow?").sides
    assert sides == ("Oren Valsh, 3rd Count of Keldra", "Ilse Marrow")


def test_the_passage_named_whole_ranks_first_and_answers() -> None:
    titles = TitleIndex((doc_id, title) for title, doc_id in COUNTS.doc_of.items())
    question = "Who was the mother of Oren Valsh, 3rd Count of Keldra?"
    order = ["Oren Valsh, 4th Count of Keldra", "Oren Valsh, 3rd Count of Keldra", "Keldra"]  # retrieval order
    evidence = [_evidence(COUNTS, title, i) for i, title in enumerate(order, start=1)]
    policy = NoLLMPolicy(document_names=titles.named_in)
    sub_queries = [SubQuery(id="1", text=question)]
    assert policy.rank(question, sub_queries, evidence)[0].title == "Oren Valsh, 3rd Count of Keldra"
    assert policy.draft(question, sub_queries, evidence).answer == "Petra Quill"


def test_a_hop_answered_inside_a_document_name_answers_the_whole_name() -> None:
    # spaCy reads "3rd Count" of "Oren Valsh, 3rd Count of Keldra" as the person; the collection has the name.
    titles = TitleIndex((doc_id, title) for title, doc_id in COUNTS.doc_of.items())
    evidence = [_evidence(COUNTS, "Oren Valsh, 4th Count of Keldra", 1)]
    hop = "which father of Oren Valsh, 4th Count of Keldra"
    assert NoLLMPolicy(document_names=titles.named_in).answer(hop, evidence)[0] == "Oren Valsh, 3rd Count of Keldra"


def test_a_part_of_a_document_name_is_no_bridge() -> None:
    titles = TitleIndex((doc_id, title) for title, doc_id in COUNTS.doc_of.items())
    question = "Who was the grandmother of Oren Valsh, 4th Count of Keldra?"
    evidence = [_evidence(COUNTS, "Oren Valsh, 4th Count of Keldra", 1)]
    policy = NoLLMPolicy(document_names=titles.named_in)
    bridges = [sq.text for sq in policy.expand(question, [SubQuery(id="1", text=question)], evidence, 1)[1:]]
    assert bridges == ["Oren Valsh, 3rd Count of Keldra"]  # not also spaCy's "3rd Count"


def test_a_possessive_after_a_qualifier_is_a_description() -> None:
    # The parser hangs "'s father" on "place"; the words still say whose father.
    titles = TitleIndex([("d1", "Irna Dovel (died 1241)")])
    question = "Where was the place of death of Irna Dovel (Died 1241)'s father?"
    hops = [sq.text for sq in NoLLMPolicy(document_names=titles.named_in).decompose(question, 6)[1:]]
    assert hops == ["which father of Irna Dovel (Died 1241)", "which place of death of #2"]


def test_a_namesake_of_the_passages_own_subject_is_no_bridge() -> None:
    # The critic's passage writes "Tobin Marsh": its own subject, not the architect of the same name.
    world = PassageWorld(
        {
            "Tobin Marsh (critic)": "Tobin Marsh was a critic. Tobin Marsh married the writer Ada Lind.",
            "Tobin Marsh (architect)": "Tobin Marsh was an architect who built halls in Leeds.",
            "Ada Lind": "Ada Lind was a writer who died of a fever.",
        }
    )
    titles = TitleIndex((doc_id, title) for title, doc_id in world.doc_of.items())
    question = "Why did the wife of the critic Tobin Marsh die?"
    policy = NoLLMPolicy(document_names=titles.named_in)
    evidence = [_evidence(world, "Tobin Marsh (critic)", 1)]
    bridges = [sq.text for sq in policy.expand(question, [SubQuery(id="1", text=question)], evidence, 1)[1:]]
    assert "Ada Lind" in bridges
    assert "Tobin Marsh (architect)" not in bridges


def test_a_title_that_is_the_whole_name_outranks_a_title_written_inside_it() -> None:
    # "Silver Wind" is written inside "Ride The Silver Wind Home", so it is about that name too, and three
    # sub-queries found it (a prior the whole title cannot match); the whole title still comes first.
    question = "Where was the singer of the song Ride The Silver Wind Home born?"
    partial = "Silver Wind is a 1971 song by the folk duo Harrow and Lane, recorded in Dublin."
    whole = "Ride the Silver Wind Home is a 1964 song sung by Corin Vale."

    def found(number: int, sub_query: str, title: str, text: str) -> Evidence:
        return Evidence(
            id=f"E{number}", sub_query_id=sub_query, channel="text", doc_id=title, page=1, title=title, text=text
        )

    evidence = [
        found(1, "1", "Silver Wind", partial),
        found(2, "1", "Ride the Silver Wind Home", whole),
        found(3, "2", "Silver Wind", partial),
        found(4, "3", "Silver Wind", partial),
    ]
    sub_queries = [
        SubQuery(id="1", text=question, status="answered"),
        SubQuery(id="2", text="Harrow and Lane", status="answered"),
        SubQuery(id="3", text="Dublin", status="answered"),
    ]
    ranked = NoLLMPolicy().rank(question, sub_queries, evidence)
    assert [item.title for item in ranked] == ["Ride the Silver Wind Home", "Silver Wind"]


def test_the_title_that_is_the_bare_name_outranks_a_namesake_with_a_qualifier() -> None:
    # The question writes the bare name: the passage titled with it is the name's first reading, ahead of a
    # namesake found first whose title adds a qualifier; a qualified title alone keeps its full standing.
    world = PassageWorld(
        {
            "Petra Quill (painter)": "Petra Quill is a painter who lives by the sea.",
            "Petra Quill": "Petra Quill is a writer of sea stories.",
            "Sea painting": "A painting of the sea, by a writer or a painter.",
        }
    )
    question = "Where was Petra Quill born?"
    titles = ["Sea painting", "Petra Quill (painter)", "Petra Quill"]  # retrieval order
    evidence = [_evidence(world, title, i) for i, title in enumerate(titles, start=1)]
    ranked = NoLLMPolicy().rank(question, [SubQuery(id="1", text=question)], evidence)
    assert [item.title for item in ranked] == ["Petra Quill", "Petra Quill (painter)", "Sea painting"]
    ranked = NoLLMPolicy().rank(question, [SubQuery(id="1", text=question)], evidence[:2])
    assert [item.title for item in ranked] == ["Petra Quill (painter)", "Sea painting"]


def test_a_namesake_written_inside_the_first_passages_own_name_is_no_link() -> None:
    # The critic's passage writes "Tobin Marsh" only as part of its own name: it names his wife, not the
    # architect, so the wife's passage follows it although retrieval found the architect's first.
    question = "Why did Tobin Marsh Grey's wife die?"
    world = PassageWorld(
        {
            "Tobin Marsh Grey": "Tobin Marsh Grey was a critic. Tobin Marsh Grey married the writer Ada Lind.",
            "Tobin Marsh (architect)": "Tobin Marsh was an architect who died in Leeds.",
            "Ada Lind": "Ada Lind was a writer who died of a fever.",
        }
    )
    titles = ["Tobin Marsh Grey", "Tobin Marsh (architect)", "Ada Lind"]  # retrieval order
    evidence = [_evidence(world, title, i) for i, title in enumerate(titles, start=1)]
    ranked = NoLLMPolicy().rank(question, [SubQuery(id="1", text=question)], evidence)
    assert [item.title for item in ranked] == ["Tobin Marsh Grey", "Ada Lind", "Tobin Marsh (architect)"]


def test_a_qualifier_the_question_writes_elsewhere_chooses_among_qualified_namesakes() -> None:
    # Both titles carry a qualifier; the question says "films" away from the name, which picks the film over
    # the series found first (a plural meets its singular). Without the word, retrieval's order stands.
    world = PassageWorld(
        {
            "Iron Harbor (TV series)": "Iron Harbor is a television series about a port town.",
            "Iron Harbor (film)": "Iron Harbor is a film about a port town.",
        }
    )
    titles = ["Iron Harbor (TV series)", "Iron Harbor (film)"]  # retrieval order
    evidence = [_evidence(world, title, i) for i, title in enumerate(titles, start=1)]
    for question, first in [
        ("Which studio released both Iron Harbor films?", "Iron Harbor (film)"),
        ("Which studio released Iron Harbor?", "Iron Harbor (TV series)"),
    ]:
        ranked = NoLLMPolicy().rank(question, [SubQuery(id="1", text=question)], evidence)
        assert ranked[0].title == first, question
