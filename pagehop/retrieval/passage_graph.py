"""A passage–entity graph ranked by personalized PageRank, HippoRAG 2 style, with no LLM.

Nodes are the workspace's passages (chunks) and the entities they mention (spaCy's recogniser; a
document's name is the entity each of its passages is about). Edges: passage–entity for every mention,
entity–entity for names that occur in one passage, and synonymy between entity names whose MiniLM
vectors are close. A query is answered by PageRank personalized on the entities it names (weighted by
how specific they are: one over the passages that mention them) and, with a small weight, on the
passages the text channel ranked for it: a passage that shares no word with the question but names the
entity the first-hop passage is about is reached in two steps. The ranking joins the retriever's other
rankings in the one fusion (`pagehop.retrieval.fusion`).

The graph is built once per workspace state (``Workspace.ready_signature``) and cached beside the
workspace: entity mentions per chunk and entity-name vectors are kept by chunk id and by name, so a new
ingest runs the recogniser only over the new chunks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pagehop.durable import replacing
from pagehop.retrieval.titles import TitleIndex
from pagehop.schema import Chunk, Hit
from pagehop.text import STOPWORDS, name_aliases, name_tokens

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from spacy.language import Language

log = logging.getLogger(__name__)

# Entity types that name things a passage can be about (not dates, numbers or amounts: those connect
# unrelated passages that merely share a year).
ENTITY_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "WORK_OF_ART", "EVENT", "PRODUCT", "LAW"})
DAMPING = 0.5  # HippoRAG's setting: restart often, stay close to the seeds
PASSAGE_SEED_WEIGHT = 0.05  # HippoRAG 2's weight of the dense passage scores beside entity seeds
SYNONYM_SIMILARITY = 0.9  # MiniLM cosine between two names for a synonymy edge (0.8 joins relatives' names)
SYNONYMS_PER_ENTITY = 5
COOCCURRING_ENTITIES = 30  # the first names of a passage that get entity–entity edges (a clique is quadratic)
NER_CHARS = 3000  # the part of a long chunk read for names
CACHE_FILE = "passage_graph.npz"
_TOLERANCE = 1e-6
_MAX_ITERATIONS = 50


class PassageRanking(Protocol):
    """What the retriever needs: a ranking of passages for a query, seeded by the query's text hits."""

    def rank(self, query: str, seeds: Sequence[Hit], k: int) -> list[Hit]:
        """The ``k`` best passages by personalized PageRank from ``query``'s entities and ``seeds``."""
        ...


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    doc_id: str
    page: int


class PassageGraph:
    """An immutable passage–entity graph and its PageRank; build it with :func:`build_passage_graph`."""

    def __init__(
        self,
        passages: Sequence[Passage],
        entity_names: Sequence[str],
        mentions: Iterable[tuple[int, int]],
        synonyms: Iterable[tuple[int, int, float]] = (),
    ) -> None:
        """``mentions``: (passage, entity) pairs; ``synonyms``: (entity, entity, similarity)."""
        from scipy.sparse import coo_matrix

        self.passages = list(passages)
        self.entity_names = list(entity_names)
        self._row_of = {p.chunk_id: i for i, p in enumerate(self.passages)}
        n_passages, n_entities = len(self.passages), len(self.entity_names)
        size = n_passages + n_entities
        by_passage: dict[int, list[int]] = {}
        for passage, entity in dict.fromkeys(mentions):
            by_passage.setdefault(passage, []).append(entity)
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []

        def edge(a: int, b: int, weight: float) -> None:
            rows.extend((a, b))
            cols.extend((b, a))
            weights.extend((weight, weight))

        self.passage_count = np.zeros(n_entities, dtype=np.int32)  # passages mentioning each entity
        for passage, entities in by_passage.items():
            for entity in entities:
                edge(passage, n_passages + entity, 1.0)
                self.passage_count[entity] += 1
            shown = entities[:COOCCURRING_ENTITIES]
            for i, a in enumerate(shown):
                for b in shown[i + 1 :]:
                    edge(n_passages + a, n_passages + b, 1.0 / max(1, len(shown) - 1))
        for a, b, similarity in synonyms:
            if a != b:
                edge(n_passages + a, n_passages + b, float(similarity))
        adjacency = coo_matrix((weights, (rows, cols)), shape=(size, size), dtype=np.float64).tocsr()
        adjacency.sum_duplicates()
        out_weight = np.asarray(adjacency.sum(axis=1)).ravel()
        scale = np.divide(1.0, out_weight, out=np.zeros_like(out_weight), where=out_weight > 0)
        # transition[i, j]: the share of j's mass that walks to i (columns of non-isolated nodes sum to 1)
        self._transition: csr_matrix = adjacency.multiply(scale[np.newaxis, :]).tocsr()
        self._linker = TitleIndex((str(i), name) for i, name in enumerate(self.entity_names))

    def __len__(self) -> int:
        return len(self.passages)

    def linked_entities(self, text: str) -> list[int]:
        """The entities ``text`` names, by exact name (see `TitleIndex`)."""
        return [int(found.doc_id) for found in self._linker.named_in(text)]

    def pagerank(self, entity_seeds: Sequence[int], passage_seeds: dict[str, float]) -> np.ndarray:
        """Passage scores of PageRank personalized on ``entity_seeds`` (each weighted by one over the
        passages mentioning it) and on ``passage_seeds`` (chunk id -> score, scaled by the best score,
        times `PASSAGE_SEED_WEIGHT`)."""
        n_passages = len(self.passages)
        reset = np.zeros(self._transition.shape[0], dtype=np.float64)
        for entity in entity_seeds:
            reset[n_passages + entity] += 1.0 / max(1, int(self.passage_count[entity]))
        known = {self._row_of[c]: s for c, s in passage_seeds.items() if c in self._row_of}
        top = max(known.values(), default=0.0)
        for row, score in known.items():
            # Relative to the best hit: the few seeds are the top of a corpus-wide scale, all near its top.
            reset[row] += PASSAGE_SEED_WEIGHT * (score / top if top > 0 else 1.0)
        total = reset.sum()
        if total <= 0:
            return np.zeros(n_passages)
        reset /= total
        scores = reset.copy()
        for _ in range(_MAX_ITERATIONS):
            updated = (1 - DAMPING) * reset + DAMPING * (self._transition @ scores)
            done = np.abs(updated - scores).sum() < _TOLERANCE
            scores = updated
            if done:
                break
        return scores[:n_passages]

    def rank(self, query: str, seeds: Sequence[Hit], k: int) -> list[tuple[Passage, float]]:
        """The ``k`` best passages for ``query`` with their PageRank scores, best first."""
        scores = self.pagerank(self.linked_entities(query), {hit.chunk_id: hit.score for hit in seeds if hit.chunk_id})
        if not scores.size or k <= 0:
            return []
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.passages[int(i)], float(scores[i])) for i in top if scores[i] > 0]


# -- building ---------------------------------------------------------------------------------


def entity_names_in(nlp: Language, texts: Sequence[str]) -> list[list[str]]:
    """The entity names spaCy's recogniser finds in each text (in order, each once)."""
    found = []
    for doc in nlp.pipe([text[:NER_CHARS] for text in texts], batch_size=64):
        names = [" ".join(ent.text.split()) for ent in doc.ents if ent.label_ in ENTITY_LABELS]
        found.append(list(dict.fromkeys(name for name in names if _is_name(name))))
    return found


def _is_name(name: str) -> bool:
    tokens = name_tokens(name)
    return bool(tokens) and not all(token in STOPWORDS or token.isdigit() for token in tokens)


def _whole_names(names: list[str]) -> list[str]:
    """``names`` without those that are part of a longer one ("Vostan" beside "Mirela Vostan"): a part
    would link the passage to everything else that shares it."""
    tokens = [f" {' '.join(name_tokens(name))} " for name in names]
    return [
        name
        for name, own in zip(names, tokens, strict=True)
        if not any(own != other and own in other for other in tokens)
    ]


def _key(name: str) -> tuple[str, ...]:
    """Where two spellings of one name meet: the barest alias ("Alien (film)" -> "alien")."""
    aliases = name_aliases(name)
    return aliases[-1] if aliases else ()


def synonym_pairs(
    vectors: np.ndarray, new: Sequence[int], threshold: float, per_entity: int
) -> list[tuple[int, int, float]]:
    """(i, j, cosine) for each entity i in ``new`` and its nearest other names at or above ``threshold``
    (rows of ``vectors`` are L2-normalised)."""
    pairs: list[tuple[int, int, float]] = []
    take = min(per_entity, len(vectors) - 1)
    if take <= 0:
        return pairs
    for begin in range(0, len(new), 1024):  # a block of rows at a time: the full matrix is quadratic
        rows = np.asarray(new[begin : begin + 1024])
        similarity = vectors[rows] @ vectors.T
        similarity[np.arange(len(rows)), rows] = -1.0  # not itself
        nearest = np.argpartition(-similarity, take - 1, axis=1)[:, :take]
        for offset, columns in enumerate(nearest):
            for column in columns:
                value = float(similarity[offset, column])
                if value >= threshold:
                    pairs.append((int(rows[offset]), int(column), value))
    return pairs


@dataclass
class GraphParts:
    """What the cache keeps: names per chunk and name vectors (so a rebuild only adds what is new)."""

    mentions: dict[str, list[str]]  # chunk id -> entity names its text mentions
    vectors: dict[str, np.ndarray]  # entity key (joined tokens) -> L2-normalised MiniLM vector
    synonyms: list[tuple[str, str, float]]  # entity key pairs


def build_passage_graph(
    chunks: Sequence[Chunk],
    document_name: Callable[[str], str | None],
    nlp: Language,
    embed: Callable[[list[str]], np.ndarray] | None,
    cached: GraphParts | None = None,
) -> tuple[PassageGraph, GraphParts]:
    """The graph over ``chunks``; ``cached`` parts of an earlier build are reused where they still apply.

    ``embed`` (L2-normalised vectors of names) adds synonymy edges; None leaves them out.
    """
    parts = cached or GraphParts(mentions={}, vectors={}, synonyms=[])
    todo = [c for c in chunks if c.chunk_id not in parts.mentions]
    for chunk, names in zip(todo, entity_names_in(nlp, [c.text for c in todo]), strict=True):
        parts.mentions[chunk.chunk_id] = names
    live = {c.chunk_id for c in chunks}
    parts.mentions = {chunk_id: names for chunk_id, names in parts.mentions.items() if chunk_id in live}

    key_index: dict[tuple[str, ...], int] = {}
    display: list[str] = []

    def entity(name: str) -> int | None:
        key = _key(name)
        if not key:
            return None
        if key not in key_index:
            key_index[key] = len(display)
            display.append(name)
        return key_index[key]

    passages: list[Passage] = []
    mentions: list[tuple[int, int]] = []
    names_of_doc: dict[str, str] = {}
    for row, chunk in enumerate(chunks):
        passages.append(Passage(chunk.chunk_id, chunk.doc_id, chunk.page_start))
        if chunk.doc_id not in names_of_doc:
            names_of_doc[chunk.doc_id] = document_name(chunk.doc_id) or chunk.title
        for name in _whole_names([names_of_doc[chunk.doc_id], *parts.mentions[chunk.chunk_id]]):
            found = entity(name)
            if found is not None:
                mentions.append((row, found))

    synonyms: list[tuple[int, int, float]] = []
    if embed is not None and display:
        keys = [" ".join(_key(name)) for name in display]
        missing = [i for i, key in enumerate(keys) if key not in parts.vectors]
        if missing:
            for i, vector in zip(missing, embed([display[i] for i in missing]), strict=True):
                parts.vectors[keys[i]] = np.asarray(vector, dtype=np.float32)
        parts.vectors = {key: parts.vectors[key] for key in keys}
        matrix = np.stack([parts.vectors[key] for key in keys])
        at = {key: i for i, key in enumerate(keys)}
        # Pairs among names seen before are kept; new names are compared with every name.
        known = [(a, b, s) for a, b, s in parts.synonyms if a in at and b in at]
        fresh = synonym_pairs(matrix, missing, SYNONYM_SIMILARITY, SYNONYMS_PER_ENTITY) if missing else []
        parts.synonyms = [*known, *((keys[a], keys[b], s) for a, b, s in fresh)]
        synonyms = [(at[a], at[b], s) for a, b, s in parts.synonyms]
    return PassageGraph(passages, display, mentions, synonyms), parts


# -- persistence --------------------------------------------------------------------------------


def save_parts(path: Path, signature: Hashable, parts: GraphParts) -> None:
    """Write the cache atomically: a crash leaves the old file or the new one."""
    keys = list(parts.vectors)
    vectors = np.stack([parts.vectors[k] for k in keys]).astype(np.float16) if keys else np.zeros((0, 0), np.float16)
    meta = {"signature": json.loads(json.dumps(signature)), "mentions": parts.mentions, "keys": keys,
            "synonyms": parts.synonyms}  # fmt: skip
    with replacing(path) as fh:
        np.savez(fh, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), vectors=vectors)


def load_parts(path: Path) -> tuple[object, GraphParts] | None:
    """(signature, parts) of a cache file, or None when there is none or it cannot be read."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]))
            vectors = data["vectors"].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("passage graph cache %s unreadable (%s): rebuilding it", path, exc)
        return None
    parts = GraphParts(
        mentions=meta["mentions"],
        vectors=dict(zip(meta["keys"], vectors, strict=True)),
        synonyms=[(a, b, float(s)) for a, b, s in meta["synonyms"]],
    )
    return meta["signature"], parts


# -- the workspace's graph ------------------------------------------------------------------------


class WorkspacePassageGraph:
    """The passage graph of a workspace, rebuilt when its ready documents change; implements
    `PassageRanking`. ``chunks`` lists every ready chunk, ``names`` every document's (doc id, name);
    ``version`` changes whenever they do."""

    def __init__(
        self,
        chunks: Callable[[], Sequence[Chunk]],
        version: Callable[[], Hashable],
        names: Callable[[], Iterable[tuple[str, str]]],
        chunk: Callable[[str], Chunk | None],
        nlp: Callable[[], Language],
        embed: Callable[[list[str]], np.ndarray] | None,
        cache_path: Path | None,
    ) -> None:
        self._chunks = chunks
        self._version = version
        self._names = names
        self._chunk = chunk
        self._nlp = nlp
        self._embed = embed
        self._cache_path = cache_path
        self._graph: PassageGraph | None = None
        self._built_for: object = None
        self._lock = threading.Lock()
        self.builds = 0  # graphs built in this process (tests check a new ingest rebuilds)

    def graph(self) -> PassageGraph:
        """The current graph: from memory, else from the cache file, else built (and cached)."""
        version = json.loads(json.dumps(self._version()))  # the form it takes in the cache file
        with self._lock:
            if self._graph is not None and self._built_for == version:
                return self._graph
            cached = load_parts(self._cache_path) if self._cache_path else None
            parts = cached[1] if cached else None
            names = dict(self._names())
            graph, parts = build_passage_graph(list(self._chunks()), names.get, self._nlp(), self._embed, parts)
            self.builds += 1
            if self._cache_path is not None and not (cached and cached[0] == version):
                try:
                    save_parts(self._cache_path, version, parts)
                except OSError as exc:  # a read-only workspace still answers; it rebuilds next time
                    log.warning("passage graph not cached at %s: %s", self._cache_path, exc)
            self._graph, self._built_for = graph, version
            return graph

    def rank(self, query: str, seeds: Sequence[Hit], k: int) -> list[Hit]:
        hits = []
        for passage, score in self.graph().rank(query, seeds, k):
            chunk = self._chunk(passage.chunk_id)
            if chunk is not None:
                hits.append(
                    Hit(channel="text", doc_id=chunk.doc_id, page=chunk.page_start, score=score,
                        chunk_id=chunk.chunk_id, text=chunk.text, title=chunk.title)
                )  # fmt: skip
        return hits
