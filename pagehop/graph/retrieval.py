"""The graph channel: question -> seed entities -> personalized PageRank -> chunks and paths.

Linking: spaCy named entities and noun chunks of the question are looked up by full text
(an exact name or alias match counts 1.0, a partial one less) and by embedding similarity
(cosine >= ``link_threshold``). Each seed's weight is divided by the number of chunks that
mention it (HippoRAG's node specificity), so "film" or "United States" do not drown the
specific names. PPR then ranks entities, and chunks by the sum of their entities' scores.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pagehop.config import Settings
from pagehop.graph.base import GraphPath, GraphStore
from pagehop.graph.resolution import TextEmbedder, embed_names, normalise_name

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
        nlp: Any,
        embedder: TextEmbedder | None = None,
        link_threshold: float = 0.8,
        candidates_per_mention: int = 3,
        max_paths: int = 5,
    ) -> None:
        self.store = store
        self.nlp = nlp
        self.embedder = embedder
        self.link_threshold = link_threshold
        self.candidates_per_mention = candidates_per_mention
        self.max_paths = max_paths

    def mentions(self, query: str) -> list[str]:
        """Named entities and noun chunks of ``query``, wh-words and pronouns dropped."""
        doc = self.nlp(query)
        spans = [e.text for e in doc.ents] + [
            nc.text for nc in doc.noun_chunks if nc.root.pos_ not in ("PRON",) and nc.root.lower_ not in WH_WORDS
        ]
        return [s for s in dict.fromkeys(spans) if normalise_name(s)]

    def link(self, query: str) -> dict[str, float]:
        """Seed entity ids and weights for ``query``."""
        mentions = self.mentions(query)
        scores: dict[str, float] = defaultdict(float)
        for mention in mentions:
            key = normalise_name(mention)
            for rank, entity in enumerate(self.store.find_entities(mention, limit=self.candidates_per_mention)):
                exact = key in {normalise_name(n) for n in [entity.name, *entity.aliases]}
                scores[entity.entity_id] = max(scores[entity.entity_id], 1.0 if exact else 0.5 / (rank + 1))
        if self.embedder is not None and mentions:
            for vector in embed_names(self.embedder, mentions):
                for entity, cosine in self.store.similar_entities(vector.tolist(), limit=self.candidates_per_mention):
                    if cosine >= self.link_threshold:
                        scores[entity.entity_id] = max(scores[entity.entity_id], cosine)
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


def make_graph_retriever(settings: Settings, store: GraphStore) -> GraphRetriever:
    """spaCy for question entities, MiniLM for linking them by similarity."""
    from pagehop.graph.resolution import load_text_embedder
    from pagehop.models import load_spacy

    embedder = load_text_embedder(settings.models.text_embedder, settings.models.device)
    return GraphRetriever(store, load_spacy(settings.models.spacy_model), embedder)
