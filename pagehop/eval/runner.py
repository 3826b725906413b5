"""Batch evaluation: ask every question, append each answer to ``predictions.jsonl``, score, report.

The runner knows the system under test only through the ``QASystem`` protocol, so the GraphSearch
agent, the single-shot baseline and a test's dictionary all run the same way. A run is resumable: answers
are appended as they finish, and a re-run into the same folder skips the questions already answered
(questions whose system call raised are retried).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import ValidationError
from tqdm import tqdm

from pagehop.eval.datasets import (
    MANIFEST_NAME,
    QAExample,
    align_gold_titles,
    content_doc_id,
    load_corpus,
    load_dataset,
    select_examples,
)
from pagehop.eval.records import CitedEvidence, Cost, Gold, PredictionRecord, aggregate, score_record

PREDICTIONS_FILE = "predictions.jsonl"
METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"
_CITED_TEXT_CHARS = 300
_TRACE_LINES = 40
_TRACE_LINE_CHARS = 240


class EvalError(ValueError):
    """The run cannot start or resume as asked; the message says what to change."""


# ---------------------------------------------------------------- what the runner needs from a system


class AnswerLike(Protocol):
    """What an answer must carry (the engine's ``Answer`` does); read-only, so any model or dataclass fits.

    ``citations`` are models, dataclasses or dicts with ``doc_id``, ``page``, ``title``, ``text``.
    ``usage`` holds ``llm_calls``, ``tokens`` and per-stage seconds (a dict: ``seconds_per_stage``,
    ``stage_seconds`` or ``seconds``). ``trace`` steps with ``stage`` and ``summary`` print as one line each.
    An answer may also carry ``retrieved``: hits ranked after the citations, for retrieval recall.
    """

    @property
    def answer(self) -> str: ...

    @property
    def citations(self) -> Sequence[Any]: ...

    @property
    def graph_paths(self) -> Sequence[Any]: ...

    @property
    def trace(self) -> Any: ...

    @property
    def usage(self) -> Any: ...

    @property
    def answered_by(self) -> str: ...


class QASystem(Protocol):
    """Anything that answers a question. ``ask`` is called from ``concurrency`` threads at once."""

    def ask(self, question: str) -> AnswerLike: ...


@dataclass(frozen=True)
class Ablation:
    """The knobs an evaluation run compares; the CLI maps them onto Settings when it builds the system.

    The runner only records them (``run.json``) so reports can label and compare runs.
    """

    name: str = "full"
    system: Literal["agent", "single_shot"] = "agent"
    channels: Literal["both", "documents", "graph"] = "both"  # documents = text + page index
    max_rounds: int | None = None
    docpruner_k: float | None = None
    use_llm: bool = True


# ---------------------------------------------------------------- naming evidence as the benchmark does


class CorpusNames:
    """Maps a citation (content-hash ``doc_id``, title) back to the benchmark's passage title or file name."""

    def __init__(
        self,
        by_doc_id: Mapping[str, str] | None = None,
        by_title: Mapping[str, str] | None = None,
        titles: set[str] | None = None,
    ) -> None:
        self.by_doc_id = dict(by_doc_id or {})
        self.by_title = dict(by_title or {})
        self.titles = titles or set()  # the corpus's passage titles (empty for a folder of PDFs)

    @classmethod
    def from_path(cls, corpus: Path | None) -> CorpusNames:
        """From a corpus JSON file (titles only), a folder ``write_corpus_documents`` wrote (its manifest),
        or a folder of source documents such as MMLongBench's PDFs (hashed here, as ingestion hashes them)."""
        if corpus is None:
            return cls()
        corpus = Path(corpus)
        if corpus.is_file():
            return cls(titles={passage.title for passage in load_corpus(corpus)})
        if not corpus.is_dir():
            raise EvalError(f"corpus {corpus} does not exist")
        manifest = corpus / MANIFEST_NAME
        if manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            by_title = {Path(name).stem: title for name, title in data["by_file"].items()}
            by_title.update({name: title for name, title in data["by_file"].items()})
            return cls(data["by_doc_id"], by_title, set(data["by_file"].values()))
        files = sorted(p for p in corpus.rglob("*") if p.is_file())
        by_doc_id = {content_doc_id(p.read_bytes()): p.name for p in files}
        by_title = {p.stem: p.name for p in files} | {p.name: p.name for p in files}
        return cls(by_doc_id, by_title)

    def with_doc_names(self, doc_names: Mapping[str, str]) -> CorpusNames:
        """Also resolve these ``doc_id -> name`` pairs (e.g. from the workspace's documents)."""
        return CorpusNames(self.by_doc_id | dict(doc_names), self.by_title, self.titles)

    def name_of(self, doc_id: str, title: str) -> str:
        """By content hash first, then by the title ingestion gave (a file name or stem), else as cited."""
        if doc_id in self.by_doc_id:
            return self.by_doc_id[doc_id]
        if not title:
            return doc_id
        return self.by_title.get(title, self.by_title.get(Path(title).stem, title))


# ---------------------------------------------------------------- the run


def run_eval(
    dataset_path: Path,
    *,
    corpus: Path | None = None,
    fmt: str = "auto",
    limit: int | None = None,
    seed: int | None = 0,
    out_dir: Path,
    system: QASystem,
    concurrency: int = 4,
    ablation: Ablation | None = None,
    doc_names: Mapping[str, str] | None = None,
    progress: bool = True,
    report: bool = True,
) -> dict[str, Any]:
    """Evaluate ``system`` on a dataset; writes predictions.jsonl, metrics.json, run.json and the report.

    ``corpus`` (optional) names the evidence: a corpus JSON file, the folder ``write_corpus_documents``
    wrote, or a folder of the source PDFs; with it, 2Wiki triple subjects are aligned to corpus titles and
    cited ``doc_id``s are mapped back to benchmark titles / file names. ``doc_names`` adds ``doc_id -> name``
    pairs. ``limit`` questions are drawn with ``seed`` (None: the first ones). ``report=False`` skips
    report.md/html and the plots (``write_report`` makes them later). Returns metrics.json's dict.
    """
    if concurrency < 1:
        raise EvalError(f"concurrency must be at least 1, got {concurrency}")
    if report:
        # Imported first: a missing matplotlib (the "eval" extra) fails before hours of answering.
        from pagehop.eval.report import write_report
    ablation = ablation or Ablation()
    names = CorpusNames.from_path(corpus).with_doc_names(doc_names or {})
    examples = load_dataset(Path(dataset_path), fmt)
    if names.titles:
        examples = align_gold_titles(examples, names.titles)
    selected = select_examples(examples, limit, seed)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _claim_run_folder(out_dir, dataset_path, fmt, ablation, [example.id for example in selected])
    predictions_path = out_dir / PREDICTIONS_FILE
    finished = load_predictions(predictions_path, drop_errors=True)
    todo = [example for example in selected if example.id not in finished]

    _answer_all(todo, system, names, predictions_path, finished, concurrency, progress)

    records = [finished[example.id] for example in selected if example.id in finished]
    result = aggregate(records)
    (out_dir / METRICS_FILE).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if report:
        write_report([out_dir])
    return result


def _answer_all(
    todo: list[QAExample],
    system: QASystem,
    names: CorpusNames,
    predictions_path: Path,
    finished: dict[str, PredictionRecord],
    concurrency: int,
    progress: bool,
) -> None:
    """Ask ``todo`` on a thread pool; this thread alone appends each record as it arrives."""
    if not todo:
        return
    bar = tqdm(total=len(todo), desc="eval", unit="q", disable=not progress)
    running: list[dict[str, float]] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool, predictions_path.open("a", encoding="utf-8") as out:
        futures: dict[Future[PredictionRecord], QAExample] = {
            pool.submit(answer_one, example, system, names): example for example in todo
        }
        try:
            for future in as_completed(futures):
                record = future.result()
                out.write(record.model_dump_json() + "\n")
                out.flush()
                finished[record.id] = record
                running.append(score_record(record))
                bar.update(1)
                bar.set_postfix(_running_summary(running), refresh=False)
        except BaseException:
            # Ctrl-C or a bug: stop queued questions; what was written stays for the resume.
            for future in futures:
                future.cancel()
            raise
        finally:
            bar.close()


def _running_summary(scores: list[dict[str, float]]) -> dict[str, str]:
    summary = {}
    for key, label in (("qa.f1", "F1"), ("qa.em", "EM"), ("retrieval.recall@5", "R@5"), ("pages.recall@5", "P@5")):
        values = [s[key] for s in scores if key in s]
        if values:
            summary[label] = f"{sum(values) / len(values):.3f}"
    return summary


def answer_one(example: QAExample, system: QASystem, names: CorpusNames) -> PredictionRecord:
    """Ask one question and turn the answer (or the exception) into a record."""
    started = time.perf_counter()
    try:
        answer = system.ask(example.question)
        return _record_of(example, answer, names, latency_s=time.perf_counter() - started)
    except Exception as exc:  # one failing question (or malformed answer) must not stop the batch
        return PredictionRecord(
            id=example.id,
            question=example.question,
            prediction="",
            gold=Gold.of(example),
            question_type=example.question_type,
            hops=example.hops,
            latency_s=time.perf_counter() - started,
            error=f"{type(exc).__name__}: {exc}"[:1000],
        )


def _record_of(example: QAExample, answer: AnswerLike, names: CorpusNames, latency_s: float) -> PredictionRecord:
    cited = list(answer.citations)
    evidence = cited + list(getattr(answer, "retrieved", None) or [])
    named = [(names.name_of(str(_field(c, "doc_id") or ""), str(_field(c, "title") or "")), c) for c in evidence]
    return PredictionRecord(
        id=example.id,
        question=example.question,
        prediction=str(answer.answer or ""),
        gold=Gold.of(example),
        question_type=example.question_type,
        hops=example.hops,
        citations=[_cited(c) for c in cited],
        ranked_passages=_distinct(name for name, _ in named),
        # Graph facts may cite no page; they still count as passages above.
        ranked_pages=_distinct((name, int(_field(c, "page"))) for name, c in named if _field(c, "page")),
        graph_paths=[str(path)[:_TRACE_LINE_CHARS] for path in (answer.graph_paths or [])][:20],
        trace=trace_lines(answer.trace),
        answered_by=str(answer.answered_by or ""),
        cost=cost_of(answer.usage),
        latency_s=latency_s,
    )


def _field(item: Any, name: str) -> Any:
    """A citation may be a pydantic model, a dataclass or a dict."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _cited(citation: Any) -> CitedEvidence:
    return CitedEvidence(
        doc_id=str(_field(citation, "doc_id") or ""),
        page=_field(citation, "page"),
        title=str(_field(citation, "title") or ""),
        text=str(_field(citation, "text") or "")[:_CITED_TEXT_CHARS],
    )


def _distinct(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def cost_of(usage: Any) -> Cost:
    """LLM calls, tokens and per-stage seconds from the answer's usage (a model or a dict)."""
    if usage is None:
        return Cost()
    calls = _field(usage, "llm_calls")
    if calls is None:
        calls = _field(usage, "calls")
    tokens = _field(usage, "tokens")
    # The engine says seconds_per_stage (its "seconds" is the total); simpler systems give a dict.
    stages = next(
        (
            found
            for name in ("seconds_per_stage", "stage_seconds", "seconds")
            if isinstance(found := _field(usage, name), Mapping)
        ),
        {},
    )
    stage_seconds = {str(k): float(v) for k, v in stages.items()}
    return Cost(llm_calls=int(calls or 0), tokens=int(tokens or 0), stage_seconds=stage_seconds)


def trace_lines(trace: Any) -> list[str]:
    """A short, readable line per trace step (a list of strings, dicts or models; or one string)."""
    if not trace:
        return []
    steps = trace.splitlines() if isinstance(trace, str) else list(trace)
    lines = []
    for step in steps[:_TRACE_LINES]:
        if hasattr(step, "model_dump"):
            step = step.model_dump(mode="json")
        if isinstance(step, Mapping) and "stage" in step and "summary" in step:
            # The engine's TraceEvent: "[verify r1] 2 of 3 claims supported (llm, 1 calls, 0.8 s)".
            cost = f"{step.get('answered_by', '')}, {step.get('llm_calls', 0)} calls, {step.get('seconds', 0.0):.1f} s"
            text = f"[{step['stage']} r{step.get('round', 0)}] {step['summary']} ({cost})"
        else:
            text = step if isinstance(step, str) else json.dumps(step, ensure_ascii=False, default=str)
        lines.append(text if len(text) <= _TRACE_LINE_CHARS else text[: _TRACE_LINE_CHARS - 1] + "…")
    if len(steps) > _TRACE_LINES:
        lines.append(f"… {len(steps) - _TRACE_LINES} more steps")
    return lines


# ---------------------------------------------------------------- the output folder


def load_predictions(path: Path, *, drop_errors: bool = False) -> dict[str, PredictionRecord]:
    """Records by id. Lines that do not parse (a run killed mid-write) are dropped, and with ``drop_errors``
    so are errored questions; if anything was dropped the file is rewritten (atomically) without it, so the
    next appends start on a clean line."""
    if not path.is_file():
        return {}
    records: dict[str, PredictionRecord] = {}
    dropped = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = PredictionRecord.model_validate_json(line)
        except ValidationError:
            dropped += 1
            continue
        if drop_errors and record.error is not None:
            dropped += 1
            continue
        records[record.id] = record
    if dropped:
        _rewrite(path, records.values())
    return records


_rewrite_lock = threading.Lock()


def _rewrite(path: Path, records: Iterable[PredictionRecord]) -> None:
    with _rewrite_lock:
        temporary = path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
        os.replace(temporary, path)


def _claim_run_folder(out_dir: Path, dataset_path: Path, fmt: str, ablation: Ablation, ids: list[str]) -> None:
    """Write run.json (with the selected ids, which reports read), refusing a folder that holds a different
    dataset or ablation: mixing them would silently corrupt the metrics."""
    run_file = out_dir / RUN_FILE
    identity = {"dataset": str(Path(dataset_path).resolve()), "fmt": fmt, "ablation": asdict(ablation)}
    if run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        for key, value in identity.items():
            if previous.get(key) != value:
                raise EvalError(
                    f"{out_dir} holds a run with {key}={previous.get(key)!r}, not {value!r}; use another output folder"
                )
    elif (out_dir / PREDICTIONS_FILE).exists():
        raise EvalError(f"{out_dir} has predictions but no {RUN_FILE}; use another output folder")
    run = identity | {"ids": ids, "updated_at": time.time()}
    run_file.write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")


def read_run(out_dir: Path) -> tuple[dict[str, Any], dict[str, Any], list[PredictionRecord]]:
    """run.json, metrics.json and the records of a finished run folder's selected questions, in order."""
    out_dir = Path(out_dir)
    for name in (RUN_FILE, METRICS_FILE, PREDICTIONS_FILE):
        if not (out_dir / name).is_file():
            raise EvalError(f"{out_dir} is not a finished evaluation run: {name} is missing")
    run = json.loads((out_dir / RUN_FILE).read_text(encoding="utf-8"))
    result = json.loads((out_dir / METRICS_FILE).read_text(encoding="utf-8"))
    records = load_predictions(out_dir / PREDICTIONS_FILE)
    return run, result, [records[i] for i in run["ids"] if i in records]
