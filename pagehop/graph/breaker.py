"""A circuit breaker for the graph server: after it fails, skip it at once instead of waiting on it per call.

The driver spends up to ``neo4j_store.RETRY_SECONDS`` retrying each transaction against a server
that is gone, so a question with six sub-queries would wait that long six times. The breaker
opens on the first such failure; while it is open every call fails at once with ``CircuitOpen``
(a ``ServiceUnavailable``, so every door that already turns an unreachable server into
"graph channel unavailable" handles it unchanged). After ``cool_down_s`` the next call first
runs one short probe (a connection check, no transaction retries): if the server answers, the
breaker closes and the call goes through; if not, it stays open for another cool-down. While
one caller probes, the others are skipped, so an outage costs each question at most one probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from neo4j.exceptions import DatabaseUnavailable, ServiceUnavailable, SessionExpired

# What the driver raises when the server itself is gone, as opposed to a query it refused.
UNREACHABLE: tuple[type[Exception], ...] = (ServiceUnavailable, SessionExpired, DatabaseUnavailable)


class CircuitOpen(ServiceUnavailable):
    """The graph server failed recently; the call was skipped without reaching it."""


class CircuitBreaker:
    """Closed (calls go through), open (calls are skipped), half-open (one probe decides) after each cool-down."""

    def __init__(
        self, cool_down_s: float, probe: Callable[[], object], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cool_down_s = cool_down_s
        self._probe = probe
        self._clock = clock
        self._lock = threading.Lock()
        self._opened_at: float | None = None  # None: closed
        self._probing = False
        self.trips = 0  # calls that reached the server and found it gone
        self.skipped = 0  # calls answered at once while open
        self.probes = 0

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the body against the server unless the breaker is open; a lost server opens it."""
        self._before_call()
        try:
            yield
        except CircuitOpen:
            raise
        except UNREACHABLE:
            with self._lock:
                self.trips += 1
                self._opened_at = self._clock()
            raise

    def _before_call(self) -> None:
        with self._lock:
            if self._opened_at is None:
                return
            waited = self._clock() - self._opened_at
            if waited < self.cool_down_s or self._probing:
                self.skipped += 1
                raise CircuitOpen(
                    f"the graph server failed {waited:.0f} s ago; skipped until a probe after "
                    f"{self.cool_down_s:g} s (graph.outage_cool_down_s) finds it back"
                )
            self._probing = True
            self.probes += 1
        try:
            self._probe()
        except UNREACHABLE as exc:
            with self._lock:
                self._opened_at, self._probing = self._clock(), False
            raise CircuitOpen(f"the graph server still does not answer: {exc}") from exc
        except BaseException:
            with self._lock:
                self._probing = False
            raise
        with self._lock:
            self._opened_at, self._probing = None, False
