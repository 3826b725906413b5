"""Cost of LLM knowledge-graph extraction on the 2WikiMultiHopQA corpus, with a scripted model.

The model sits behind a real OpenAI-compatible HTTP server on loopback and answers at once, so
the wall time is pagehop's own overhead (prompting, the openai client, validation, the cache) at
``--concurrency`` requests in flight, not a model's decoding time. The first pass extracts every
passage; the second pass runs a new extractor on the same workspace cache, as a re-ingest or a
switch of graph store would: its LLM calls should be 0. Token counts are the scripted server's
stand-in (prompt characters / 4), not a tokenizer's.

    nice -n 10 .venv/bin/python benchmarks/llm_extraction.py --passages 6119 --concurrency 8
"""

from __future__ import annotations

import argparse
import html
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from pagehop.graph.extraction import ExtractionCache, LLMExtractor
from pagehop.llm.openai_compat import OpenAICompatibleLLM
from pagehop.schema import Chunk
from pagehop.testing.multihop import load_2wiki, passage_chunks
from pagehop.testing.openai_server import Reply, ScriptedOpenAIServer

PASSAGE = re.compile(r'<evidence id="[^"]+"[^>]*>\n(.*?)\n</evidence>', re.DOTALL)
TITLE = re.compile(r'title="([^"]*)"')
NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")


def scripted_extraction(body: dict[str, Any]) -> Reply:
    """Capitalised multi-word spans as entities, each linked to the passage title by its first sentence."""
    prompt = body["messages"][-1]["content"]
    text = html.unescape(PASSAGE.findall(prompt)[0])
    title_match = TITLE.search(prompt)
    title = html.unescape(title_match.group(1)) if title_match else ""
    sentence = text.split(". ")[0][:400]
    names = [n for n in dict.fromkeys(NAME.findall(text)) if n != title][:8]
    entities = [{"name": title, "type": "OTHER"}] if title else []
    entities += [{"name": n, "type": "OTHER"} for n in names]
    relations = [{"source": title, "type": "RELATED_TO", "target": n, "evidence": sentence} for n in names if title]
    reply = json.dumps({"entities": entities, "relations": relations})
    return Reply(content=reply, prompt_tokens=len(prompt) // 4, completion_tokens=len(reply) // 4)


def corpus_chunks(limit: int) -> list[Chunk]:
    _, corpus = load_2wiki()
    return passage_chunks(corpus[:limit])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=6119)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    chunks = corpus_chunks(args.passages)
    print(f"{'pass':<8} {'passages':>8} {'LLM calls':>9} {'cached':>7} {'tokens':>10} {'relations':>9} {'wall s':>7}")
    with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAIServer(scripted_extraction) as server:
        for name in ("first", "second"):
            llm = OpenAICompatibleLLM(server.base_url, "scripted", timeout_s=60, max_concurrency=args.concurrency)
            cache = ExtractionCache(Path(tmp) / "graph_extraction.sqlite")
            extractor = LLMExtractor(llm, cache=cache, max_concurrency=args.concurrency, progress=False)
            started = time.perf_counter()
            graph = extractor.extract(chunks)
            wall = time.perf_counter() - started
            stats = extractor.stats
            print(
                f"{name:<8} {len(chunks):>8} {stats.llm_calls:>9} {stats.cached:>7} {stats.tokens:>10} "
                f"{len(graph.relations):>9} {wall:>7.1f}"
            )
            cache.close()
            llm.close()


if __name__ == "__main__":
    main()
