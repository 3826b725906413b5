"""A per-task time budget that long-running loops check cooperatively.

Ingestion gives each file ``ingest.max_seconds_per_file``. The work for a file spans several
areas (page rendering, OCR, graph extraction), so the budget travels in a context variable
instead of through every signature: a loop calls :func:`check_deadline` between units of work,
and the first call past the budget raises :class:`DeadlineExceeded`. Cooperative checks never
interrupt a native call half-way, so nothing is left torn; the overrun is bounded by the
longest single step between checks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


class DeadlineExceeded(Exception):
    """The task ran past its time budget; the message says which budget and how to raise it."""


@dataclass(frozen=True)
class Deadline:
    seconds: float
    ends_at: float  # time.monotonic()
    what: str  # the setting that set it, for the message

    def remaining(self) -> float:
        return self.ends_at - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self.ends_at:
            raise DeadlineExceeded(f"took longer than {self.seconds:g} s ({self.what})")


_current: ContextVar[Deadline | None] = ContextVar("pagehop_deadline", default=None)


@contextmanager
def deadline(seconds: float | None, what: str) -> Iterator[Deadline | None]:
    """Run the body under a budget of ``seconds`` (None: unbounded); nests by keeping the earlier end."""
    if seconds is None:
        yield _current.get()
        return
    outer = _current.get()
    ends_at = time.monotonic() + seconds
    current = outer if outer is not None and outer.ends_at <= ends_at else Deadline(seconds, ends_at, what)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


@contextmanager
def resumed(budget: Deadline | None) -> Iterator[None]:
    """Run the body under a budget taken earlier from :func:`deadline` (work on a file that continues later)."""
    token = _current.set(budget)
    try:
        yield
    finally:
        _current.reset(token)


def check_deadline() -> None:
    """Raise DeadlineExceeded when the current task is over its budget; free when there is none."""
    current = _current.get()
    if current is not None:
        current.check()


def remaining_seconds(default: float) -> float:
    """Seconds left in the current budget (at least a moment), or ``default`` when unbounded."""
    current = _current.get()
    if current is None:
        return default
    return max(0.01, min(default, current.remaining()))
