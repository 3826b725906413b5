"""From chunks of text to entities, typed relations and mentions.

Two extractors with one output (``ExtractedGraph``):

* ``SpacyExtractor`` - offline default. Named entities from spaCy NER, relations from
  subject-verb-object dependency patterns (type = the verb lemma in UPPER_SNAKE, with its
  preposition: "was born in Warsaw" -> ``BORN_IN``), otherwise ``RELATED_TO`` between entities
  sharing a sentence. The chunk title is an entity too: for an encyclopaedia passage (2Wiki,
  HotpotQA, MuSiQue) it is the subject, so it is linked ``title -MENTIONS-> entity`` to every
  entity of its passage, and subject pronouns ("She was ...") resolve to it.
* ``LLMExtractor`` - entities and typed relations as JSON, validated against ``ChunkExtraction``.

Ids come from ``entity_id_for`` (the normalised name), so the same name meets itself across
chunks; ``EntityResolver`` then merges near-duplicates.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

from pagehop.graph.base import Entity, Mention, Relation
from pagehop.graph.resolution import entity_id_for, normalise_name
from pagehop.graph.validation import RELATION_TYPE
from pagehop.limits import check_deadline
from pagehop.schema import Chunk

RELATED_TO = "RELATED_TO"
MENTIONS = "MENTIONS"
TITLE_TYPE = "TITLE"
# Numbers, dates and amounts would become hubs joining unrelated passages ("1990", "two").
SKIPPED_ENTITY_LABELS = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"})
SUBJECT_PRONOUNS = frozenset({"he", "she", "it", "they"})
MAX_COOCCURRING = 8  # beyond this many entities in a sentence, only neighbours are linked
# spaCy lemmatises "born" to "bear": keep the word people use for the relation.
VERB_NAMES = {"bear": "BORN"}


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
    """NER + dependency patterns; about 100 short passages a second on two CPU cores."""

    def __init__(self, nlp: Any, batch_size: int = 64) -> None:
        self.nlp = nlp
        self.batch_size = batch_size

    @classmethod
    def from_settings(cls, model: str) -> SpacyExtractor:
        from pagehop.models import load_spacy

        return cls(load_spacy(model))

    def extract(self, chunks: Sequence[Chunk]) -> ExtractedGraph:
        graph = ExtractedGraph()
        docs = self.nlp.pipe((c.text for c in chunks), batch_size=self.batch_size)
        for chunk, doc in zip(chunks, docs, strict=True):
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

    @staticmethod
    def _dependency_relations(
        out: _ChunkGraph, sent: Any, token_entity: dict[int, str], title_id: str | None
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
            verb_name = VERB_NAMES.get(verb.lemma_.lower(), verb.lemma_)
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


# ---- LLM extraction ---------------------------------------------------------------------------


class ExtractedEntity(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field("ENTITY", max_length=40, description="PERSON, ORGANIZATION, PLACE, WORK, EVENT, ...")
    description: str = Field("", max_length=500)


class ExtractedRelation(BaseModel):
    source: str = Field(min_length=1, max_length=200, description="an entity name from the list")
    target: str = Field(min_length=1, max_length=200, description="an entity name from the list")
    type: str = Field(min_length=1, max_length=64, description="UPPER_SNAKE, e.g. DIRECTED_BY, MOTHER_OF")
    description: str = Field("", max_length=500)


class ChunkExtraction(BaseModel):
    """The JSON the LLM must return for one chunk."""

    entities: list[ExtractedEntity] = Field(default_factory=list, max_length=100)
    relations: list[ExtractedRelation] = Field(default_factory=list, max_length=200)


class StructuredLLM(Protocol):
    """The one method of ``pagehop.llm`` that extraction needs."""

    def complete_json(self, messages: list[dict[str, Any]], schema: type[BaseModel], **kw: Any) -> BaseModel: ...


EXTRACTION_PROMPT = (
    "Extract a knowledge graph from the passage. List the named entities (people, organisations, "
    "places, works, events, products, concepts that are named) with a type and a one-line description, "
    "and the relations between them stated by the passage, each as source entity, UPPER_SNAKE relation "
    "type (e.g. DIRECTED_BY, MOTHER_OF, BORN_IN) and target entity. Use entity names exactly as listed. "
    "Answer with JSON only."
)


class LLMExtractor:
    """One structured-output call per chunk; the reply is validated before it touches the graph."""

    def __init__(self, llm: StructuredLLM, max_chars: int = 6000) -> None:
        self.llm = llm
        self.max_chars = max_chars

    def extract(self, chunks: Sequence[Chunk]) -> ExtractedGraph:
        graph = ExtractedGraph()
        for chunk in chunks:
            check_deadline()
            graph.extend(self.extract_chunk(chunk))
        return graph

    def messages(self, chunk: Chunk) -> list[dict[str, Any]]:
        heading = f"Title: {chunk.title}\n" if chunk.title else ""
        return [
            {"role": "system", "content": EXTRACTION_PROMPT},
            {"role": "user", "content": f"{heading}Passage:\n{chunk.text[: self.max_chars]}"},
        ]

    def extract_chunk(self, chunk: Chunk) -> ExtractedGraph:
        reply = self.llm.complete_json(self.messages(chunk), ChunkExtraction)
        try:
            extraction = ChunkExtraction.model_validate(reply.model_dump() if isinstance(reply, BaseModel) else reply)
        except ValidationError as exc:
            raise ExtractionError(f"chunk {chunk.chunk_id}: the LLM's extraction is invalid: {exc}") from exc
        return graph_from_extraction(chunk, extraction)


def graph_from_extraction(chunk: Chunk, extraction: ChunkExtraction) -> ExtractedGraph:
    """Entities, relations (endpoints added as entities when the LLM forgot to list them), mentions."""
    out = _ChunkGraph(chunk)
    title_id = out.entity(chunk.title, TITLE_TYPE) if chunk.title.strip() else None
    by_name: dict[str, str] = {}
    for item in extraction.entities:
        entity_id = out.entity(item.name, _entity_type(item.type))
        if entity_id is not None:
            by_name[normalise_name(item.name)] = entity_id
            if item.description and not out.entities[entity_id].description:
                out.entities[entity_id].description = item.description
    for rel in extraction.relations:
        source = by_name.get(normalise_name(rel.source)) or out.entity(rel.source, "ENTITY")
        target = by_name.get(normalise_name(rel.target)) or out.entity(rel.target, "ENTITY")
        if source is not None and target is not None:
            out.relate(source, relation_type(rel.type), target, rel.description)
    out.link_title(title_id)
    return out.result()


def _entity_type(text: str) -> str:
    cleaned = relation_type(text)
    return "ENTITY" if cleaned == RELATED_TO else cleaned
