"""``report.md`` and ``report.html`` for one or more evaluation runs, with PNG plots beside them.

The report is built once as a list of blocks (headings, tables, images, failure cases) and rendered
to both Markdown and HTML, so the two never disagree.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt

from pagehop.eval import metrics
from pagehop.eval.records import PredictionRecord, score_record
from pagehop.eval.runner import read_run

WORST_CASES = 10
SUMMARY_KEYS = (
    "qa.em",
    "qa.f1",
    "qa.subem",
    "qa.acc",
    "retrieval.recall@2",
    "retrieval.recall@5",
    "retrieval.all_recall@5",
    "pages.recall@5",
    "pages.ndcg@5",
    "cost.llm_calls_mean",
    "cost.tokens_mean",
    "latency.p50_s",
    "latency.p95_s",
    "n",
)
BREAKDOWN_KEYS = ("qa.em", "qa.f1", "qa.acc", "retrieval.recall@5", "pages.recall@5")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    file: str
    caption: str


@dataclass
class Case:
    record: PredictionRecord
    score_name: str
    score: float


@dataclass
class Section:
    title: str
    text: str = ""
    blocks: list[Table | Figure | Case] = field(default_factory=list)


def write_report(run_dirs: Sequence[Path], out_dir: Path | None = None) -> Path:
    """Report on ``run_dirs`` (the first is the main run; more add an ablation comparison) into ``out_dir``
    (default: the first run's folder). Returns the path of report.md."""
    if not run_dirs:
        raise ValueError("write_report needs at least one run folder")
    runs = [read_run(Path(d)) for d in run_dirs]
    out_dir = Path(out_dir or run_dirs[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    run, result, records = runs[0]
    primary = "qa.acc" if any(r.gold.pages for r in records) else "qa.f1"

    sections = [_summary_section(run, result)]
    sections.append(_breakdown_section("By question type", records, lambda r: r.question_type, out_dir, "by_type"))
    sections.append(_breakdown_section("By hop count", records, lambda r: str(r.hops or "?"), out_dir, "by_hops"))
    sections.append(_distributions_section(records, out_dir))
    if len(runs) > 1:
        sections.append(_ablation_section(runs, out_dir))
    sections.append(_failures_section(records, primary))

    title = f"Evaluation: {Path(run['dataset']).name} ({run['ablation']['name']})"
    (out_dir / "report.md").write_text(_markdown(title, sections), encoding="utf-8")
    (out_dir / "report.html").write_text(_html(title, sections), encoding="utf-8")
    plt.close("all")
    return out_dir / "report.md"


# ---------------------------------------------------------------- sections


def _summary_section(run: dict[str, Any], result: dict[str, Any]) -> Section:
    rows = [[key, _fmt(result[key])] for key in SUMMARY_KEYS if key in result]
    rows += [[key, _fmt(value)] for key, value in sorted(result.items()) if key.startswith("qa.acc.")]
    ablation = ", ".join(f"{k}={v}" for k, v in run["ablation"].items())
    counts = f"{result['n']} questions, {result['n_errors']} errors"
    text = f"Dataset `{run['dataset']}` ({run['fmt']}), {counts}. {ablation}."
    return Section("Summary", text, [Table(["metric", "value"], rows)])


def _breakdown_section(
    title: str, records: list[PredictionRecord], group_of: Callable[[PredictionRecord], str], out_dir: Path, stem: str
) -> Section:
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for record in records:
        groups[group_of(record)].append(score_record(record))
    keys = [k for k in BREAKDOWN_KEYS if any(k in s for scores in groups.values() for s in scores)]
    table: dict[str, dict[str, float]] = {
        group: {k: metrics.mean([s[k] for s in scores if k in s]) for k in keys} for group, scores in groups.items()
    }
    # Numbers in numeric order ("2" before "10"), names alphabetically after them.
    names = sorted(table, key=lambda name: (not name.isdigit(), int(name) if name.isdigit() else 0, name))
    rows = [[name, str(len(groups[name])), *(_fmt(table[name][k]) for k in keys)] for name in names]
    bars = {f"{name} (n={len(groups[name])})": {k: table[name][k] for k in keys} for name in names}
    figure = _grouped_bars(bars, title, out_dir / f"{stem}.png")
    return Section(title, "", [Table(["group", "n", *keys], rows), figure])


def _distributions_section(records: list[PredictionRecord], out_dir: Path) -> Section:
    latencies = [r.latency_s for r in records if r.error is None]
    calls = [r.cost.llm_calls for r in records]
    blocks: list[Table | Figure | Case] = [
        _histogram(latencies, "seconds per question", "Latency", out_dir / "latency.png"),
        _histogram(calls, "LLM calls per question", "LLM calls", out_dir / "llm_calls.png", integer=True),
    ]
    return Section("Latency and cost", "", blocks)


def _ablation_section(
    runs: list[tuple[dict[str, Any], dict[str, Any], list[PredictionRecord]]], out_dir: Path
) -> Section:
    names = [_unique_label(run["ablation"]["name"], i) for i, (run, _, _) in enumerate(runs)]
    keys = [k for k in SUMMARY_KEYS if k != "n" and all(k in result for _, result, _ in runs)]
    rows = [[k, *(_fmt(result[k]) for _, result, _ in runs)] for k in keys]
    quality = [k for k in keys if k.startswith(("qa.", "retrieval.", "pages."))]
    figure = _grouped_bars(
        {name: {k: result[k] for k in quality} for name, (_, result, _) in zip(names, runs, strict=True)},
        "Ablation comparison",
        out_dir / "ablation.png",
    )
    return Section("Ablation comparison", "", [Table(["metric", *names], rows), figure])


def _unique_label(name: str, index: int) -> str:
    return f"{index + 1}. {name}"


def _failures_section(records: list[PredictionRecord], primary: str) -> Section:
    scored = [(score_record(r).get(primary, 0.0), r) for r in records]
    # Worst first; among equals, errors and slow answers first (they explain most).
    scored.sort(key=lambda pair: (pair[0], pair[1].error is None, -pair[1].latency_s))
    cases: list[Table | Figure | Case] = [Case(r, primary, s) for s, r in scored[:WORST_CASES] if s < 1.0]
    return Section(f"Worst failures (by {primary})", "" if cases else "No failures.", cases)


# ---------------------------------------------------------------- plots


def _grouped_bars(values: dict[str, dict[str, float]], title: str, path: Path) -> Figure:
    groups = list(values)
    keys = sorted({k for v in values.values() for k in v}, key=SUMMARY_KEYS.index)
    figure, axis = plt.subplots(figsize=(max(5.0, 1.2 * len(groups) * max(1, len(keys)) / 2), 3.6))
    width = 0.8 / max(1, len(keys))
    for i, key in enumerate(keys):
        xs = [g + i * width for g in range(len(groups))]
        axis.bar(xs, [values[group].get(key, 0.0) for group in groups], width, label=key)
    axis.set_xticks([g + width * (len(keys) - 1) / 2 for g in range(len(groups))], groups, rotation=20, ha="right")
    axis.set_ylim(0, 1)
    axis.set_title(title)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Figure(path.name, title)


def _histogram(values: Sequence[float], xlabel: str, title: str, path: Path, integer: bool = False) -> Figure:
    figure, axis = plt.subplots(figsize=(5.0, 3.2))
    if values:
        bins: Any = range(int(min(values)), int(max(values)) + 2) if integer else min(20, max(1, len(values)))
        axis.hist(values, bins=bins, color="#4c72b0", align="left" if integer else "mid")
    axis.set_xlabel(xlabel)
    axis.set_ylabel("questions")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Figure(path.name, title)


# ---------------------------------------------------------------- rendering


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.3f}"
    return str(value)


def _case_fields(case: Case) -> list[tuple[str, str]]:
    r = case.record
    cited = "; ".join(f"{c.title or c.doc_id} p.{c.page}" for c in r.citations) or "none"
    fields = [
        ("question", r.question),
        ("gold", " | ".join(r.gold.answers)),
        ("prediction", r.prediction or "(empty)"),
        (case.score_name, _fmt(case.score)),
        ("type / hops", f"{r.question_type} / {r.hops}"),
        ("cited", cited),
        ("gold evidence", "; ".join(r.gold.passages) or "; ".join(f"{d} p.{p}" for d, p in r.gold.pages) or "none"),
        ("cost", f"{r.cost.llm_calls} LLM calls, {r.cost.tokens} tokens, {r.latency_s:.2f} s"),
    ]
    if r.error:
        fields.append(("error", r.error))
    return fields


def _markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(block.header) + " |")
                lines.append("|" + "---|" * len(block.header))
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            elif isinstance(block, Figure):
                lines.append(f"![{block.caption}]({block.file})")
            else:
                lines += [f"### `{block.record.id}`", ""]
                lines += [f"- **{name}**: {_md_cell(value)}" for name, value in _case_fields(block)]
                if block.record.trace:
                    lines += ["", "```text", *block.record.trace, "```"]
            lines.append("")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _html(title: str, sections: list[Section]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "pre{background:#f5f5f5;padding:.5em;white-space:pre-wrap}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{e(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{e(section.text)}</p>")
        for block in section.blocks:
            if isinstance(block, Table):
                head = "".join(f"<th>{e(h)}</th>" for h in block.header)
                body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in block.rows)
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif isinstance(block, Figure):
                parts.append(f"<figure><img src='{e(block.file)}' alt='{e(block.caption)}'></figure>")
            else:
                parts.append(f"<h3><code>{e(block.record.id)}</code></h3><ul>")
                parts += [f"<li><b>{e(name)}</b>: {e(value)}</li>" for name, value in _case_fields(block)]
                parts.append("</ul>")
                if block.record.trace:
                    parts.append("<pre>" + e("\n".join(block.record.trace)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def metrics_table(run_dirs: Sequence[Path], keys: Sequence[str] = SUMMARY_KEYS) -> str:
    """A Markdown table of ``keys`` across run folders (one column per run), e.g. for docs/benchmarks.md."""
    results = [json.loads((Path(d) / "metrics.json").read_text(encoding="utf-8")) for d in run_dirs]
    header = "| metric | " + " | ".join(Path(d).name for d in run_dirs) + " |"
    rows = [
        f"| {k} | " + " | ".join(_fmt(r.get(k, float("nan"))) for r in results) + " |"
        for k in keys
        if any(k in r for r in results)
    ]
    return "\n".join([header, "|" + "---|" * (len(run_dirs) + 1), *rows])
