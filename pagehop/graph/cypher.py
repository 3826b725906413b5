"""Read-only Cypher for LLM-written queries, with two independent locks.

1. Before anything runs, a small lexer drops strings, comments and backtick-quoted names, then
   refuses every write or admin keyword (CREATE, MERGE, SET, DELETE, DETACH, REMOVE, DROP, LOAD
   CSV, FOREACH, GRANT, ... , ``CALL { } IN TRANSACTIONS``), any procedure not on a short
   read-only allow-list (so ``CALL db.createLabel``, ``CALL dbms.*``, ``apoc.*`` are refused), SHOW
   and USE, and a second statement after ``;``. ``WHERE n.name = 'CREATE'`` is fine: the
   keyword sits in a string. A keyword used as a property key (``n.set``) is allowed too.
2. What passes runs in a READ transaction (``execute_read`` on a read-mode session) with a
   server-side timeout, so a write the lexer missed still fails in Neo4j.

Rows are capped at ``max_rows``; the result says when it was cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j.exceptions import DriverError, Neo4jError
from neo4j.graph import Node, Path, Relationship

from pagehop.graph.base import GraphStore, GraphUnavailable
from pagehop.graph.breaker import UNREACHABLE, CircuitBreaker

WRITE_KEYWORDS = frozenset(
    {
        "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "LOAD", "FOREACH", "INSERT",
        "ALTER", "RENAME", "GRANT", "DENY", "REVOKE", "START", "STOP", "TERMINATE", "ENABLE",
        "DEALLOCATE", "REALLOCATE", "SHOW", "USE",
    }
)  # fmt: skip
READ_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.schema.visualization",
        "db.schema.nodetypeproperties",
        "db.schema.reltypeproperties",
        "db.index.fulltext.querynodes",
        "db.index.fulltext.queryrelationships",
        "db.index.vector.querynodes",
    }
)
FORBIDDEN_NAMESPACES = ("apoc.", "dbms.", "gds.")
HIDDEN_PROPERTIES = frozenset({"embedding"})  # 384 floats help no reader

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<param>\$\w+)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<symbol>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class CypherRefused(ValueError):
    """The query could write, administer, or escape the read-only rules; nothing was run."""


class CypherError(RuntimeError):
    """Neo4j rejected or aborted the query (syntax, timeout, a write caught by the read transaction)."""


class CypherUnreachable(CypherError, GraphUnavailable):
    """The Neo4j server did not answer: the agent drops the graph query and says the channel is down."""


class CypherUnavailable(RuntimeError):
    """The configured graph store has no Cypher (the embedded networkx store)."""


def tokens(query: str) -> list[tuple[str, str]]:
    """(kind, text) of ``query`` without whitespace and comments; strings stay as one opaque token."""
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None or (match.lastgroup == "symbol" and query[position] in "'\"`"):
            raise CypherRefused(f"unterminated string or quoted name at character {position}")
        if match.lastgroup == "symbol" and query.startswith("/*", position):
            raise CypherRefused(f"unterminated comment at character {position}")
        kind = match.lastgroup or "symbol"
        if kind not in ("space", "line_comment", "block_comment"):
            found.append((kind, match.group()))
        position = match.end()
    return found


def check_read_only(query: str) -> None:
    """Raise CypherRefused unless ``query`` is a single statement that only reads."""
    toks = tokens(query)
    if not toks:
        raise CypherRefused("empty query")
    for i, (kind, text) in enumerate(toks):
        after_dot = i > 0 and toks[i - 1] == ("symbol", ".")
        if kind == "symbol" and text == ";" and any(k != "symbol" or t != ";" for k, t in toks[i + 1 :]):
            raise CypherRefused("one statement only: remove what follows ';'")
        if kind != "word" or after_dot:
            continue
        word = text.upper()
        if word in WRITE_KEYWORDS:
            raise CypherRefused(f"{word} is not allowed: the Cypher tool only reads")
        if word == "IN" and _next_word(toks, i) == "TRANSACTIONS":
            raise CypherRefused("CALL { ... } IN TRANSACTIONS is not allowed: it commits writes in batches")
        name = _dotted_name(toks, i)
        if name.lower().startswith(FORBIDDEN_NAMESPACES):
            raise CypherRefused(f"{name} is not allowed: apoc, dbms and gds routines are refused")
        if word == "CALL":
            _check_call(toks, i)


def _next_word(toks: list[tuple[str, str]], i: int) -> str:
    return toks[i + 1][1].upper() if i + 1 < len(toks) and toks[i + 1][0] == "word" else ""


def _dotted_name(toks: list[tuple[str, str]], i: int) -> str:
    parts = [toks[i][1]]
    j = i + 1
    while j + 1 < len(toks) and toks[j] == ("symbol", ".") and toks[j + 1][0] == "word":
        parts.append(toks[j + 1][1])
        j += 2
    return ".".join(parts)


def _check_call(toks: list[tuple[str, str]], i: int) -> None:
    following = toks[i + 1] if i + 1 < len(toks) else ("symbol", "")
    if following in (("symbol", "{"), ("symbol", "(")):
        return  # a subquery: its own clauses are checked like the rest
    if following[0] != "word":
        raise CypherRefused("CALL must name a procedure or open a subquery")
    procedure = _dotted_name(toks, i + 1)
    if procedure.lower() not in READ_PROCEDURES:
        allowed = ", ".join(sorted(READ_PROCEDURES))
        raise CypherRefused(f"procedure {procedure} is not on the read-only list ({allowed})")


@dataclass
class CypherResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool  # more rows existed than max_rows


class ReadOnlyCypher:
    """Runs checked Cypher in read transactions against the Neo4j graph store's database."""

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str = "neo4j",
        timeout_s: float = 10.0,
        max_rows: int = 100,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """``breaker``: the graph store's, so an outage the store saw skips the tool too (and vice versa)."""
        if timeout_s <= 0 or max_rows <= 0:
            raise ValueError("timeout_s and max_rows must be positive")
        self.breaker = breaker or CircuitBreaker(0.0, probe=driver.verify_connectivity)
        self.driver = driver
        self.database = database
        self.timeout_s = timeout_s
        self.max_rows = max_rows

    def run(self, query: str, parameters: dict[str, Any] | None = None) -> CypherResult:
        check_read_only(query)
        return self._run_in_read_transaction(query, parameters or {})

    def _run_in_read_transaction(self, query: str, parameters: dict[str, Any]) -> CypherResult:
        @neo4j.unit_of_work(timeout=self.timeout_s)  # server-side limit on the whole transaction
        def work(tx: neo4j.ManagedTransaction) -> CypherResult:
            result = tx.run(query, parameters)
            rows: list[dict[str, Any]] = []
            truncated = False
            for record in result:
                if len(rows) == self.max_rows:
                    truncated = True
                    break
                rows.append({key: plain(value) for key, value in record.items()})
            return CypherResult(columns=list(result.keys()), rows=rows, truncated=truncated)

        try:
            with (
                self.breaker.guard(),
                self.driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session,
            ):
                return session.execute_read(work)
        except UNREACHABLE as exc:  # the server went away: the agent falls back to passages, not a traceback
            raise CypherUnreachable(f"Neo4j is unreachable: {exc}") from exc
        except Neo4jError as exc:
            raise CypherError(f"Neo4j refused the query ({exc.code}): {exc.message}") from exc
        except DriverError as exc:
            raise CypherError(f"the Neo4j driver failed: {exc}") from exc


def plain(value: Any) -> Any:
    """Nodes, relationships and paths as JSON-ready dicts and lists (embeddings left out)."""
    if isinstance(value, Node):
        props = {k: plain(v) for k, v in value.items() if k not in HIDDEN_PROPERTIES}
        return {"labels": sorted(value.labels), **props}
    if isinstance(value, Relationship):
        props = {k: plain(v) for k, v in value.items()}
        return {"type": value.type, **props}
    if isinstance(value, Path):
        return [plain(n) for n in value.nodes]
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k not in HIDDEN_PROPERTIES}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # dates, points, durations


def make_cypher_tool(store: GraphStore, timeout_s: float = 10.0, max_rows: int = 100) -> ReadOnlyCypher:
    from pagehop.graph.neo4j_store import Neo4jGraphStore

    if not isinstance(store, Neo4jGraphStore):
        raise CypherUnavailable(
            "the Cypher tool needs graph_store = 'neo4j'; the embedded networkx store has no Cypher "
            "(use the graph search tools instead)"
        )
    return ReadOnlyCypher(store.driver(), store.database, timeout_s=timeout_s, max_rows=max_rows, breaker=store.breaker)
