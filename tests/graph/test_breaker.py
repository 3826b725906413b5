"""The graph server's circuit breaker, on a clock the test moves and a probe it switches on and off."""

from __future__ import annotations

import pytest
from neo4j.exceptions import ServiceUnavailable

from pagehop.graph.breaker import CircuitBreaker, CircuitOpen


class Server:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0
        self.probes = 0

    def query(self) -> str:
        self.calls += 1
        if not self.up:
            raise ServiceUnavailable("connection refused")
        return "rows"

    def probe(self) -> None:
        self.probes += 1
        if not self.up:
            raise ServiceUnavailable("connection refused")


def test_open_after_a_failure_skip_during_the_cool_down_probe_once_after_it() -> None:
    now = [0.0]
    server = Server()
    breaker = CircuitBreaker(30.0, probe=server.probe, clock=lambda: now[0])

    def call() -> str:
        with breaker.guard():
            return server.query()

    assert call() == "rows" and not breaker.is_open
    server.up = False
    with pytest.raises(ServiceUnavailable) as first:
        call()
    assert not isinstance(first.value, CircuitOpen) and breaker.is_open  # this one reached the server
    for _ in range(5):  # during the cool-down nothing reaches the server
        with pytest.raises(CircuitOpen):
            call()
    assert (server.calls, server.probes, breaker.skipped) == (2, 0, 5)

    now[0] = 31.0  # cool-down over, server still down: one probe, open again for another cool-down
    with pytest.raises(CircuitOpen, match="still does not answer"):
        call()
    with pytest.raises(CircuitOpen):
        call()
    assert (server.calls, server.probes) == (2, 1)

    server.up = True
    now[0] = 62.0  # back: the probe closes the breaker and the call goes through
    assert call() == "rows" and not breaker.is_open
    assert (server.calls, server.probes, breaker.trips) == (3, 2, 1)


def test_a_query_the_server_refuses_does_not_open_the_breaker() -> None:
    breaker = CircuitBreaker(30.0, probe=lambda: None)
    with pytest.raises(ValueError), breaker.guard():
        raise ValueError("bad query")
    assert not breaker.is_open
