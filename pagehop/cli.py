"""The `pagehop` command line. Each command is a thin shell over the Python API of its area."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from pagehop.config import ConfigError, Settings, load_settings

app = typer.Typer(
    name="pagehop",
    help="Agentic deep search over your documents and a knowledge graph, with answers that cite pages.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def not_built(what: str, issue: int) -> NoReturn:
    fail(f"{what} is not built yet (tracked in issue #{issue}).", code=2)


@app.callback()
def main(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar="PAGEHOP_WORKSPACE",
            help="Folder for everything pagehop stores [default: ./.pagehop].",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="PAGEHOP_CONFIG", help="TOML file [default: ./pagehop.toml]."),
    ] = None,
) -> None:
    ctx.obj = {"workspace": workspace, "config": config}


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    opts = ctx.obj or {}
    try:
        return load_settings(opts.get("config"), workspace=opts.get("workspace"), **overrides)
    except ConfigError as exc:
        fail(str(exc))


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Check versions, GPU, models, Neo4j, the LLM endpoint, tesseract and the workspace."""
    from pagehop.doctor import run_checks

    settings = settings_from(ctx)
    checks = run_checks(settings)
    table = Table(title="pagehop doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    for check in checks:
        table.add_row(check.name, f"[{colour[check.status]}]{check.status}[/]", check.detail)
    console.print(table)
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        fail("broken configuration: " + "; ".join(f"{c.name}: {c.detail}" for c in failed))


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (recursive).")] = None,
    delete: Annotated[
        list[str] | None, typer.Option("--delete", help="Remove a document (id or path) and all derived data.")
    ] = None,
    dpi: Annotated[int | None, typer.Option(help="Page render resolution.")] = None,
    ocr: Annotated[str | None, typer.Option(help="auto | always | never.")] = None,
) -> None:
    """Add PDFs, images, text and Markdown to the page index, the text index and the graph."""
    not_built("ingest", 3)


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the Answer as JSON.")] = False,
    thread: Annotated[str | None, typer.Option(help="Conversation thread for follow-up questions.")] = None,
) -> None:
    """Answer a question with citations and a compact stage trace."""
    not_built("ask", 5)


@app.command()
def chat(
    ctx: typer.Context,
    thread: Annotated[str | None, typer.Option(help="Resume this conversation thread.")] = None,
) -> None:
    """Terminal chat with a live stage trace."""
    not_built("chat", 6)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8000].")] = None,
) -> None:
    """Serve the chat UI, the JSON API and the OpenAI-compatible API."""
    not_built("serve", 6)


@app.command(name="eval")
def eval_(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help="Dataset file.")],
    corpus: Annotated[Path | None, typer.Option(help="Corpus file or document folder.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto | 2wiki | hotpotqa | musique | mmlongbench | jsonl.")
    ] = "auto",
    limit: Annotated[int | None, typer.Option(help="Evaluate at most N questions.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """Run a QA dataset and report answer quality, retrieval quality and cost."""
    not_built("eval", 7)


@app.command()
def demo(ctx: typer.Context) -> None:
    """Ingest a small bundled sample and answer a two-hop question about it, with citations."""
    not_built("demo", 5)
