"""`pagehop doctor`: what this installation can do, and what in its configuration is broken.

A check is ``ok``, ``warn`` (a channel or feature is off, which may be intended) or ``fail``
(the configuration asks for something that does not work). Only ``fail`` makes the command
exit non-zero.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pagehop.config import Settings
from pagehop.models import ModelNotAvailable, resolve_model, resolve_text_embedder

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def _versions() -> Check:
    import torch
    import transformers

    return Check(
        "versions",
        "ok",
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}",
    )


def _gpu() -> Check:
    import torch

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return Check("gpu", "ok", names)
    return Check("gpu", "warn", "none: models run on the CPU")


def _page_encoder(settings: Settings) -> Check:
    ref = settings.models.page_encoder
    if not ref:
        return Check("page encoder", "warn", "disabled: pages are retrievable through the text channel only")
    try:
        path = resolve_model(ref)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
    except ModelNotAvailable as exc:
        # The default id missing from the cache is the normal offline state, not a broken setup.
        explicit_path = Path(ref).expanduser().exists() or ref.startswith((".", "/", "~"))
        return Check("page encoder", "fail" if explicit_path else "warn", f"{exc}; visual channel off")
    except Exception as exc:
        return Check("page encoder", "fail", f"{ref}: config does not load: {exc}")
    return Check("page encoder", "ok", f"{ref} ({config.model_type}) at {path}")


def _text_embedder(settings: Settings) -> Check:
    ref = settings.models.text_embedder
    try:
        path = resolve_text_embedder(ref)
    except (ModelNotAvailable, ImportError) as exc:
        return Check("text embedder", "fail", f"{ref}: {exc}")
    return Check("text embedder", "ok", f"{ref} at {path}")


def _spacy(settings: Settings) -> Check:
    import spacy.util

    name = settings.models.spacy_model
    if spacy.util.is_package(name) or Path(name).is_dir():
        return Check("spacy model", "ok", name)
    return Check("spacy model", "warn", f"{name} is not installed: offline graph extraction is off")


def _neo4j(settings: Settings) -> Check:
    cfg = settings.neo4j
    required = settings.graph_store == "neo4j"
    if not cfg.uri:
        return Check("neo4j", "ok", "not configured (graph store: embedded networkx)")
    import neo4j

    from pagehop.graph.neo4j_store import UNREACHABLE, unreachable_message

    auth = (cfg.user, cfg.password.get_secret_value()) if cfg.password else None
    status: Status = "fail" if required else "warn"
    try:
        with neo4j.GraphDatabase.driver(cfg.uri, auth=auth, connection_timeout=5) as driver:
            driver.verify_connectivity()
            info = driver.get_server_info()
        return Check("neo4j", "ok", f"{cfg.uri} answers ({info.agent})")
    except UNREACHABLE as exc:
        return Check("neo4j", status, unreachable_message(cfg.uri, exc))
    except Exception as exc:  # wrong credentials or a malformed URI: the driver's own words say which
        return Check("neo4j", status, f"{cfg.uri}: {exc} (check neo4j.uri, neo4j.user and neo4j.password)")


def _llm(settings: Settings) -> Check:
    """The endpoint answers, serves the configured model, and which structured-output mode it accepts
    (one tiny call: a server that rejects json_schema is asked with json_object)."""
    cfg = settings.llm
    if cfg.backend == "transformers":
        try:
            path = resolve_model(cfg.model)
        except ModelNotAvailable as exc:
            return Check("llm", "fail", f"in-process backend: {exc}")
        return Check("llm", "ok", f"in-process {cfg.model} at {path}; structured output: grammar (xgrammar)")
    if not cfg.base_url:
        return Check("llm", "warn", "not configured: the agent uses its deterministic no-LLM policy")
    from pagehop.llm.base import LLMError
    from pagehop.llm.openai_compat import OpenAICompatibleLLM

    llm = OpenAICompatibleLLM(
        cfg.base_url,
        cfg.model,
        api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
        timeout_s=min(cfg.timeout_s, 30.0),
        max_retries=0,
        structured_output=cfg.structured_output,
    )
    try:
        served = llm.served_models()
    except LLMError as exc:
        return Check("llm", "fail", f"{cfg.base_url} does not answer: {exc}")
    if served and cfg.model not in served:
        return Check("llm", "fail", f"{cfg.base_url} serves {served}, not the configured model {cfg.model}")
    try:
        mode = llm.probe_structured_output()
    except LLMError as exc:
        return Check("llm", "fail", f"{cfg.base_url} serves {cfg.model} but gave no structured reply: {exc}")
    finally:
        llm.close()
    return Check("llm", "ok", f"{cfg.base_url} serves {cfg.model}; structured output: {mode}")


def _graph_extractor(settings: Settings) -> Check:
    from pagehop.graph.indexer import EXTRACTION_CACHE_FILE, extractor_name

    if extractor_name(settings) == "llm":
        cache = settings.workspace.expanduser().resolve() / EXTRACTION_CACHE_FILE
        detail = f"llm ({settings.llm.model}, spaCy per failed chunk), cache {cache}"
    else:
        detail = f"spacy ({settings.models.spacy_model})"
        if settings.graph.extractor == "auto":
            detail += ": no LLM configured"
    cypher = settings.graph_store == "neo4j" and settings.graph.cypher_tool and settings.llm_configured
    return Check("graph extractor", "ok", detail + ("; Text2Cypher on" if cypher else "; Text2Cypher off"))


def _tesseract(settings: Settings) -> Check:
    exe = shutil.which("tesseract")
    if not exe:
        return Check("tesseract", "warn", "not found: scanned pages get no OCR (apt-get install tesseract-ocr)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.split("\n")[0]
    return Check("tesseract", "ok", version)


def _workspace(settings: Settings) -> Check:
    ws = settings.workspace.expanduser().resolve()
    if ws.exists() and not ws.is_dir():
        return Check("workspace", "fail", f"{ws} exists and is not a folder")
    if not ws.exists():
        parent = next((p for p in ws.parents if p.exists()), Path("/"))
        if not os.access(parent, os.W_OK):
            return Check("workspace", "fail", f"{ws} cannot be created: {parent} is not writable")
        return Check("workspace", "ok", f"{ws} (not created yet)")
    size = sum(f.stat().st_size for f in ws.rglob("*") if f.is_file())
    return Check("workspace", "ok", f"{ws} ({size / 1e6:.1f} MB)")


CHECKS: tuple[Callable[[Settings], Check], ...] = (
    lambda _: _versions(),
    lambda _: _gpu(),
    _page_encoder,
    _text_embedder,
    _spacy,
    _neo4j,
    _llm,
    _graph_extractor,
    _tesseract,
    _workspace,
)


def run_checks(settings: Settings) -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check(settings))
        except Exception as exc:  # a check must never hide the others
            results.append(Check(getattr(check, "__name__", "check").strip("_"), "fail", repr(exc)))
    return results
