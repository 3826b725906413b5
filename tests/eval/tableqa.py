"""A deterministic question-answering system for the evaluation tests: it answers from a table."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cite:
    doc_id: str
    page: int
    title: str
    text: str = ""


@dataclass
class TableAnswer:
    """Shaped like the engine's Answer."""

    answer: str
    citations: list[Cite]
    graph_paths: list[Any] = field(default_factory=list)
    trace: list[Any] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    answered_by: str = "table"


class TableQA:
    """Answers each question from ``table``; a question not in it raises, like a failing system would.

    Records which questions it was asked (from several threads at once).
    """

    def __init__(self, table: dict[str, TableAnswer]) -> None:
        self.table = table
        self.asked: list[str] = []
        self._lock = threading.Lock()

    def ask(self, question: str) -> TableAnswer:
        with self._lock:
            self.asked.append(question)
        if question not in self.table:
            raise RuntimeError(f"no answer for {question!r}")
        return self.table[question]
