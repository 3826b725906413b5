"""Each benchmark format read from the shared data, the generic JSONL, sampling, and corpus files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pagehop.eval.datasets import (
    MANIFEST_NAME,
    DatasetError,
    GoldPage,
    Passage,
    align_gold_titles,
    corpus_from_examples,
    documents_to_ingest,
    load_corpus,
    load_dataset,
    prepare_corpus,
    select_examples,
    write_corpus_documents,
)


def test_2wiki_question_list(shared_data: Path) -> None:
    examples = load_dataset(shared_data / "multihop" / "2wikimultihopqa_dev300.json")
    assert len(examples) == 300
    first = examples[0]
    assert first.id == "a80d84e7096d11ebbdb0ac1f6bf848b6"
    assert first.answers == ["Phoolwari"]
    assert first.gold_passages == ["Aas Ka Panchhi", "Phoolwari"]
    assert (first.question_type, first.hops) == ("comparison", 2)
    # one hop per distinct evidence subject: four for bridge-comparison questions, two for the others
    assert {e.hops for e in examples if e.question_type == "bridge_comparison"} == {4}
    assert {e.hops for e in examples if e.question_type != "bridge_comparison"} == {2}


def test_2wiki_gold_titles_align_to_the_corpus(shared_data: Path) -> None:
    examples = load_dataset(shared_data / "multihop" / "2wikimultihopqa_dev300.json")
    titles = {p.title for p in load_corpus(shared_data / "multihop" / "2wikimultihopqa_corpus.json")}
    aligned = {e.question: e for e in align_gold_titles(examples, titles)}
    film = aligned["What is the place of birth of the composer of film Inherent Vice (Film)?"]
    assert film.gold_passages == ["Inherent Vice (film)", "Jonny Greenwood"]
    # a subject naming no corpus passage is dropped, not kept as an unreachable gold
    husband = aligned["What nationality is Beatrice I, Countess Of Burgundy's husband?"]
    assert husband.gold_passages == ["Beatrice I, Countess of Burgundy"]
    assert all(t in titles for e in aligned.values() for t in e.gold_passages)


def test_hotpotqa(shared_data: Path) -> None:
    examples = load_dataset(shared_data / "multihop" / "hotpotqa_train.json")
    assert len(examples) == 100
    first = examples[0]
    assert first.id == "5a77ec115542992a6e59dff7"
    assert first.answers == ["a spirit"]
    assert first.gold_passages == ["Alû", "Lilu (mythology)"]
    assert (first.question_type, first.hops) == ("bridge", 2)
    corpus = load_corpus(shared_data / "multihop" / "hotpotqa_train_corpus.json")
    assert len(corpus) == 994
    assert corpus[0].title == "Demon Dice"
    assert corpus[0].text.startswith("Demon Dice, originally published as Chaos Progenitus")


def test_musique(shared_data: Path) -> None:
    examples = load_dataset(shared_data / "multihop" / "musique_train.json")
    first = examples[0]
    assert first.id == "2hop__150763_14904"
    assert first.answers == ["G. Stanley Hall", "Stanley Hall"]
    assert first.gold_passages == ["Journal of Psychotherapy Integration", "Adolescence"]
    assert (first.question_type, first.hops) == ("2hop", 2)
    assert {e.hops for e in examples} == {2, 3, 4}
    assert len(load_corpus(shared_data / "multihop" / "musique_train_corpus.json")) == 1890


def test_mmlongbench(shared_data: Path) -> None:
    examples = load_dataset(shared_data / "mmlongbench" / "samples.json")
    assert len(examples) == 254
    first = examples[0]
    assert first.id == "Independents-Report#0"
    assert first.gold_pages == [
        GoldPage(doc="Independents-Report.pdf", page=3),
        GoldPage(doc="Independents-Report.pdf", page=5),
    ]
    assert (first.answer_format, first.question_type, first.source_doc) == (
        "Float",
        "multi-page",
        "Independents-Report.pdf",
    )
    unanswerable = [e for e in examples if e.answers == ["Not answerable"]]
    assert len(unanswerable) == 51
    assert all(e.answer_format == "None" and e.question_type == "unanswerable" for e in unanswerable)
    # the one released "page 0" annotation becomes "no gold page"
    assert all(page.page >= 1 for e in examples for page in e.gold_pages)


def test_generic_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    lines = [
        {"id": "a", "question": "Who?", "answers": ["Ann", "Anna"], "gold_passages": ["Ann (person)"], "hops": 1},
        {"question": "Which page?", "answers": "three", "gold_pages": [{"doc": "x.pdf", "page": 3}]},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    first, second = load_dataset(path)
    assert (first.id, first.answers, first.gold_passages, first.hops) == ("a", ["Ann", "Anna"], ["Ann (person)"], 1)
    assert (second.id, second.answers, second.gold_pages) == ("1", ["three"], [GoldPage(doc="x.pdf", page=3)])


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "q", "answers": ["a"]}\n{not json\n')
    with pytest.raises(DatasetError, match=r"broken\.jsonl:2"):
        load_dataset(broken)
    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"id": "1", "question": "q", "answers": ["a"]}\n' * 2)
    with pytest.raises(DatasetError, match="appears twice"):
        load_dataset(twice)
    unknown = tmp_path / "unknown.json"
    unknown.write_text('[{"prompt": "q"}]')
    with pytest.raises(DatasetError, match="cannot tell the dataset format"):
        load_dataset(unknown)
    with pytest.raises(DatasetError, match="not valid musique"):
        load_dataset(twice, fmt="musique")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "absent.json")


def test_seeded_sampling_is_stable_and_nested(shared_data: Path) -> None:
    examples = load_dataset(shared_data / "multihop" / "hotpotqa_train.json")
    ten = select_examples(examples, 10, seed=7)
    assert [e.id for e in ten] == [e.id for e in select_examples(examples, 10, seed=7)]
    assert [e.id for e in ten] != [e.id for e in select_examples(examples, 10, seed=8)]
    twenty = {e.id for e in select_examples(examples, 20, seed=7)}
    assert {e.id for e in ten} <= twenty  # a raised limit only adds questions
    order = [e.id for e in examples]
    assert [order.index(e.id) for e in ten] == sorted(order.index(e.id) for e in ten)  # file order kept
    assert select_examples(examples, 3, seed=None) == examples[:3]
    assert select_examples(examples, None, seed=1) == examples


def test_corpus_documents_and_manifest(tmp_path: Path) -> None:
    passages = [Passage(title="AC/DC", text="A band."), Passage(title="Paris (film)", text="A film. ")]
    files = write_corpus_documents(passages, tmp_path / "docs")
    assert [f.name for f in files] == ["0-AC-DC.txt", "1-Paris-film.txt"]
    assert files[0].read_text() == "AC/DC\n\nA band.\n"
    assert files[0].parent == tmp_path / "docs" / "documents"  # the manifest stays out of what is ingested
    assert documents_to_ingest(tmp_path / "docs") == files[0].parent
    manifest = json.loads((tmp_path / "docs" / MANIFEST_NAME).read_text())
    assert manifest["by_file"] == {"0-AC-DC.txt": "AC/DC", "1-Paris-film.txt": "Paris (film)"}
    doc_id = hashlib.sha256(files[1].read_bytes()).hexdigest()[:16]
    assert manifest["by_doc_id"][doc_id] == "Paris (film)"
    with pytest.raises(DatasetError, match="not empty"):
        write_corpus_documents(passages, tmp_path / "docs")


def test_prepare_corpus(shared_data: Path, tmp_path: Path) -> None:
    documents = shared_data / "mmlongbench" / "documents"
    assert prepare_corpus(shared_data / "mmlongbench" / "samples.json", documents, tmp_path / "x") == documents
    assert documents_to_ingest(documents) == documents
    hotpot = shared_data / "multihop" / "hotpotqa_train.json"
    folder = prepare_corpus(hotpot, None, tmp_path / "hotpot")  # the passages the questions carry
    titles = set(json.loads((folder / MANIFEST_NAME).read_text())["by_file"].values())
    assert {"Alû", "Lilu (mythology)", "Demon Dice"} <= titles
    assert prepare_corpus(hotpot, None, tmp_path / "hotpot") == folder  # reused, not rewritten


def test_corpus_from_examples(shared_data: Path) -> None:
    passages = corpus_from_examples(shared_data / "multihop" / "musique_train.json")
    assert {"Journal of Psychotherapy Integration", "Adolescence"} <= {p.title for p in passages}
    with pytest.raises(DatasetError, match="carry no passages"):
        corpus_from_examples(shared_data / "mmlongbench" / "samples.json")


def test_2wiki_hipporag_style_file(tmp_path: Path) -> None:
    record = {
        "_id": "w1",
        "type": "bridge_comparison",
        "question": "Which film has the director born first, A or B?",
        "context": [["A", ["A is a film by X."]], ["X", ["X was born in 1900."]], ["Other", ["Noise."]]],
        "supporting_facts": [["A", 0], ["X", 0], ["B", 0], ["Y", 0]],
        "evidences": [["A", "director", "X"], ["B", "director", "Y"], ["X", "born", "1900"], ["Y", "born", "1910"]],
        "answer": "A",
    }
    path = tmp_path / "2wiki.json"
    path.write_text(json.dumps([record]))
    (example,) = load_dataset(path)
    assert (example.id, example.answers, example.gold_passages) == ("w1", ["A"], ["A", "X", "B", "Y"])
    assert (example.question_type, example.hops) == ("bridge_comparison", 4)
    assert [p.title for p in corpus_from_examples(path)] == ["A", "X", "Other"]
