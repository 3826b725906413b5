"""The coverage order (`NoLLMPolicy._cover`) on small hand-made evidence (real spaCy): which passages
follow the ones about the question's names."""

from __future__ import annotations

import pytest

from pagehop.agents.policy import NoLLMPolicy
from pagehop.agents.state import Evidence, SubQuery


@pytest.fixture(scope="module")
def policy() -> NoLLMPolicy:
    return NoLLMPolicy()


def _ranked(
    policy: NoLLMPolicy,
    question: str,
    ranking: list[tuple[str, str]],
    bridges: dict[str, list[tuple[str, str]]] | None = None,
) -> list[str]:
    """Titles in coverage order for evidence the question itself found, in ``ranking``'s order, and the
    evidence each bridge sub-query (``bridges``: its text, its ranking) found."""
    rankings = {question: ranking, **(bridges or {})}
    sub_queries = [SubQuery(id=str(i), text=text, status="answered") for i, text in enumerate(rankings, 1)]
    evidence = [
        item for sq, found in zip(sub_queries, rankings.values(), strict=True) for item in _evidence(found, sq.id)
    ]
    return [item.title for item in policy.rank(question, sub_queries, evidence)]


def _evidence(ranking: list[tuple[str, str]], sub_query_id: str = "1") -> list[Evidence]:
    """One text passage per (title, text), as the sub-query ``sub_query_id`` retrieved them."""
    return [
        Evidence(id=f"E{sub_query_id}.{i}", sub_query_id=sub_query_id, channel="text", doc_id=t, title=t, text=body)
        for i, (t, body) in enumerate(ranking)
    ]


def test_a_comparison_through_a_role_ranks_the_role_holders_after_the_sides(policy: NoLLMPolicy) -> None:
    # Each film's passage names its director and its star; the stars' passages were retrieved first. The
    # directors are the chain's middle links, as a resolved hop's answer is: after the two films, before the
    # stars.
    ranking = [
        ("Copper Lantern", "Copper Lantern is a 1961 drama film starring Tomas Reyl and directed by Anselm Quarry."),
        ("Night of Gulls", "Night of Gulls is a 1952 film starring Ilinca Dorne and directed by Petra Hollin."),
        ("Tomas Reyl", "Tomas Reyl was an actor from Keldra, known for sea adventures."),
        ("Ilinca Dorne", "Ilinca Dorne was a painter and actress from Varnholm."),
        ("Anselm Quarry", "Anselm Quarry (born 1921) was a filmmaker from Keldra."),
        ("Petra Hollin", "Petra Hollin (born 1934) was a filmmaker from Varnholm."),
    ]
    question = "Which film has the director born later, Copper Lantern or Night of Gulls?"
    ranked = _ranked(policy, question, ranking)
    assert set(ranked[:2]) == {"Copper Lantern", "Night of Gulls"}, ranked
    assert set(ranked[2:4]) == {"Anselm Quarry", "Petra Hollin"}, ranked
    # without a role the stars' passages keep the places their retrieval gave them
    ranked = _ranked(policy, "Which film came out first, Copper Lantern or Night of Gulls?", ranking)
    assert ranked[2:4] == ["Tomas Reyl", "Ilinca Dorne"], ranked


def test_a_role_asked_of_one_name_ranks_its_holder_second(policy: NoLLMPolicy) -> None:
    # "film" before the name is the thing's kind, not a role: the director is read from "directed by"
    ranking = [
        ("Copper Lantern", "Copper Lantern is a 1961 drama film starring Tomas Reyl and directed by Anselm Quarry."),
        ("Tomas Reyl", "Tomas Reyl (born 1930) was an actor from Keldra, known for sea adventures."),
        ("Anselm Quarry", "Anselm Quarry (born 1921) was a filmmaker from Keldra."),
    ]
    question = "Where was the director of film Copper Lantern born?"
    assert policy.analyze(question).roles == {"director"}
    assert _ranked(policy, question, ranking)[:2] == ["Copper Lantern", "Anselm Quarry"]
    # The star's passage, found again by a bridge query of its own, ranks better in retrieval than the
    # director's: the director is still the chain's middle link, as a resolved hop's answer is.
    star = {"Tomas Reyl": [ranking[1], ("Keldra", "Keldra is a port town where Tomas Reyl grew up.")]}
    assert _ranked(policy, question, ranking, star)[:2] == ["Copper Lantern", "Anselm Quarry"]


def test_a_passage_about_a_name_follows_one_that_only_mentions_it(policy: NoLLMPolicy) -> None:
    # The song's passage names the singer; a namesake's passage was retrieved before hers. A mention covers a
    # question's name only half: the passage about the singer still comes before the namesake's.
    ranking = [
        ("Harbor Lights (Mara Quill song)", "Harbor Lights is a 1952 song recorded by Mara Quill in Keldra."),
        ("Mara Quill (archaeologist)", "Mara Quill was an archaeologist; she married a diver from Keldra."),
        ("Mara Quill", "Mara Quill (born 1921) was a singer; she married the bandleader Anselm Reyl."),
    ]
    question = 'Who was Mara Quill married to when she recorded "Harbor Lights"?'
    assert _ranked(policy, question, ranking)[:2] == ["Harbor Lights (Mara Quill song)", "Mara Quill"]


def test_a_role_holder_is_read_from_the_title_that_is_the_whole_name(policy: NoLLMPolicy) -> None:
    # "Glass Tide (film)" is written inside the question's name and was retrieved first; the director asked
    # for is the one the sequel's own passage names.
    ranking = [
        ("Glass Tide (film)", "Glass Tide is a 1950 drama film directed by Petra Hollin."),
        ("The Return of Glass Tide", "The Return of Glass Tide is a 1989 film directed by Anselm Quarry."),
        ("Petra Hollin", "Petra Hollin (born 1904) was a filmmaker from Varnholm."),
        ("Anselm Quarry", "Anselm Quarry (born 1941) was a filmmaker from Keldra."),
    ]
    question = "Where was the director of film The Return Of Glass Tide born?"
    assert _ranked(policy, question, ranking)[:2] == ["The Return of Glass Tide", "Anselm Quarry"]
    # a hop's answer too
    assert policy.answer("Who directed The Return of Glass Tide?", _evidence(ranking))[0] == "Anselm Quarry"
