"""Small, real 2WikiMultiHopQA corpus slices for agent tests and benchmarks.

A slice holds chosen questions plus the corpus passages they need (a passage is gold when
its title is the subject of one of the question's evidence triples) and seeded random
distractor passages, as `Chunk`s ready for a text index. One passage = one document page.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pagehop.schema import Chunk

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "multihop"


@dataclass
class MultihopSlice:
    questions: list[dict[str, Any]]
    chunks: list[Chunk]


def passage_doc_id(title: str) -> str:
    return hashlib.sha256(title.encode("utf-8")).hexdigest()[:16]


def load_2wiki(data_dir: Path = DATA_DIR) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(the 300 dev questions, the 6,119-passage corpus)."""
    questions = json.loads((data_dir / "2wikimultihopqa_dev300.json").read_text(encoding="utf-8"))
    corpus = json.loads((data_dir / "2wikimultihopqa_corpus.json").read_text(encoding="utf-8"))
    return questions, corpus


def build_slice(
    question_ids: list[str] | None = None,
    *,
    limit: int | None = None,
    distractors: int = 50,
    seed: int = 0,
    data_dir: Path = DATA_DIR,
) -> MultihopSlice:
    """Questions (by id, or the first ``limit``), their gold passages and random distractors."""
    questions, corpus = load_2wiki(data_dir)
    if question_ids is not None:
        by_id = {q["id"]: q for q in questions}
        chosen = [by_id[i] for i in question_ids]
    else:
        chosen = questions[:limit]
    gold_titles = {triple[0] for q in chosen for triple in q["evidence"]}
    passages = [p for p in corpus if p["title"] in gold_titles]
    others = [p for p in corpus if p["title"] not in gold_titles]
    passages += random.Random(seed).sample(others, min(distractors, len(others)))
    return MultihopSlice(questions=chosen, chunks=passage_chunks(passages))


def passage_chunks(passages: list[dict[str, str]]) -> list[Chunk]:
    """One chunk per ``{title, text}`` passage, in its own document (id from the title)."""
    return [
        Chunk(
            chunk_id=f"{passage_doc_id(p['title'])}-{i}",
            doc_id=passage_doc_id(p["title"]),
            page_start=1,
            page_end=1,
            char_start=0,
            char_end=len(p["text"]),
            text=p["text"],
            title=p["title"],
        )
        for i, p in enumerate(passages)
    ]


# A small hand-made encyclopedic corpus (title -> passage) with two-hop links, for tests of the graph
# channel and of ingestion.
FILM_PASSAGES = {
    "The Silent Harbor": "The Silent Harbor is a 1995 drama film directed by Tomas Lindqvist. "
    "It was produced by Nordic Pictures.",
    "Tomas Lindqvist": "Tomas Lindqvist (born 3 March 1950 in Uppsala) is a Swedish film director. "
    "His mother was the actress Greta Lindqvist.",
    "Greta Lindqvist": "Greta Lindqvist was a Swedish actress who starred in many films in Stockholm.",
    "Nordic Pictures": "Nordic Pictures is a film studio based in Gothenburg, founded by Erik Sandberg.",
    "Marie Curie": "Marie Curie was born in Warsaw. She married Pierre Curie in Paris.",
    "Oslo Opera House": "The Oslo Opera House is the home of the Norwegian National Opera and Ballet.",
}
