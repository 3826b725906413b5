"""From chunks of text to entities, typed relations and mentions.

Two extractors with one output (``ExtractedGraph``):

* ``SpacyExtractor`` - offline default. Named entities from spaCy NER, relations from
  subject-verb-object dependency patterns (type = the verb lemma in UPPER_SNAKE, with its
  preposition: "was born in Warsaw" -> ``BORN_IN``), otherwise ``RELATED_TO`` between entities
  sharing a sentence. The chunk title is an entity too: for an encyclopaedia passage (2Wiki,
  HotpotQA, MuSiQue) it is the subject, so it is linked ``title -MENTIONS-> entity`` to every
  entity of its passage, and subject pronouns ("She was ...") resolve to it.
* ``LLMExtractor`` - typed entities and typed relations with their evidence sentence, as JSON
  validated against ``ChunkExtraction``; batched, cached per chunk content, spaCy as the fallback.

Ids come from ``entity_id_for`` (the normalised name), so the same name meets itself across
chunks; ``EntityResolver`` then merges near-duplicates.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field
from tqdm import tqdm

from pagehop import prompts
from pagehop.graph.base import Entity, Mention, Relation
from pagehop.graph.resolution import entity_id_for, normalise_name
from pagehop.graph.validation import RELATION_TYPE
from pagehop.limits import DeadlineExceeded, check_deadline, remaining_seconds
from pagehop.llm.base import LLM, LLMError, Usage
from pagehop.schema import Chunk

log = logging.getLogger(__name__)

RELATED_TO = "RELATED_TO"
MENTIONS = "MENTIONS"
TITLE_TYPE = "TITLE"
# Numbers, dates and amounts would become hubs joining unrelated passages ("1990", "two").
SKIPPED_ENTITY_LABELS = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"})
SUBJECT_PRONOUNS = frozenset({"he", "she", "it", "they"})
MAX_COOCCURRING = 8  # beyond this many entities in a sentence, only neighbours are linked
# spaCy lemmatises "born" to "bear": keep the word people use for the relation.
VERB_NAMES = {"bear": "BORN"}
# Parsing processes side by side: ingest starts a group's parse up to two groups ahead, so two keep both
# parsed while the caller embeds and stores (on PDF text the parse is the slower side: 27 PDFs 164-171 s with
# one, 151 s with two; docs/benchmarks.md). Each holds its own pipeline (~300-500 MiB).
PARSING_PROCESSES = 2
# Penn tags of verbs: the attribute ruler's rules for other tags never make a verb (see _verb_attribute_rules).
VERB_TAGS = frozenset({"VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "MD"})


class ExtractionError(ValueError):
    """An extractor produced something that is not a graph; names the chunk."""


@dataclass
class ExtractedGraph:
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)

    def extend(self, other: ExtractedGraph) -> None:
        self.entities.extend(other.entities)
        self.relations.extend(other.relations)
        self.mentions.extend(other.mentions)


class Extractor(Protocol):
    def extract(self, chunks: Sequence[Chunk]) -> ExtractedGraph: ...


@runtime_checkable
class ExtractsAhead(Protocol):
    """An extractor that can work in another process while the caller does something else (ingest resolves
    and stores one group while the next one is parsed)."""

    model: str | None  # what the other process loads; None: it has none, and extract_ahead works here and now

    def prepare_ahead(self) -> None:
        """Start the other process now (it loads its model while the caller reads the first files)."""
        ...

    def extract_ahead(self, chunks: Sequence[Chunk]) -> Future[ExtractedGraph]: ...

    def result_ahead(self, future: Future[ExtractedGraph]) -> ExtractedGraph:
        """What ``extract_ahead`` promised (waits; raises what the extraction raised)."""
        ...

    def stop_ahead(self) -> None:
        """Stop the other process (it holds a model); the next ``extract_ahead`` starts a new one."""
        ...


AHEAD_WAIT_S = 3600.0  # waiting for the parsing process without a file budget (a hung worker is a bug)


def relation_type(text: str) -> str:
    """``"born in"`` -> ``BORN_IN``; anything without letters becomes ``RELATED_TO``."""
    snake = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()
    if snake and snake[0].isdigit():
        snake = "R_" + snake
    snake = snake[:64]
    return snake if RELATION_TYPE.match(snake) else RELATED_TO


class _ChunkGraph:
    """Collects one chunk's entities, relations and mentions, deduplicated by id."""

    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk
        self.entities: dict[str, Entity] = {}
        self.relations: dict[tuple[str, str, str], Relation] = {}

    def entity(self, name: str, type_: str) -> str | None:
        name = " ".join(name.split())
        key = normalise_name(name)
        if len(key) < 2:
            return None
        entity_id = entity_id_for(name)
        if entity_id not in self.entities:
            self.entities[entity_id] = Entity(entity_id=entity_id, name=name, type=type_)
        return entity_id

    def relate(self, source: str, type_: str, target: str, description: str = "") -> None:
        if source == target:
            return
        key = (source, target, type_)
        if key not in self.relations:
            self.relations[key] = Relation(
                source_id=source,
                target_id=target,
                type=type_,
                description=description,
                doc_id=self.chunk.doc_id,
                chunk_id=self.chunk.chunk_id,
                page=self.chunk.page_start,
            )

    def link_title(self, title_id: str | None) -> None:
        if title_id is None:
            return
        for entity_id in list(self.entities):
            self.relate(title_id, MENTIONS, entity_id)

    def result(self) -> ExtractedGraph:
        mentions = [
            Mention(entity_id=e, doc_id=self.chunk.doc_id, chunk_id=self.chunk.chunk_id, page=self.chunk.page_start)
            for e in self.entities
        ]
        return ExtractedGraph(list(self.entities.values()), list(self.relations.values()), mentions)


class SpacyExtractor:
    """NER + dependency patterns; about 100 short passages a second on two CPU cores.

    Extraction reads the lemma of verbs only, so the pipeline runs without its lemmatizer and the verbs are
    lemmatized on demand by the same component (``_verb_lemma``): the lemmas are the full pipeline's. It reads
    the part of speech, morphology and lemma that the attribute ruler sets for verbs only, so the pipeline's
    ruler (a fifth of the pipeline's CPU on short passages) is replaced by one holding only the rules that can
    touch a verb (``_verb_attribute_rules``): 66 of en_core_web_sm's 179, the same graph.
    """

    def __init__(self, nlp: Any, batch_size: int = 64, model: str | None = None) -> None:
        self.nlp = nlp
        self.batch_size = batch_size
        self.model = model  # the package ``nlp`` was loaded from: what a parsing process loads (None: no process)
        self._lemmatizer = nlp.get_pipe("lemmatizer") if "lemmatizer" in nlp.pipe_names else None
        self._skipped = ["lemmatizer"] if self._lemmatizer is not None else []
        self._verb_ruler: Any = None  # runs after the pipeline, in place of its attribute ruler
        if "attribute_ruler" in nlp.pipe_names:
            from spacy.pipeline import AttributeRuler

            self._verb_ruler = AttributeRuler(nlp.vocab)
            self._verb_ruler.add_patterns(_verb_attribute_rules(nlp.get_pipe("attribute_ruler").patterns))
            self._skipped.append("attribute_ruler")
        self._process: ProcessPoolExecutor | None = None
        self._process_lock = threading.Lock()

    @classmethod
    def from_settings(cls, model: str) -> SpacyExtractor:
        from pagehop.models import load_spacy

        return cls(load_spacy(model), model=model)

    def extract_ahead(self, chunks: Sequence[Chunk]) -> Future[ExtractedGraph]:
        """``extract`` in a parsing process of its own, so the caller's core stays free (see ``ExtractsAhead``).

        The process is *spawned*, not forked: the caller holds torch / onnxruntime thread pools, which a
        fork copies in whatever state they are in. Up to ``PARSING_PROCESSES`` calls run side by side, each in
        a process of its own; each future holds its own call's graph. Without a model name (an ``nlp`` built by
        hand) the work is done here and now.
        """
        if self.model is None:
            done: Future[ExtractedGraph] = Future()
            done.set_result(self.extract(chunks))
            return done
        return self._submit(_parse_in_process, list(chunks))

    def prepare_ahead(self) -> None:
        """Spawn the parsing process now, so it loads its pipeline while the caller reads the first files
        (a no-op without a model name, or when the process runs already)."""
        if self.model is not None:
            with self._process_lock:
                running = self._process is not None
            if not running:
                self._submit(_parser_ready)

    def _submit(self, call: Any, *args: Any) -> Future[Any]:
        model = self.model
        assert model is not None, "a parsing process loads a named model"
        with self._process_lock:
            if self._process is None:
                import multiprocessing

                self._process = ProcessPoolExecutor(
                    max_workers=min(PARSING_PROCESSES, os.cpu_count() or 1),
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_load_parser,
                    initargs=(model, self.batch_size),
                )
            try:
                return self._process.submit(call, *args)
            except BrokenProcessPool:  # the process died (killed, out of memory): the next call starts another
                self._process = None
                raise

    def result_ahead(self, future: Future[ExtractedGraph]) -> ExtractedGraph:
        """The graph ``extract_ahead`` promised, waiting at most for the current file budget."""
        try:
            return future.result(timeout=remaining_seconds(AHEAD_WAIT_S))
        except TimeoutError:
            check_deadline()  # the budget ran out: the file fails with the budget's message
            raise
        except BrokenProcessPool:
            with self._process_lock:
                self._process = None
            raise

    def stop_ahead(self) -> None:
        with self._process_lock:
            process, self._process = self._process, None
        if process is not None:
            process.shutdown(wait=True, cancel_futures=True)

    def extract(self, chunks: Sequence[Chunk]) -> ExtractedGraph:
        graph = ExtractedGraph()
        chunks_of: dict[str, list[Chunk]] = {}  # each distinct text is parsed once (repeated boilerplate)
        for chunk in chunks:
            chunks_of.setdefault(chunk.text, []).append(chunk)
        docs = self.nlp.pipe(chunks_of, batch_size=self.batch_size, disable=self._skipped)
        for same_text, doc in zip(chunks_of.values(), docs, strict=True):
            if self._verb_ruler is not None:
                doc = self._verb_ruler(doc)
            for chunk in same_text:
                check_deadline()  # a huge document stops at its ingest budget, between chunks
                graph.extend(self._extract_one(chunk, doc))
        return graph

    def _extract_one(self, chunk: Chunk, doc: Any) -> ExtractedGraph:
        out = _ChunkGraph(chunk)
        title_id = self._title_entity(out, chunk, doc)
        token_entity: dict[int, str] = {}  # token index -> entity id
        for ent in doc.ents:
            if ent.label_ in SKIPPED_ENTITY_LABELS:
                continue
            entity_id = out.entity(ent.text, ent.label_)
            if entity_id is not None:
                for token in ent:
                    token_entity[token.i] = entity_id
        for sent in doc.sents:
            linked = self._dependency_relations(out, sent, token_entity, title_id)
            self._cooccurrence_relations(out, sent, token_entity, linked)
        out.link_title(title_id)
        return out.result()

    @staticmethod
    def _title_entity(out: _ChunkGraph, chunk: Chunk, doc: Any) -> str | None:
        if not chunk.title.strip():
            return None
        key = normalise_name(chunk.title)
        type_ = next(
            (e.label_ for e in doc.ents if normalise_name(e.text) == key and e.label_ not in SKIPPED_ENTITY_LABELS),
            TITLE_TYPE,
        )
        return out.entity(chunk.title, type_)

    def _verb_lemma(self, token: Any) -> str:
        """The lemma the full pipeline gives ``token`` (one the attribute ruler set is kept, as there)."""
        if self._lemmatizer is None or (token.lemma_ and not self._lemmatizer.overwrite):
            return str(token.lemma_)
        return str(self._lemmatizer.lemmatize(token)[0])

    def _dependency_relations(
        self, out: _ChunkGraph, sent: Any, token_entity: dict[int, str], title_id: str | None
    ) -> set[frozenset[str]]:
        """subject -VERB(_PREP)-> object for verbs whose arguments are entities; returns linked pairs."""

        def entity_of(token: Any) -> str | None:
            if token.i in token_entity:
                return token_entity[token.i]
            if token.lower_ in SUBJECT_PRONOUNS and token.dep_ in ("nsubj", "nsubjpass"):
                return title_id
            return None

        linked: set[frozenset[str]] = set()
        for verb in sent:
            if verb.pos_ not in ("VERB", "AUX"):
                continue
            lemma = self._verb_lemma(verb)
            verb_name = VERB_NAMES.get(lemma.lower(), lemma)
            subjects = [entity_of(t) for t in verb.children if t.dep_ == "nsubj"]
            passive = [entity_of(t) for t in verb.children if t.dep_ == "nsubjpass"]
            objects = [entity_of(t) for t in verb.children if t.dep_ in ("dobj", "attr", "dative", "oprd")]
            agents = [entity_of(p) for a in verb.children if a.dep_ == "agent" for p in a.children if p.dep_ == "pobj"]
            preps = [
                (prep.lower_, entity_of(p))
                for prep in verb.children
                if prep.dep_ == "prep"
                for p in prep.children
                if p.dep_ == "pobj"
            ]
            triples: list[tuple[str | None, str, str | None]] = []
            triples += [(s, verb_name, o) for s in subjects for o in objects]
            triples += [(a, verb_name, p) for a in agents for p in passive]
            triples += [(s, f"{verb_name}_{word}", o) for s in subjects + passive for word, o in preps]
            for source, name, target in triples:
                if source is not None and target is not None and source != target:
                    out.relate(source, relation_type(name), target, sent.text.strip()[:300])
                    linked.add(frozenset((source, target)))
        return linked

    @staticmethod
    def _cooccurrence_relations(
        out: _ChunkGraph, sent: Any, token_entity: dict[int, str], linked: set[frozenset[str]]
    ) -> None:
        in_sentence = list(dict.fromkeys(token_entity[t.i] for t in sent if t.i in token_entity))
        if len(in_sentence) <= MAX_COOCCURRING:
            pairs = [(a, b) for i, a in enumerate(in_sentence) for b in in_sentence[i + 1 :]]
        else:
            pairs = list(itertools.pairwise(in_sentence))
        for a, b in pairs:
            if frozenset((a, b)) not in linked:
                out.relate(a, RELATED_TO, b)


def _verb_attribute_rules(rules: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attribute ruler's rules that can set something extraction reads: those that make a verb (part of
    speech VERB or AUX), set a tag or a dependency, or apply to a token that may be tagged as a verb (no tag
    condition, or one naming a verb tag). The rest set the part of speech, morphology or lemma of nouns,
    pronouns, punctuation..., which extraction never reads."""

    def may_touch_a_verb(rule: dict[str, Any]) -> bool:
        attrs = rule["attrs"]
        if attrs.get("POS") in ("VERB", "AUX") or "TAG" in attrs or "DEP" in attrs:
            return True
        for pattern in rule["patterns"]:
            tag = pattern[rule.get("index", 0)].get("TAG")
            tags = {tag} if isinstance(tag, str) else set(tag["IN"]) if isinstance(tag, dict) and "IN" in tag else None
            if tag is None or tags is None or tags & VERB_TAGS:
                return True
        return False

    return [rule for rule in rules if may_touch_a_verb(rule)]


# ---- LLM extraction ---------------------------------------------------------------------------

EntityType = Literal["PERSON", "ORGANIZATION", "PLACE", "WORK", "EVENT", "PRODUCT", "CONCEPT", "OTHER"]


_parser: SpacyExtractor | None = None  # in a parsing process: its own pipeline


def _load_parser(model: str, batch_size: int) -> None:
    global _parser
    import multiprocessing
    import os

    from pagehop.models import load_spacy

    parent = multiprocessing.parent_process()
    if parent is not None:  # a parent killed outright (SIGKILL, out of memory) must not leave this process behind

        def exit_with_parent() -> None:
            parent.join()
            os._exit(1)

        threading.Thread(target=exit_with_parent, name="pagehop-parser-watch", daemon=True).start()
    if not _runs_torch(model):
        # spaCy imports torch whenever it is installed (thinc probes for it): ~4 CPU s at start and ~500 MiB
        # of this process for nothing when the pipeline's models are spaCy's own. None in sys.modules makes
        # ``import torch`` fail, which thinc takes as "no torch".
        sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
    _parser = SpacyExtractor(load_spacy(model), batch_size=batch_size)


def _runs_torch(model: str) -> bool:
    """Whether the spaCy pipeline ``model`` (a package name or a folder) may run torch: unless its config is
    found and every model it builds is one of spaCy's own (``@architectures`` / ``@layers`` in the
    ``spacy.`` namespace: numpy-backed), a transformer or a custom layer may need it."""
    import importlib.util

    folder = Path(model)
    if not (folder / "config.cfg").is_file():
        try:
            spec = importlib.util.find_spec(model) if "/" not in model else None
        except (ImportError, ValueError):  # e.g. a dotted name whose parent is no package
            return True
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        found = [config.parent for location in locations for config in Path(location).glob("*/config.cfg")]
        if len(found) != 1:
            return True
        folder = found[0]
    models = re.findall(r'^@(?:architectures|layers)\s*=\s*"([^"]*)"', (folder / "config.cfg").read_text(), re.M)
    return not all(name.startswith("spacy.") for name in models)


def _parser_ready() -> None:
    """A job that makes the pool spawn its process (which loads the pipeline in ``_load_parser``)."""


def _parse_in_process(chunks: list[Chunk]) -> ExtractedGraph:
    assert _parser is not None, "the parsing process starts with _load_parser"
    return _parser.extract(chunks)


class ExtractedEntity(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    type: EntityType = "OTHER"
    description: str = Field("", max_length=300)


class ExtractedRelation(BaseModel):
    source: str = Field(min_length=1, max_length=200, description="an entity name from the list")
    type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$", description="e.g. DIRECTED_BY")
    target: str = Field(min_length=1, max_length=200, description="an entity name from the list")
    evidence: str = Field("", max_length=500, description="the passage's sentence that states the relation")


class ChunkExtraction(BaseModel):
    """The JSON the LLM must return for one chunk (vLLM enforces it as a JSON schema)."""

    entities: list[ExtractedEntity] = Field(default_factory=list, max_length=60)
    relations: list[ExtractedRelation] = Field(default_factory=list, max_length=100)


# Changes whenever the prompt or the schema does: the cache then misses instead of serving stale graphs.
PROMPT_VERSION = hashlib.sha256(
    (prompts.render("extract", documents="") + json.dumps(ChunkExtraction.model_json_schema())).encode()
).hexdigest()[:12]


@dataclass
class ExtractionStats:
    """What LLM extraction did so far: calls and tokens spent, chunks served from the cache, fallbacks."""

    chunks: int = 0
    cached: int = 0
    llm_calls: int = 0
    tokens: int = 0
    fallbacks: int = 0  # chunks whose LLM extraction failed and were extracted by spaCy instead
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"graph extraction (LLM): {self.chunks} chunks, {self.cached} from the cache, "
            f"{self.llm_calls} LLM calls, {self.tokens} tokens, {self.fallbacks} fell back to spaCy"
        )


class ExtractionCache:
    """LLM replies per chunk, keyed by the chunk's content hash and the prompt version, in one SQLite file
    inside the workspace. Replies, not graphs: provenance comes from the chunk at use, so the same text in
    another document (or the same workspace on another graph store) costs no call."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS extraction (key TEXT PRIMARY KEY, model TEXT NOT NULL, reply TEXT NOT NULL)"
        )
        self._lock = threading.Lock()

    @staticmethod
    def key(chunk: Chunk, max_chars: int) -> str:
        content = f"{PROMPT_VERSION}\0{chunk.title}\0{chunk.text[:max_chars]}"
        return hashlib.sha256(content.encode("utf-8")).hexdigest()

    def get(self, keys: Sequence[str]) -> dict[str, ChunkExtraction]:
        found: dict[str, ChunkExtraction] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                batch = list(keys[start : start + 500])
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(f"SELECT key, reply FROM extraction WHERE key IN ({marks})", batch)
                found.update((key, ChunkExtraction.model_validate_json(reply)) for key, reply in rows)
        return found

    def put(self, key: str, model: str, reply: ChunkExtraction) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO extraction (key, model, reply) VALUES (?, ?, ?)",
                (key, model, reply.model_dump_json()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM extraction").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class LLMExtractor:
    """One structured-output call per uncached chunk, ``max_concurrency`` in flight; the reply is
    validated before it touches the graph. A chunk whose call fails is extracted by ``fallback``
    (spaCy) and counted; it is not cached, so the next ingest asks the LLM again."""

    def __init__(
        self,
        llm: LLM,
        *,
        fallback: Extractor | None = None,
        cache: ExtractionCache | None = None,
        max_concurrency: int = 8,
        max_chars: int = 6000,
        max_tokens: int = 2048,
        progress: bool | None = None,
    ) -> None:
        self.llm = llm
        self.fallback = fallback
        self.cache = cache
        self.max_concurrency = max_concurrency
        self.max_chars = max_chars
        self.max_tokens = max_tokens
        self.progress = progress
        self.stats = ExtractionStats()

    def messages(self, chunk: Chunk) -> list[dict[str, Any]]:
        attributes = {"title": chunk.title, "doc": chunk.doc_id, "page": chunk.page_start}
        block = prompts.quote_documents([(chunk.chunk_id, attributes, chunk.text[: self.max_chars])])
        return [{"role": "user", "content": prompts.render("extract", documents=block)}]

    def extract(self, chunks: Sequence[Chunk]) -> ExtractedGraph:
        started = time.perf_counter()
        keys = [ExtractionCache.key(c, self.max_chars) for c in chunks]
        replies: dict[str, ChunkExtraction] = self.cache.get(keys) if self.cache is not None else {}
        self.stats.chunks += len(chunks)
        self.stats.cached += sum(1 for k in keys if k in replies)
        todo = {k: c for k, c in zip(keys, chunks, strict=True) if k not in replies}
        failed: dict[str, Chunk] = {}
        show = sys.stderr.isatty() if self.progress is None else self.progress
        with (
            ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="extract") as pool,
            tqdm(total=len(todo), unit="chunk", desc="graph (LLM)", disable=not show or not todo) as bar,
        ):
            futures = {pool.submit(self._ask, chunk): key for key, chunk in todo.items()}
            for future in as_completed(futures):
                try:
                    check_deadline()
                except DeadlineExceeded:
                    for queued in futures:  # so leaving the pool waits for the running calls only
                        queued.cancel()
                    raise
                key = futures[future]
                reply, cost = future.result()
                self.stats.llm_calls += cost.calls
                self.stats.tokens += cost.tokens
                if reply is None:
                    failed[key] = todo[key]
                else:
                    replies[key] = reply
                    if self.cache is not None:
                        self.cache.put(key, self.llm.name, reply)
                bar.set_postfix(calls=self.stats.llm_calls, tokens=self.stats.tokens, fallbacks=len(failed))
                bar.update()
        graph = ExtractedGraph()
        for key, chunk in zip(keys, chunks, strict=True):  # chunk order: the same input, the same graph
            if key in replies:
                graph.extend(graph_from_extraction(chunk, replies[key]))
        if failed:
            self.stats.fallbacks += len(failed)
            if self.fallback is None:
                raise ExtractionError(f"LLM extraction failed for chunks {[c.chunk_id for c in failed.values()][:5]}")
            graph.extend(self.fallback.extract(list(failed.values())))
        self.stats.seconds += time.perf_counter() - started
        return graph

    def _ask(self, chunk: Chunk) -> tuple[ChunkExtraction | None, Usage]:
        cost = Usage()
        try:
            reply = self.llm.complete_json(
                self.messages(chunk), ChunkExtraction, max_tokens=self.max_tokens, usage=cost
            )
        except LLMError as exc:
            log.warning("LLM extraction of chunk %s failed, spaCy takes it: %s", chunk.chunk_id, str(exc)[:200])
            return None, cost
        return reply, cost


def graph_from_extraction(chunk: Chunk, extraction: ChunkExtraction) -> ExtractedGraph:
    """Entities, relations (endpoints added as entities when the LLM forgot to list them), mentions.

    Every relation keeps the chunk's document, page and chunk id, and its evidence sentence."""
    out = _ChunkGraph(chunk)
    title_id = out.entity(chunk.title, TITLE_TYPE) if chunk.title.strip() else None
    by_name: dict[str, str] = {}
    for item in extraction.entities:
        entity_id = out.entity(item.name, item.type)
        if entity_id is not None:
            by_name[normalise_name(item.name)] = entity_id
            if item.description and not out.entities[entity_id].description:
                out.entities[entity_id].description = item.description
    for rel in extraction.relations:
        source = by_name.get(normalise_name(rel.source)) or out.entity(rel.source, "OTHER")
        target = by_name.get(normalise_name(rel.target)) or out.entity(rel.target, "OTHER")
        if source is not None and target is not None:
            out.relate(source, relation_type(rel.type), target, rel.evidence)
    out.link_title(title_id)
    return out.result()
