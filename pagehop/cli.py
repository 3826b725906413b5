"""The `pagehop` command line. Each command is a thin shell over the Python API of its area."""

from __future__ import annotations

import os
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from pagehop.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from pagehop.workspace import Workspace

# Model loading bars would bury the command's own output; set before transformers is imported.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

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


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False)


def workspace_or_fail(settings: Settings, **options: Any) -> Workspace:
    """The workspace with every channel, or a clear error (not a traceback) when its Neo4j does not answer."""
    from pagehop.assemble import open_workspace
    from pagehop.graph.base import GraphUnavailable

    try:
        return open_workspace(settings, **options)
    except GraphUnavailable as exc:
        fail(f"{exc}; `pagehop doctor` checks the whole setup")


class OcrChoice(StrEnum):
    auto = "auto"
    always = "always"
    never = "never"


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
    dpi: Annotated[int | None, typer.Option(help="Page render resolution.", min=36, max=600)] = None,
    ocr: Annotated[OcrChoice | None, typer.Option(help="When to run OCR.")] = None,
    graph: Annotated[bool, typer.Option(help="Extract the knowledge graph too.")] = True,
) -> None:
    """Add PDFs, images, text and Markdown to the page index, the text index and the graph."""
    from pagehop.ingest import delete as delete_document
    from pagehop.ingest import ingest as ingest_paths

    if not paths and not delete:
        fail("name files or folders to ingest, or --delete DOC_ID_OR_PATH")
    settings = settings_from(ctx)
    with workspace_or_fail(settings, graph=graph, warn=warn) as workspace:
        for ref in delete or []:
            removed = delete_document(workspace, ref)
            if removed is None:
                fail(f"no document with id or path {ref!r} in {workspace.root}")
            console.print(f"deleted {removed.doc_id} ({removed.source_path})")
        if paths:
            missing = [str(p) for p in paths if not p.exists()]
            if missing:
                fail(f"no such file or folder: {', '.join(missing)}")
            report = ingest_paths(workspace, paths, dpi=dpi, ocr=ocr.value if ocr else None)
            console.print(report.summary(), highlight=False)
            if not report.ok:
                raise typer.Exit(1)


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the Answer as JSON.")] = False,
    thread: Annotated[str | None, typer.Option(help="Conversation thread for follow-up questions.")] = None,
) -> None:
    """Answer a question with citations and a compact stage trace."""
    from pagehop.assemble import open_engine
    from pagehop.engine import format_answer

    settings = settings_from(ctx)
    with workspace_or_fail(settings, warn=warn) as workspace:
        if not workspace.list_documents():
            warn(f"the workspace {workspace.root} holds no documents yet: run `pagehop ingest PATH` first")
        with open_engine(workspace) as engine:
            try:
                answer = engine.ask(question, thread_id=thread)
            except ValueError as exc:
                fail(str(exc))
    if as_json:
        print(answer.model_dump_json(indent=2))
    else:
        console.print(format_answer(answer), highlight=False, markup=False)


@app.command()
def chat(
    ctx: typer.Context,
    thread: Annotated[str | None, typer.Option(help="Resume this conversation thread.")] = None,
) -> None:
    """Terminal chat with a live stage trace; follow-up questions resolve against the conversation."""
    import uuid

    from pagehop.assemble import open_engine
    from pagehop.engine import format_answer

    settings = settings_from(ctx)
    thread_id = thread or uuid.uuid4().hex[:12]
    with workspace_or_fail(settings, warn=warn) as workspace, open_engine(workspace) as engine:
        console.print(f"pagehop chat: thread {thread_id} over {workspace.root} (empty line or Ctrl-D ends)")
        for asked, answered in engine.history(thread_id):
            console.print(f"[dim]> {asked}\n{answered}[/]", highlight=False)
        while True:
            try:
                question = console.input("[bold]> [/]").strip()
            except (EOFError, KeyboardInterrupt):
                break
            if question in ("", "exit", "quit"):
                break
            try:
                for event in engine.stream(question, thread_id=thread_id):
                    for step in event.trace:
                        console.print(f"[dim]  {step.stage:<9} {step.summary[:150]}[/]", highlight=False)
                    if event.answer is not None:
                        console.print(format_answer(event.answer, trace=False), highlight=False, markup=False)
            except ValueError as exc:
                warn(str(exc))


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8000].")] = None,
) -> None:
    """Serve the chat UI (/ui), the JSON API (/api) and the OpenAI-compatible API (/v1)."""
    from pagehop.server import UnsafeBind, serve

    settings = settings_from(ctx)
    try:
        serve(settings, host, port)
    except UnsafeBind as exc:
        fail(str(exc))


@app.command(name="eval")
def eval_(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help="Dataset file.", exists=True, dir_okay=False)],
    corpus: Annotated[Path | None, typer.Option(help="Corpus file or document folder.", exists=True)] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto | 2wiki | hotpotqa | musique | mmlongbench | jsonl.")
    ] = "auto",
    limit: Annotated[int | None, typer.Option(help="Evaluate at most N questions.", min=1)] = None,
    seed: Annotated[int, typer.Option(help="Seed for drawing --limit questions.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("eval-run"),
    system: Annotated[str, typer.Option(help="agent | single_shot (retrieve once, answer once).")] = "agent",
    channels: Annotated[str, typer.Option(help="both | documents (text + pages) | graph.")] = "both",
    max_rounds: Annotated[int | None, typer.Option(help="Agent round budget.", min=1)] = None,
    docpruner_k: Annotated[float | None, typer.Option(help="DocPruner k for this run's ingestion.")] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Use the no-LLM policy even if an LLM is set.")] = False,
    concurrency: Annotated[int, typer.Option(help="Questions answered at once.", min=1)] = 2,
) -> None:
    """Run a QA dataset and report answer quality, retrieval quality and cost."""
    from pagehop.assemble import open_retriever
    from pagehop.eval import (
        Ablation,
        DatasetError,
        EvalError,
        QASystem,
        documents_to_ingest,
        prepare_corpus,
        run_eval,
    )
    from pagehop.eval.baseline import SingleShotRAG
    from pagehop.eval.engine_adapter import ablated_settings, engine_for_eval
    from pagehop.ingest import ingest as ingest_paths
    from pagehop.llm.base import make_llm

    if system not in ("agent", "single_shot") or channels not in ("both", "documents", "graph"):
        fail("--system is agent or single_shot; --channels is both, documents or graph")
    ablation = Ablation(
        name=f"{system}-{channels}" + ("-nollm" if no_llm else ""),
        system=system,  # type: ignore[arg-type]
        channels=channels,  # type: ignore[arg-type]
        max_rounds=max_rounds,
        docpruner_k=docpruner_k,
        use_llm=not no_llm,
    )
    settings = ablated_settings(settings_from(ctx), ablation)
    try:
        folder = prepare_corpus(dataset, corpus, out / "corpus", fmt)
        with workspace_or_fail(settings, graph=channels != "documents", warn=warn) as workspace:
            report = ingest_paths(workspace, [documents_to_ingest(folder)])
            err_console.print(report.summary(), highlight=False)
            retriever = open_retriever(workspace)
            with ExitStack() as stack:
                qa: QASystem
                if system == "single_shot":
                    qa = SingleShotRAG(retriever, llm=None if no_llm else make_llm(settings))
                else:
                    qa = stack.enter_context(engine_for_eval(settings, retriever, ablation))
                metrics = run_eval(
                    dataset,
                    corpus=folder,
                    fmt=fmt,
                    limit=limit,
                    seed=seed,
                    out_dir=out,
                    system=qa,
                    concurrency=concurrency,
                    ablation=ablation,
                )
    except (EvalError, DatasetError) as exc:
        fail(str(exc))
    table = Table(title=f"pagehop eval: {dataset.name} ({ablation.name})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if isinstance(value, int | float):
            table.add_row(key, f"{value:.4g}")
    console.print(table)
    console.print(f"wrote {out / 'predictions.jsonl'}, {out / 'metrics.json'}, {out / 'report.md'}")


@app.command()
def demo(ctx: typer.Context) -> None:
    """Ingest a small bundled sample and answer a multi-hop question about it, with citations."""
    from pagehop.demo import DEMO_QUESTION, run_demo
    from pagehop.engine import format_answer

    settings = settings_from(ctx)
    console.print(f"Ingesting the bundled sample into {settings.workspace} ...")
    summary, answer = run_demo(settings)
    console.print(summary, highlight=False, markup=False)
    console.print(f"\nQ: {DEMO_QUESTION}\n", highlight=False)
    console.print(format_answer(answer), highlight=False, markup=False)
