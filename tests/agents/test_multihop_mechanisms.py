"""The general multi-hop mechanisms on small hand-made corpora: the title channel, the bridge hop,
a comparison across passages, coverage ranking and page-level fusion of channels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pagehop.agents import policy
from pagehop.agents.retriever import WorkspaceRetriever, fuse_hits
from pagehop.config import AgentSettings
from pagehop.engine import Pagehop
from pagehop.retrieval.fusion import reciprocal_rank_fusion
from pagehop.retrieval.text_index import HybridTextIndex
from pagehop.retrieval.titles import TitleIndex
from pagehop.schema import Hit
from pagehop.testing.passages import PassageWorld

# An invented world, so no model can know the answers: each passage opens with its title line.
PASSAGES = {
    "Starfall Harbor": "Starfall Harbor is a 1961 drama film directed by Mirela Vostan and starring Tomas Reyl. "
    "It was shot on the coast of Varnholm.",
    "Mirela Vostan": "Mirela Vostan (born 1930) was a filmmaker from Keldra. She was raised in Ostrava Minor. "
    "Vostan's mother was the painter Ilinca Dorne, who taught her to draw.",
    "The Glass Orchard": "The Glass Orchard is a 1958 comedy film about a family of orchard keepers in Varnholm.",
    "Tomas Reyl": "Tomas Reyl was an actor from Keldra, known for his roles in sea adventures.",
    # Distractors that share the question's words but not its answer.
    "Harbor films": "Harbor films are dramas set in ports; the director of a harbor film often shows a mother "
    "waiting on the pier. The starfall motif appears in many of them.",
    "Mothers in cinema": "Mothers in cinema: the mother of a director is a frequent subject of documentaries "
    "about film directors, such as the harbor documentary Starfall Years.",
    "Starfall (album)": "Starfall is an album whose cover shows a harbor at night; its director of photography "
    "dedicated it to his mother.",
    "Harbor Lights": "Harbor Lights is a film whose director cast his own mother in the role of a harbor keeper.",
}


WORLD = PassageWorld(PASSAGES)
CHUNKS, DOC_OF = WORLD.chunks, WORLD.doc_of
TEXT_OF = {chunk.doc_id: chunk.text for chunk in CHUNKS}


@pytest.fixture(scope="module")
def index() -> HybridTextIndex:
    return WORLD.index()


def _retriever(index: HybridTextIndex, titles: bool = True) -> WorkspaceRetriever:
    return WORLD.retriever(index, titles=titles)


@pytest.fixture()
def engine(index: HybridTextIndex, tmp_path: Path) -> Iterator[Pagehop]:
    # Two hits per sub-query: the bridge passage cannot slip into the first round by sheer depth.
    settings = AgentSettings(hits_per_query=2, graph_facts_per_query=0)
    with Pagehop(_retriever(index), None, settings, threads_path=None) as built:
        yield built


def test_title_index_finds_the_documents_a_text_names() -> None:
    index = TitleIndex([("d1", "Alien (film)"), ("d2", "Ridley Scott"), ("d3", "Music"), ("d4", "The")])
    found = index.named_in("Alien is a film by Ridley Scott with music by Jerry Goldsmith.")
    assert [f.doc_id for f in found] == ["d1", "d2"]  # "music" is not written as a name; "The" is no name
    assert index.named_in("Ridley Scott's Alien (film)")[1].tokens == 2  # the qualified title matches whole


def test_title_index_finds_a_name_whatever_its_accents() -> None:
    index = TitleIndex([("d1", "Isabel Luísa, Princess of Beira"), ("d2", "Aschenbrodel")])
    question = "Who was the mother of Isabel Luísa, Princess of Beira?"
    [found] = index.named_in(question)
    assert found.doc_id == "d1" and question[found.start : found.end] == "Isabel Luísa, Princess of Beira"
    assert [f.doc_id for f in index.named_in("Isabel Luisa, Princess of Beira met Aschenbrödel.")] == ["d1", "d2"]


def test_a_one_word_title_written_inside_a_longer_name_is_not_named() -> None:
    # "Red" of "the Red Cross" is no mention of the colour's document, nor "Army" of "the Red Army"; a name of
    # several words still counts when more follows ("Scott Howell III")
    index = TitleIndex([("d1", "Red"), ("d2", "Army"), ("d3", "Switzerland"), ("d4", "Scott Howell")])
    assert [f.doc_id for f in index.named_in("Switzerland is the birthplace of the Red Cross Society.")] == ["d3"]
    text = "The Red Army entered Vienna. Red is the colour of liberty."
    [red] = index.named_in(text)
    assert red.doc_id == "d1" and red.start == text.index("Red is")
    assert [f.doc_id for f in index.named_in("Herbert Weston Scott Howell III is a consultant.")] == ["d4"]


def test_title_channel_ranks_the_passage_about_a_named_entity_first(index: HybridTextIndex) -> None:
    hits = _retriever(index).search("Mirela Vostan", 3)
    assert hits[0].doc_id == DOC_OF["Mirela Vostan"]
    assert hits[0].title == "Mirela Vostan"  # the heading, not the file name


def test_bridge_hop_finds_the_passage_only_second_round_evidence_names(
    engine: Pagehop, index: HybridTextIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bridge hop alone: without description chains (which resolve "the director of ..." in the first
    # round, see tests/agents/test_description_chains.py) only second-round evidence names the director.
    monkeypatch.setattr(policy, "_chain_texts", lambda chain, first_id: [])
    question = "Who is the mother of the director of Starfall Harbor?"
    first_round = _retriever(index).search(question, 2)
    assert DOC_OF["Mirela Vostan"] not in {hit.doc_id for hit in first_round}  # the question alone misses it

    answer = engine.ask(question)
    bridge = [sq for sq in answer.sub_queries if sq.round >= 1 and sq.text == "Mirela Vostan"]
    assert bridge, [sq.text for sq in answer.sub_queries]
    cited = [c.doc_id for c in answer.citations]
    assert {DOC_OF["Starfall Harbor"], DOC_OF["Mirela Vostan"]} <= set(cited[:2])  # coverage: both hops first
    assert answer.answer == "Ilinca Dorne"
    assert answer.usage.llm_calls == 0


def test_comparison_weighs_two_sides_found_in_different_passages(engine: Pagehop) -> None:
    answer = engine.ask("Which film came out first, Starfall Harbor or The Glass Orchard?")
    assert answer.answer == "The Glass Orchard"  # 1958 before 1961
    assert {DOC_OF["Starfall Harbor"], DOC_OF["The Glass Orchard"]} <= {c.doc_id for c in answer.citations[:2]}
    later = engine.ask("Which film came out later, Starfall Harbor or The Glass Orchard?")
    assert later.answer == "Starfall Harbor"


def test_no_typed_answer_is_said_not_guessed(engine: Pagehop) -> None:
    answer = engine.ask("How many sequels did Starfall Harbor get?")
    assert answer.answer == ""  # no number in the evidence: no guess
    assert answer.citations and answer.citations[0].doc_id == DOC_OF["Starfall Harbor"]  # the best evidence
    assert not answer.supported


def test_a_page_hit_and_a_text_hit_of_one_page_take_one_slot() -> None:
    text_hit = Hit(channel="text", doc_id="report", page=4, score=0.9, chunk_id="report-c7", text="Revenue grew.")
    page_hit = Hit(channel="page", doc_id="report", page=4, score=12.0, text="Page 4: Revenue grew 12%.")
    other = Hit(channel="page", doc_id="report", page=5, score=11.0)
    fused = fuse_hits([[text_hit], [page_hit, other]])
    assert [(hit.doc_id, hit.page) for hit, _ in fused] == [("report", 4), ("report", 5)]
    merged, score = fused[0]
    assert merged.chunk_id == "report-c7"  # the merged slot still points at its chunk
    assert score == pytest.approx(2 / 61)  # both channels' votes, rank 1 in each
    # The page hit ranked first keeps its copy; the chunk id still comes from the text hit.
    merged_first = fuse_hits([[page_hit], [text_hit]])[0][0]
    assert merged_first.channel == "page" and merged_first.chunk_id == "report-c7"


def test_page_channel_and_text_channel_merge_in_the_retriever(index: HybridTextIndex, tmp_path: Path) -> None:
    from pagehop.retrieval.colmodernvbert import ColModernVBertEncoder
    from pagehop.retrieval.page_index import LocalPageIndex
    from pagehop.testing.tiny_models import render_test_page, tiny_colmodernvbert_path

    encoder = ColModernVBertEncoder(tiny_colmodernvbert_path(), device="cpu", batch_size=2)
    pages = LocalPageIndex(tmp_path / "pages", dim=encoder.embedding_dim)
    starfall = DOC_OF["Starfall Harbor"]
    pages.add(starfall, 1, encoder.encode_pages([render_test_page(PASSAGES["Starfall Harbor"])])[0].vectors)
    retriever = WorkspaceRetriever(
        text_index=index, page_index=pages, page_encoder=encoder, page_text=lambda d, p: TEXT_OF.get(d, "")
    )
    hits = retriever.search("Starfall Harbor drama film", 5)
    keys = [(hit.doc_id, hit.page) for hit in hits]
    assert len(keys) == len(set(keys))  # one slot per page
    assert keys[0] == (starfall, 1)  # text and page channel both voted for it
    assert hits[0].chunk_id == CHUNKS[0].chunk_id


def test_the_one_fusion_merges_by_key_and_interleaves_ties() -> None:
    fused = reciprocal_rank_fusion([["a", "b"], ["c", "a"]], key=str)
    assert [item for item, _ in fused] == ["a", "c", "b"]
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([["a"]], key=str, weights=[1.0, 2.0])


def test_the_title_channel_follows_a_delete_and_an_add_that_keep_the_count() -> None:
    catalog = [("a", "Kestrel Optics"), ("b", "Quayside Automation")]
    retriever = WorkspaceRetriever(names=lambda: list(catalog))
    assert [hit.doc_id for hit in retriever.named_documents("Who bought Kestrel Optics?", 5)] == ["a"]
    catalog[0] = ("c", "Harbor Lane Robotics")  # one document deleted, another added
    assert retriever.named_documents("Who bought Kestrel Optics?", 5) == []
    assert [hit.doc_id for hit in retriever.named_documents("Who founded Harbor Lane Robotics?", 5)] == ["c"]


# A comparison made through a role: the films' passages name their directors, whose passages hold the dates.
ROLE_PASSAGES = {
    "Copper Lantern": "Copper Lantern is a 1961 drama film directed by Anselm Quarry and starring Lio Brandt.",
    "Night of Gulls": "Night of Gulls is a 1952 mystery film directed by Petra Hollin, set in a lighthouse.",
    "Anselm Quarry": "Anselm Quarry (born 3 May 1921) was a filmmaker from Keldra who made sea dramas.",
    "Petra Hollin": "Petra Hollin (born 9 June 1934) was a filmmaker and painter from Varnholm.",
    "Lio Brandt": "Lio Brandt (born 1950) was an actor from Keldra.",
    # Distractors: directors and births, but not these films'.
    "Film directors of Keldra": "Film directors born in Keldra include many who directed sea dramas; "
    "the first was born in 1890.",
    "Birth of the lighthouse film": "The lighthouse film was born in 1930 when a director filmed a storm.",
}


@pytest.fixture(scope="module")
def role_world() -> tuple[WorkspaceRetriever, dict[str, str]]:
    world = PassageWorld(ROLE_PASSAGES, first_number=100)
    return world.retriever(world.index()), world.doc_of


def test_a_comparison_through_a_role_follows_each_sides_role_holder(
    role_world: tuple[WorkspaceRetriever, dict[str, str]],
) -> None:
    retriever, doc_of = role_world
    question = "Which film has the director born later, Copper Lantern or Night of Gulls?"
    settings = AgentSettings(hits_per_query=2, graph_facts_per_query=0)
    with Pagehop(retriever, None, settings, threads_path=None) as engine:
        answer = engine.ask(question)
    followed = [sq.text for sq in answer.sub_queries if sq.round >= 1]
    # Each film's own passage names its director next to "directed": those are the next hop, not the actor.
    assert followed[:2] == ["Anselm Quarry", "Petra Hollin"], followed
    cited = [c.doc_id for c in answer.citations[:4]]
    assert {doc_of[t] for t in ("Copper Lantern", "Night of Gulls", "Anselm Quarry", "Petra Hollin")} == set(cited)
    assert cited[:2] == [doc_of["Copper Lantern"], doc_of["Night of Gulls"]] or cited[:2] == [
        doc_of["Night of Gulls"],
        doc_of["Copper Lantern"],
    ]
    assert answer.answer == "Night of Gulls"  # Petra Hollin, born 1934, is the younger director


def test_a_comparison_of_the_sides_own_facts_takes_no_extra_hop(
    role_world: tuple[WorkspaceRetriever, dict[str, str]],
) -> None:
    retriever, _ = role_world
    settings = AgentSettings(hits_per_query=2, graph_facts_per_query=0)
    with Pagehop(retriever, None, settings, threads_path=None) as engine:
        answer = engine.ask("Which film came out first, Copper Lantern or Night of Gulls?")
    assert answer.answer == "Night of Gulls"  # 1952 before 1961, read from the films' own passages
    assert not [sq for sq in answer.sub_queries if sq.round >= 1]  # verified in the first round
