"""The whole agent graph with the no-LLM policy, over a real text index of 2Wiki passages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.agents.state import NO_LLM
from pagehop.engine import Pagehop, format_answer
from pagehop.testing.multihop import MultihopSlice, passage_doc_id


def test_policy_answers_multihop_questions_with_citations(policy_engine: Pagehop, wiki_slice: MultihopSlice) -> None:
    correct = 0
    for item in wiki_slice.questions:
        answer = policy_engine.ask(item["question"])
        assert answer.answered_by == NO_LLM
        assert all(event.answered_by.startswith(NO_LLM) for event in answer.trace)
        assert answer.usage.llm_calls == 0
        if answer.answer.strip().lower() == item["answer"].lower():
            correct += 1
            # A correct answer cites at least one gold passage.
            gold_docs = {passage_doc_id(triple[0]) for triple in item["evidence"]}
            assert gold_docs & {c.doc_id for c in answer.citations}, item["question"]
    assert correct >= 5, f"only {correct} of {len(wiki_slice.questions)} answered"


def test_two_hop_chain_grounds_the_second_hop_on_the_first_answer(policy_engine: Pagehop) -> None:
    answer = policy_engine.ask("Who is the mother of the director of film Atomised (Film)?")
    first, second = answer.sub_queries
    assert second.depends_on == [first.id]
    assert first.answer == "Oskar Roehler"
    assert second.grounded == "the mother of Oskar Roehler"
    assert answer.answer == "Gisela Elsner"
    stages = [event.stage for event in answer.trace]
    assert stages[0] == "decompose" and stages[-2:] == ["draft", "verify"]
    text = format_answer(answer)
    assert "Gisela Elsner" in text and "Sources:" in text and "decompose" in text


def test_uncited_evidence_is_listed_after_the_citations(policy_engine: Pagehop) -> None:
    events = list(policy_engine.stream("Which film came out first, Atomised (Film) or The Last Days of Pompeii?"))
    answer = events[-1].answer
    assert answer is not None
    cited = {c.evidence_id for c in answer.citations}
    listed = [c.evidence_id for c in answer.retrieved]
    assert listed and not cited & set(listed) and len(listed) == len(set(listed))
    # both sides of the comparison contribute from the start: the sub-queries' rankings interleave
    sub_query_of = {item.id: item.sub_query_id for event in events for item in event.evidence or []}
    assert {sub_query_of[e] for e in listed[:2]} == {"1", "2"}


def test_a_planted_instruction_does_not_change_the_answer(policy_engine: Pagehop) -> None:
    events = list(policy_engine.stream("Who is the mother of the director of film Atomised (Film)?"))
    seen = {item.doc_id for event in events for item in event.evidence or []}
    assert "injected" in seen  # the planted document was retrieved and read
    answer = events[-1].answer
    assert answer is not None
    assert "Paris" not in answer.answer
    assert answer.answer == "Gisela Elsner"
    assert "injected" not in {c.doc_id for c in answer.citations}


def test_follow_up_resolves_against_the_thread(wiki_retriever: WorkspaceRetriever, tmp_path: Path) -> None:
    threads = tmp_path / "threads.sqlite"
    with Pagehop(wiki_retriever, threads_path=threads) as engine:
        first = engine.ask("Who is the director of film The Outlaw Express?", thread_id="t1")
    assert first.answer.startswith("Leo D")
    # A new engine on the same workspace file still knows the conversation.
    with Pagehop(wiki_retriever, threads_path=threads) as engine:
        follow_up = engine.ask("And where was he born?", thread_id="t1")
        assert engine.history("t1") == [
            ("Who is the director of film The Outlaw Express?", first.answer),
            ("And where was he born?", follow_up.answer),
        ]
        other_thread = engine.ask("And where was he born?", thread_id="t2")
    assert follow_up.sub_queries[0].text.startswith(f"Where was {first.answer}")
    assert follow_up.answer == "Santa Rosa"
    assert other_thread.answer != "Santa Rosa"  # no history there: "he" stays unresolved


def test_stream_yields_typed_stage_events(policy_engine: Pagehop) -> None:
    events = list(policy_engine.stream("Which film was released first, The Tender Years or Range War?"))
    kinds = [event.kind for event in events]
    assert kinds[0] == "sub_queries" and kinds[-1] == "answer"
    assert {"evidence", "draft", "verdict"} <= set(kinds)
    evidence_event = next(e for e in events if e.kind == "evidence")
    assert evidence_event.evidence and all(item.id.startswith("E") for item in evidence_event.evidence)
    final = events[-1].answer
    assert final is not None and final.answer == "Range War" and final.thread_id


async def test_async_ask_matches_the_sync_answer(policy_engine: Pagehop) -> None:
    question = "Which film was released first, Aas Ka Panchhi or Phoolwari?"
    answer = await policy_engine.aask(question)
    assert answer.answer == "Phoolwari" == policy_engine.ask(question).answer


def test_empty_question_is_refused(policy_engine: Pagehop) -> None:
    with pytest.raises(ValueError, match="empty"):
        policy_engine.ask("   ")


def test_questions_joined_by_and_get_one_answer_each(policy_engine: Pagehop) -> None:
    answer = policy_engine.ask("Who is the director of film The Outlaw Express, and where was he born?")
    assert [sq.depends_on for sq in answer.sub_queries] == [[], ["1"]]
    director, birthplace = answer.answer.split("; ")
    assert director.startswith("Leo D") and birthplace == "Santa Rosa"
