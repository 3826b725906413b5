"""QA benchmarks in their native formats, read into one normalised ``QAExample``.

Supported (``fmt`` names):

- ``2wiki``: 2WikiMultiHopQA as HippoRAG ships it (``_id``, ``type``, ``context``, ``supporting_facts``,
  ``evidences``); gold passages are the supporting-fact titles.
- ``2wiki_questions``: the question list with evidence triples (``id``, ``question_type``, ``evidence``);
  a passage is gold when its title equals a triple's subject.
- ``hotpotqa``: the original HotpotQA format (``_id``, ``type``, ``level``, ``context``, ``supporting_facts``).
- ``musique``: MuSiQue-Ans (``paragraphs[].is_supporting``, ``question_decomposition``, ``answer_aliases``).
- ``mmlongbench``: MMLongBench-Doc ``samples.json`` (``doc_id``, ``evidence_pages`` as a JSON list in a
  string, 1-based; ``answer_format``; "Not answerable").
- ``jsonl``: one object a line: ``question``, ``answers`` (list or string), optional ``id``, ``gold_passages``
  (titles), ``gold_pages`` ([{doc, page}]), ``question_type``, ``hops``, ``answer_format``.

Corpora: a list of ``{title, text}`` or a dict ``title -> sentences``; ``write_corpus_documents`` turns one
into text files the ingest pipeline reads (one passage a file, title on the first line).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

DatasetFormat = Literal["2wiki", "2wiki_questions", "hotpotqa", "musique", "mmlongbench", "jsonl"]
FORMATS: tuple[str, ...] = ("2wiki", "2wiki_questions", "hotpotqa", "musique", "mmlongbench", "jsonl")
NOT_ANSWERABLE = "Not answerable"
# 2WikiMultiHopQA's question types; they tell its HippoRAG-style file apart from HotpotQA's.
TWOWIKI_TYPES = frozenset({"comparison", "inference", "compositional", "bridge_comparison"})
MANIFEST_NAME = "manifest.json"
DOCUMENTS_DIR = "documents"


class DatasetError(ValueError):
    """The dataset or corpus file cannot be read as the format asked for; the message says why."""


class GoldPage(BaseModel):
    doc: str = Field(description="the document's file name as the benchmark names it, e.g. 'report.pdf'")
    page: int = Field(ge=1)


class QAExample(BaseModel):
    id: str
    question: str
    answers: list[str] = Field(description="the gold answer first, then its aliases")
    gold_passages: list[str] = Field(default_factory=list, description="titles of the supporting passages")
    gold_pages: list[GoldPage] = Field(default_factory=list)
    question_type: str = "unknown"
    hops: int | None = None
    answer_format: str = "Str"
    source_doc: str | None = Field(None, description="the one document the question is about (MMLongBench)")


class Passage(BaseModel):
    title: str
    text: str


# ---------------------------------------------------------------- reading datasets


def load_dataset(path: Path, fmt: str = "auto") -> list[QAExample]:
    """Every example of ``path`` in file order; ``fmt="auto"`` detects the format from the records."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    if fmt not in ("auto", *FORMATS):
        raise DatasetError(f"unknown dataset format {fmt!r}; choose one of auto, {', '.join(FORMATS)}")
    records = _read_records(path)
    if not records:
        raise DatasetError(f"{path} holds no questions")
    chosen = detect_format(records, path) if fmt == "auto" else fmt
    parse = _PARSERS[chosen]
    examples = []
    for number, record in enumerate(records):
        try:
            examples.append(parse(record, number))
        except (KeyError, TypeError, ValueError, SyntaxError) as exc:
            raise DatasetError(f"{path}: record {number} is not valid {chosen}: {exc!r}") from None
    _check_unique_ids(examples, path)
    return examples


def detect_format(records: list[dict[str, Any]], path: Path | None = None) -> str:
    """The format name whose fields the first record carries."""
    first = records[0]
    if not isinstance(first, dict):
        raise DatasetError(f"{path}: records must be JSON objects, got {type(first).__name__}")
    keys = set(first)
    if {"evidence_pages", "answer_format", "doc_id"} <= keys:
        return "mmlongbench"
    if {"paragraphs", "question_decomposition"} <= keys:
        return "musique"
    if {"context", "supporting_facts"} <= keys:
        is_2wiki = "evidences" in keys or first.get("type") in TWOWIKI_TYPES
        return "2wiki" if is_2wiki else "hotpotqa"
    if {"evidence", "question_type"} <= keys:
        return "2wiki_questions"
    if "question" in keys and ("answers" in keys or "answer" in keys):
        return "jsonl"
    raise DatasetError(f"{path}: cannot tell the dataset format from the fields {sorted(keys)}; pass fmt")


def _read_records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{line_number}: not valid JSON ({exc.msg})") from None
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of questions, got {type(data).__name__}")
    return data


def _check_unique_ids(examples: list[QAExample], path: Path) -> None:
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DatasetError(f"{path}: question id {example.id!r} appears twice")
        seen.add(example.id)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _parse_2wiki(record: dict[str, Any], number: int) -> QAExample:
    # One hop per distinct entity the evidence triples start from (bridge-comparison questions have four).
    subjects = _unique(str(triple[0]) for triple in record.get("evidences") or [])
    return QAExample(
        id=str(record["_id"]),
        question=record["question"],
        answers=_unique([record["answer"], *record.get("answer_aliases", [])]),
        gold_passages=_unique(title for title, _sentence in record["supporting_facts"]),
        question_type=record.get("type", "unknown"),
        hops=len(subjects) or None,
    )


def _parse_2wiki_questions(record: dict[str, Any], number: int) -> QAExample:
    subjects = _unique(str(triple[0]) for triple in record["evidence"])
    return QAExample(
        id=str(record["id"]),
        question=record["question"],
        answers=_unique([record["answer"], *record.get("answer_aliases", [])]),
        gold_passages=subjects,
        question_type=record.get("question_type", "unknown"),
        hops=len(subjects) or None,
    )


def _parse_hotpotqa(record: dict[str, Any], number: int) -> QAExample:
    gold = _unique(title for title, _sentence in record["supporting_facts"])
    return QAExample(
        id=str(record["_id"]),
        question=record["question"],
        answers=[record["answer"]],
        gold_passages=gold,
        question_type=record.get("type", "unknown"),
        hops=len(gold) or None,
    )


def _parse_musique(record: dict[str, Any], number: int) -> QAExample:
    gold = _unique(p["title"] for p in record["paragraphs"] if p.get("is_supporting"))
    answerable = record.get("answerable", True)
    answers = _unique([record["answer"], *record.get("answer_aliases", [])]) if answerable else [NOT_ANSWERABLE]
    return QAExample(
        id=str(record["id"]),
        question=record["question"],
        answers=answers,
        gold_passages=gold,
        # The id says the reasoning shape: "2hop", "3hop1", "4hop3", ...
        question_type=str(record["id"]).split("__")[0],
        hops=len(record["question_decomposition"]) or None,
        answer_format="Str" if answerable else "None",
    )


def _parse_mmlongbench(record: dict[str, Any], number: int) -> QAExample:
    # One released annotation says page 0; a page that cannot exist is no gold page.
    pages = [int(page) for page in _literal_list(record["evidence_pages"]) if int(page) >= 1]
    doc = record["doc_id"]
    answer_format = record["answer_format"]
    if record["answer"] == NOT_ANSWERABLE:
        question_type = "unanswerable"
    elif not pages:
        question_type = "no-evidence"
    else:
        question_type = "single-page" if len(pages) == 1 else "multi-page"
    return QAExample(
        id=f"{Path(doc).stem}#{number}",
        question=record["question"],
        answers=[str(record["answer"])],
        gold_pages=[GoldPage(doc=doc, page=page) for page in pages],
        question_type=question_type,
        hops=len(pages) or None,
        answer_format=answer_format,
        source_doc=doc,
    )


def _parse_jsonl(record: dict[str, Any], number: int) -> QAExample:
    answers = record.get("answers", record.get("answer"))
    if isinstance(answers, str):
        answers = [answers]
    if not answers or not all(isinstance(answer, str) for answer in answers):
        raise ValueError("'answers' must be a non-empty list of strings")
    pages = [GoldPage(doc=p["doc"], page=int(p["page"])) for p in record.get("gold_pages", [])]
    return QAExample(
        id=str(record.get("id", number)),
        question=record["question"],
        answers=_unique(answers),
        gold_passages=_unique(record.get("gold_passages", [])),
        gold_pages=pages,
        question_type=record.get("question_type", "unknown"),
        hops=record.get("hops"),
        answer_format=record.get("answer_format", "Str"),
    )


def _literal_list(value: Any) -> list[Any]:
    """MMLongBench writes lists as Python literals inside strings: ``"[3, 5]"``."""
    parsed = ast.literal_eval(value) if isinstance(value, str) else value
    if not isinstance(parsed, list):
        raise ValueError(f"expected a list, got {value!r}")
    return parsed


_PARSERS = {
    "2wiki": _parse_2wiki,
    "2wiki_questions": _parse_2wiki_questions,
    "hotpotqa": _parse_hotpotqa,
    "musique": _parse_musique,
    "mmlongbench": _parse_mmlongbench,
    "jsonl": _parse_jsonl,
}


# ---------------------------------------------------------------- sampling


def select_examples(examples: list[QAExample], limit: int | None, seed: int | None) -> list[QAExample]:
    """``limit`` examples drawn with ``seed`` (file order when seed is None), kept in file order.

    A seeded shuffle and a prefix of it: a larger limit with the same seed keeps every question a smaller
    one chose, so a resumed run with a raised limit only adds questions.
    """
    if limit is None or limit >= len(examples):
        return list(examples)
    if limit < 1:
        raise DatasetError(f"limit must be at least 1, got {limit}")
    if seed is None:
        return examples[:limit]
    import random

    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    return [examples[i] for i in sorted(order[:limit])]


# ---------------------------------------------------------------- corpora


def load_corpus(path: Path) -> list[Passage]:
    """A passage corpus: a JSON list of ``{title, text}`` or a dict ``title -> sentences`` (HotpotQA)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"corpus file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        return [Passage(title=title, text="".join(sentences)) for title, sentences in data.items()]
    if isinstance(data, list) and all(isinstance(p, dict) and "title" in p for p in data):
        return [Passage(title=p["title"], text=p.get("text", p.get("paragraph_text", ""))) for p in data]
    raise DatasetError(f"{path}: a corpus is a list of {{title, text}} or a dict title -> sentences")


def corpus_from_examples(path: Path, fmt: str = "auto") -> list[Passage]:
    """The passages a context-carrying dataset (2Wiki HippoRAG-style, HotpotQA, MuSiQue) ships per question.

    Duplicates (same title and text) are kept once.
    """
    records = _read_records(Path(path))
    chosen = detect_format(records, Path(path)) if fmt == "auto" else fmt
    passages: dict[tuple[str, str], Passage] = {}
    for record in records:
        if chosen in ("2wiki", "hotpotqa"):
            pairs = [(title, "".join(sentences)) for title, sentences in record["context"]]
        elif chosen == "musique":
            pairs = [(p["title"], p["paragraph_text"]) for p in record["paragraphs"]]
        else:
            raise DatasetError(f"{chosen} questions carry no passages; pass a corpus file")
        for title, text in pairs:
            passages.setdefault((title, text), Passage(title=title, text=text))
    return list(passages.values())


def align_gold_titles(examples: list[QAExample], corpus_titles: Iterable[str]) -> list[QAExample]:
    """Gold titles as the corpus spells them.

    2Wiki's evidence triples name the entity ("Inherent Vice") where the corpus title carries a
    disambiguation ("Inherent Vice (Film)"). A subject missing from the corpus maps to the one title that is
    the subject plus a parenthesis, preferring the parenthesis the question itself mentions. A subject that
    matches no title names no passage (often a full name: "Frederick William Dickens") and is dropped, as
    the dataset's rule "gold = a passage whose title is a triple's subject" says.
    """
    exact = set(corpus_titles)
    by_lower: dict[str, list[str]] = {}
    for title in exact:
        base = re.sub(r"\s*\([^)]*\)$", "", title).strip().lower()
        by_lower.setdefault(base, []).append(title)
    aligned = []
    for example in examples:
        titles = [_align_title(title, example.question, exact, by_lower) for title in example.gold_passages]
        matched = [title for title in titles if title is not None]
        aligned.append(example.model_copy(update={"gold_passages": _unique(matched)}))
    return aligned


def _align_title(title: str, question: str, exact: set[str], by_base: dict[str, list[str]]) -> str | None:
    if title in exact:
        return title
    candidates = sorted(by_base.get(title.strip().strip('"').lower(), []))
    mentioned = [c for c in candidates if c.lower() in question.lower() or _parenthesis(c) in question.lower()]
    if len(mentioned) == 1:
        return mentioned[0]
    if len(candidates) == 1:
        return candidates[0]
    return None


def _parenthesis(title: str) -> str:
    found = re.search(r"\(([^)]*)\)$", title)
    return f"({found.group(1).lower()})" if found else "\0"


def write_corpus_documents(passages: list[Passage], out_dir: Path) -> list[Path]:
    """One UTF-8 ``.txt`` file per passage in ``out_dir/documents``: title line, blank line, text.

    File names are ``<number>-<slug>.txt`` (titles may hold '/' or repeat). ``out_dir/manifest.json`` maps
    each file's name and content hash (the ``doc_id`` ingestion gives it: sha256, first 16 hex digits) to
    the passage title, so citations resolve back to benchmark titles. The manifest sits outside the
    documents folder, so that folder can be ingested as it is. Returns the files in corpus order.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir} is not empty; write the corpus into a new folder")
    documents = out_dir / DOCUMENTS_DIR
    documents.mkdir(parents=True)
    width = len(str(len(passages)))
    files: list[Path] = []
    manifest: dict[str, dict[str, str]] = {"by_file": {}, "by_doc_id": {}}
    for number, passage in enumerate(passages):
        path = documents / f"{number:0{width}d}-{_slug(passage.title)}.txt"
        content = f"{passage.title}\n\n{passage.text.strip()}\n".encode()
        path.write_bytes(content)
        manifest["by_file"][path.name] = passage.title
        manifest["by_doc_id"][content_doc_id(content)] = passage.title
        files.append(path)
    # Written last: a folder with a manifest is a complete corpus (prepare_corpus reuses it).
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, ensure_ascii=False, indent=0), encoding="utf-8")
    return files


def content_doc_id(content: bytes) -> str:
    """The id ingestion gives a document: sha256 of the file's bytes, first 16 hex digits."""
    return hashlib.sha256(content).hexdigest()[:16]


def _slug(title: str, max_chars: int = 60) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:max_chars].strip("-")
    return slug or "passage"


def prepare_corpus(dataset_path: Path, corpus: Path | None, out_dir: Path, fmt: str = "auto") -> Path:
    """The corpus folder to pass to ``run_eval(corpus=...)``; ingest ``documents_to_ingest(folder)`` first.

    - ``corpus`` a folder (MMLongBench's PDFs): returned as it is.
    - ``corpus`` a JSON corpus file: its passages written into ``out_dir`` (``write_corpus_documents``).
    - no corpus: the passages the questions themselves carry (HotpotQA, MuSiQue, 2Wiki HippoRAG-style).

    An ``out_dir`` already holding a written corpus (its manifest) is reused, so a resumed run finds the
    same files, and ingestion (content-hashed) skips what it already has.
    """
    if corpus is not None and Path(corpus).is_dir():
        return Path(corpus)
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST_NAME).is_file():
        return out_dir
    passages = load_corpus(Path(corpus)) if corpus is not None else corpus_from_examples(dataset_path, fmt)
    write_corpus_documents(passages, out_dir)
    return out_dir


def documents_to_ingest(corpus_folder: Path) -> Path:
    """The folder holding a corpus folder's documents: ``documents/`` of a written corpus, else itself."""
    corpus_folder = Path(corpus_folder)
    return corpus_folder / DOCUMENTS_DIR if (corpus_folder / MANIFEST_NAME).is_file() else corpus_folder
