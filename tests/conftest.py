"""Project-wide test settings: nothing leaves the machine, and the real Neo4j is found here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No hub, no telemetry: a test that tries to download must fail, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
NEO4J_ENV_FILE = REPO_ROOT / ".cache" / "neo4j" / "env"


def neo4j_connection() -> dict[str, str] | None:
    """URI and credentials of the server scripts/neo4j-local started: from the environment, else its env file."""
    env = {k: v for k, v in os.environ.items() if k.startswith("PAGEHOP_NEO4J__")}
    if "PAGEHOP_NEO4J__URI" not in env and NEO4J_ENV_FILE.is_file():
        for line in NEO4J_ENV_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
    if "PAGEHOP_NEO4J__URI" not in env:
        return None
    return {
        "uri": env["PAGEHOP_NEO4J__URI"],
        "user": env.get("PAGEHOP_NEO4J__USER", "neo4j"),
        "password": env.get("PAGEHOP_NEO4J__PASSWORD", ""),
        "database": env.get("PAGEHOP_NEO4J__DATABASE", "neo4j"),
    }


# Read once at import, before any test's environment clean-up runs.
_NEO4J = neo4j_connection()


@pytest.fixture(scope="session")
def neo4j_conn() -> dict[str, str]:
    conn = _NEO4J
    if conn is None:
        message = "no Neo4j: run `scripts/neo4j-local start` (CI does)"
        if os.environ.get("PAGEHOP_REQUIRE_NEO4J") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return conn


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's pagehop.toml or PAGEHOP_* settings by accident."""
    for key in list(os.environ):
        if key.startswith("PAGEHOP_") and not key.startswith(("PAGEHOP_NEO4J__", "PAGEHOP_REQUIRE", "PAGEHOP_TINY")):
            monkeypatch.delenv(key)
    for key in ("PAGEHOP_NEO4J__URI", "PAGEHOP_NEO4J__USER", "PAGEHOP_NEO4J__PASSWORD", "PAGEHOP_NEO4J__DATABASE"):
        monkeypatch.delenv(key, raising=False)
    # No ./pagehop.toml of the developer's is picked up: each test starts in its own empty folder.
    monkeypatch.chdir(tmp_path)
