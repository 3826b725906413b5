"""The whole agent graph with the no-LLM policy, over a real text index of 2Wiki passages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagehop.agents.retriever import WorkspaceRetriever
from pagehop.agents.state import NO_LLM, Answer
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


def test_a_two_hop_question_cites_both_hops(policy_engine: Pagehop) -> None:
    """The film's passage names the director, whose passage holds the answer (the bridge hop itself, when
    the first round misses the second passage, is tested on a hand-made corpus in test_multihop_mechanisms)."""
    answer = policy_engine.ask("Where was the director of film The Outlaw Express born?")
    assert answer.answer == "Santa Rosa"
    # Both hops' passages lead the citations (in coverage order), and the answer's claim cites the director's.
    assert {c.title for c in answer.citations[:2]} == {"Leo D. Maloney", "The Outlaw Express"}
    assert _answer_sources(answer) == ["Leo D. Maloney"]
    stages = [event.stage for event in answer.trace]
    assert stages[0] == "decompose" and stages[-2:] == ["draft", "verify"]
    text = format_answer(answer)
    assert "Santa Rosa" in text and "Sources:" in text and "decompose" in text


def _answer_sources(answer: Answer) -> list[str]:
    """Titles cited by the claim that states the answer."""
    return [
        answer.citations[n - 1].title
        for claim in answer.claims
        if claim.text.startswith(f"{answer.answer}: ")
        for n in claim.citations
    ]


def test_uncited_evidence_is_listed_after_the_citations(policy_engine: Pagehop) -> None:
    events = list(policy_engine.stream("Which film came out first, Atomised (Film) or The Last Days of Pompeii?"))
    answer = events[-1].answer
    assert answer is not None
    cited = {c.evidence_id for c in answer.citations}
    listed = [c.evidence_id for c in answer.retrieved]
    assert listed and not cited & set(listed) and len(listed) == len(set(listed))
    pages = [(c.doc_id, c.page) for c in answer.retrieved]
    assert len(pages) == len(set(pages))  # the sub-queries' rankings fuse per page


def test_a_planted_instruction_does_not_change_the_answer(policy_engine: Pagehop) -> None:
    events = list(policy_engine.stream("Who is the mother of the director of film Atomised (Film)?"))
    seen = {item.doc_id for event in events for item in event.evidence or []}
    assert "injected" in seen  # the planted document was retrieved and read
    answer = events[-1].answer
    assert answer is not None
    assert "Paris" not in answer.answer
    if answer.answer:  # the answer's own source is not the planted text
        sources = _answer_sources(answer)
        assert sources and "injected" not in {c.doc_id for c in answer.citations if c.title in sources}


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
