"""The graph channel: question -> seed entities -> personalized PageRank -> chunks and paths.

Linking: spaCy named entities and noun chunks of the question are looked up by name. A mention
that is an entity's name or alias seeds it with weight 1; an entity whose whole name occurs in the
question (less a disambiguation: "Swamp Thing (film)") with PARTIAL_MATCH; a mere shared word
seeds nothing. Each seed's weight is divided by the number of chunks that mention it (HippoRAG's
node specificity), so "film" or "United States" do not drown the specific names. PPR then ranks
entities, and chunks by the sum of their entities' scores.

Linking by embedding similarity (MiniLM, cosine >= 0.8) was measured and dropped: it lowered 2Wiki
graph recall (docs/benchmarks.md, "Question linking"), because near names ("John Middleton" ~
"John Middleton Murry Jr.") are different people at least as often as they are the same one.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pagehop.config import Settings
from pagehop.graph.base import Entity, GraphPath, GraphStore
from pagehop.graph.resolution import normalise_name

if TYPE_CHECKING:
    from spacy.tokens import Doc

PARTIAL_MATCH = 0.5  # seed weight of an entity whose name the question contains but did not say as one mention
_DISAMBIGUATION = re.compile(r"\s*\([^)]*\)\s*$")  # "Swamp Thing (film)" -> "Swamp Thing"
WH_WORDS = frozenset({"who", "whom", "whose", "what", "which", "when", "where", "why", "how"})


@dataclass
class GraphSearchResult:
    chunks: list[tuple[str, float]]  # (chunk_id, score), best first
    entities: list[tuple[str, float]]  # (entity_id, score), best first
    seeds: dict[str, float]  # linked question entities and their PPR weights
    paths: list[GraphPath] = field(default_factory=list)  # among seeds and top entities, for citations


class GraphRetriever:
    def __init__(
        self,
        store: GraphStore,
        parse: Callable[[str], Doc],
        candidates_per_mention: int = 5,
        max_paths: int = 5,
    ) -> None:
        """``parse``: a spaCy pipeline with parser and NER, or `pagehop.models.question_parser`'s."""
        self.store = store
        self.parse = parse
        self.candidates_per_mention = candidates_per_mention
        self.max_paths = max_paths

    def mentions(self, query: str) -> list[str]:
        """Named entities and noun chunks of ``query``, wh-words and pronouns dropped."""
        doc = self.parse(query.strip())
        spans = [e.text for e in doc.ents] + [
            nc.text for nc in doc.noun_chunks if nc.root.pos_ not in ("PRON",) and nc.root.lower_ not in WH_WORDS
        ]
        return [s for s in dict.fromkeys(spans) if normalise_name(s)]

    def link(self, query: str) -> dict[str, float]:
        """Seed entity ids and weights for ``query``."""
        mentions = self.mentions(query)
        query_tokens = set(normalise_name(query).split())
        scores: dict[str, float] = defaultdict(float)
        for mention in mentions:
            for entity in self.store.find_entities(mention, limit=self.candidates_per_mention):
                weight = _name_match(normalise_name(mention), query_tokens, entity)
                scores[entity.entity_id] = max(scores[entity.entity_id], weight)
        scores = {e: s for e, s in scores.items() if s > 0}
        if not scores:
            return {}
        counts = self.store.chunk_mention_counts(list(scores))
        return {e: s / max(1, counts.get(e, 1)) for e, s in scores.items()}

    def search(self, query: str, k: int = 10) -> GraphSearchResult:
        seeds = self.link(query)
        if not seeds:
            return GraphSearchResult(chunks=[], entities=[], seeds={})
        entities, chunks = self.store.personalized_pagerank(seeds, top_k=max(k, 20))
        return GraphSearchResult(
            chunks=chunks[:k], entities=entities[:k], seeds=seeds, paths=self._paths(seeds, entities)
        )

    def _paths(self, seeds: dict[str, float], entities: list[tuple[str, float]]) -> list[GraphPath]:
        """Short paths joining the strongest seeds to each other and to the top-ranked entities."""
        top_seeds = sorted(seeds, key=lambda e: -seeds[e])[:3]
        targets = [e for e, _ in entities if e not in top_seeds][:3]
        found: list[GraphPath] = []
        seen: set[tuple[str, ...]] = set()
        for source, target in itertools.chain(
            itertools.combinations(top_seeds, 2), itertools.product(top_seeds, targets)
        ):
            for path in self.store.paths(source, target, max_hops=2, limit=1):
                if tuple(path.entity_ids) not in seen:
                    seen.add(tuple(path.entity_ids))
                    found.append(path)
            if len(found) >= self.max_paths:
                break
        return found


def _name_match(mention_key: str, query_tokens: set[str], entity: Entity) -> float:
    """1.0 when the mention is the entity's name or an alias; PARTIAL_MATCH when every word of the
    entity's name (less a trailing disambiguation) occurs in the question; otherwise 0.

    A candidate that merely shares a word ("the director" -> "Roy Mack (director)") is no seed:
    such seeds, weighted up for being rare, used to pull PageRank away from the question's subject.
    """
    if mention_key in {normalise_name(n) for n in [entity.name, *entity.aliases]}:
        return 1.0
    core = set(normalise_name(_DISAMBIGUATION.sub("", entity.name)).split())
    return PARTIAL_MATCH if core and core <= query_tokens else 0.0


def make_graph_retriever(settings: Settings, store: GraphStore) -> GraphRetriever:
    """spaCy finds the question's entities (the parse the agent's question analysis shares); names link
    them to the graph."""
    from pagehop.models import question_parser

    return GraphRetriever(store, question_parser(settings.models.spacy_model))
