"""The CLI as a user runs it: a real subprocess of the installed `pagehop` entry point."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = ["ingest", "ask", "chat", "serve", "eval", "doctor", "demo"]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pagehop", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_real_help(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_doctor_reports_every_check(tmp_path: Path) -> None:
    result = run_cli("--workspace", str(tmp_path / "ws"), "doctor", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("versions", "gpu", "page encoder", "text embedder", "neo4j", "llm", "tesseract", "workspace"):
        assert name in result.stdout
    assert str(tmp_path / "ws") in result.stdout


def test_doctor_fails_on_broken_configuration(tmp_path: Path) -> None:
    result = run_cli("doctor", env={"PAGEHOP_GRAPH_STORE": "neo4j", "COLUMNS": "200"})
    assert result.returncode == 1
    assert "PAGEHOP_NEO4J__URI" in result.stderr


def test_doctor_fails_when_configured_services_do_not_answer(tmp_path: Path) -> None:
    # Port 9 on loopback: nothing listens, so both connections are refused at once.
    env = {
        "PAGEHOP_GRAPH_STORE": "neo4j",
        "PAGEHOP_NEO4J__URI": "bolt://127.0.0.1:9",
        "PAGEHOP_LLM__BASE_URL": "http://127.0.0.1:9/v1",
        "PAGEHOP_MODELS__PAGE_ENCODER": str(tmp_path / "missing-model"),
        "COLUMNS": "200",
    }
    result = run_cli("--workspace", str(tmp_path), "doctor", env=env)
    assert result.returncode == 1
    assert "neo4j:" in result.stderr
    assert "llm:" in result.stderr
    assert "page encoder:" in result.stderr
