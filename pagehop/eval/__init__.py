"""Batch QA evaluation: benchmark datasets, metrics, a resumable runner, reports, a single-shot baseline.

from pagehop.eval import Ablation, run_eval
metrics = run_eval(dataset, corpus=corpus_dir, out_dir=Path("runs/2wiki"), system=engine, limit=50)
"""

from pagehop.eval.datasets import (
    DatasetError,
    Passage,
    QAExample,
    documents_to_ingest,
    load_corpus,
    load_dataset,
    prepare_corpus,
    write_corpus_documents,
)
from pagehop.eval.runner import Ablation, AnswerLike, EvalError, QASystem, run_eval

__all__ = [
    "Ablation",
    "AnswerLike",
    "DatasetError",
    "EvalError",
    "Passage",
    "QAExample",
    "QASystem",
    "documents_to_ingest",
    "load_corpus",
    "load_dataset",
    "prepare_corpus",
    "run_eval",
    "write_corpus_documents",
]
