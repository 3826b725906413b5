"""Question analysis from general English syntax, with spaCy: no word lists from any benchmark.

What the no-LLM policy needs to know about a question:

- the names it mentions (spaCy entities, proper-noun chunks, quoted titles): the first hop's anchors;
- the relation words around them (content terms that are not part of a name): what a passage must
  talk about to carry the answer, and what a bridge passage should be about;
- the answer type: spaCy entity labels from the wh-word and, for "which/what X", from the head noun X
  when X is a type noun of English (year, country, city, ...);
- alternatives ("A or B", "both A and B"): the sides a comparison or a yes/no question weighs, and the
  direction of a comparative ("earlier", "younger", "more", ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from pagehop.text import content_terms, name_tokens

if TYPE_CHECKING:
    from spacy.tokens import Doc, Token

Direction = Literal["min", "max"]

# Answer types of English question words (spaCy's OntoNotes labels).
PERSON_OR_GROUP = ("PERSON", "ORG")
PLACE = ("GPE", "LOC", "FAC")
NUMBER = ("CARDINAL", "QUANTITY", "MONEY", "PERCENT")
DATE = ("DATE",)
NAMED = ("PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "WORK_OF_ART", "EVENT", "PRODUCT", "LANGUAGE", "LAW")
UNTYPED = NAMED + DATE + NUMBER  # "which X" with X no type noun: any entity or value may answer
# "which <noun>" / "what <noun>": nouns of English that name a type of answer.
TYPE_NOUNS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("year", "date", "day", "month", "century", "decade", "time", "era", "period"), DATE),
    **dict.fromkeys(("country", "city", "state", "town", "place", "nation", "capital", "region"), PLACE),
    **dict.fromkeys(("continent", "province", "county", "village", "location", "area"), PLACE),
    **dict.fromkeys(("nationality", "religion", "ethnicity"), ("NORP", "GPE")),
    **dict.fromkeys(("language",), ("LANGUAGE", "NORP")),
    **dict.fromkeys(("person", "man", "woman", "people", "persons", "men", "women"), ("PERSON",)),
    **dict.fromkeys(("company", "organization", "organisation", "firm", "corporation", "institution"), ("ORG",)),
    **dict.fromkeys(("university", "college", "school", "team", "club", "band", "group", "party"), ("ORG",)),
    **dict.fromkeys(("number", "amount", "population", "count"), NUMBER),
}
# Comparatives of English and which end of a scale they pick (dates: earlier is smaller).
SMALLER = frozenset(
    [
        "first",
        "earlier",
        "earliest",
        "older",
        "oldest",
        "before",
        "sooner",
        "fewer",
        "less",
        "least",
        "smaller",
        "smallest",
        "lower",
        "lowest",
        "shorter",
        "shortest",
    ]
)
LARGER = frozenset(
    [
        "last",
        "later",
        "latest",
        "younger",
        "youngest",
        "newer",
        "newest",
        "recent",
        "recently",
        "after",
        "more",
        "most",
        "larger",
        "largest",
        "bigger",
        "biggest",
        "higher",
        "highest",
        "taller",
        "tallest",
        "longer",
        "longest",
        "greater",
        "greatest",
    ]
)
QUANTIFIERS = frozenset(["more", "most", "fewer", "fewest", "less", "least"])  # comparatives of amount
# The parts of speech of the small words a title keeps between capitalised ones: "of", "the", "in", "to".
TITLE_SMALL_WORDS = frozenset(["ADP", "DET", "PART"])
# Words of English grammar that open a relative clause after a noun ("the state *where* ...").
RELATIVIZERS = frozenset(["where", "which", "that", "who", "whom", "whose", "when"])
PHRASE_DEPS = frozenset(["det", "amod", "compound", "nummod", "advmod"])  # words of a noun phrase before its noun
POSSESSIVES = frozenset(["'s", "\u2019s", "'"])  # the possessive ending, as spaCy splits it off a name
QUALIFIER = re.compile(r"\s*\([^()]{1,80}\)")  # "Camille (1926 Film)": a parenthesis written right after a name
HOP_ANSWER = "{answer}"  # in a chain hop: the answer of the hop before it
WH_TAGS = frozenset(["WDT", "WP", "WP$", "WRB"])  # what, which, who, whose, where, when, how
YES_NO_OPENERS = frozenset(
    ["is", "are", "was", "were", "do", "does", "did", "has", "have", "had", "can", "could", "will", "would", "should"]
)


@dataclass
class QuestionAnalysis:
    text: str
    names: list[str]  # names the question mentions, in order
    relation_terms: set[str]  # content terms outside the names
    answer_labels: tuple[str, ...] | None  # spaCy labels the answer carries; None: a free-text answer
    yes_no: bool = False
    sides: tuple[str, str] | None = None  # alternatives the question weighs
    direction: Direction | None = None  # which end of the scale a comparison picks
    same: bool = False  # "the same X": a yes/no on equality
    name_terms: set[str] = field(default_factory=set)
    # Nouns of the relation that name another thing than the answer's kind, a value's type or the kind a
    # noun before a name gives it ("film" in "the director of film X"): in "Which film has the director born
    # later, A or B?" the sides are compared through their "director".
    roles: set[str] = field(default_factory=set)
    # Descriptions to resolve innermost first ("the country where X is found"): each hop after the first
    # holds HOP_ANSWER where the previous hop's answer goes; the last is the question itself so rewritten.
    chain: list[str] = field(default_factory=list)
    # Names that only say where or when something happened: the object of a preposition that qualifies a
    # verb ("who broke the law *in Belgium*"), not what the question asks about ("the airport in Wilmington").
    circumstances: set[str] = field(default_factory=set)

    @property
    def compares(self) -> bool:
        return self.sides is not None


class QuestionAnalyzer:
    """Reads questions parsed by a spaCy pipeline with parser and NER (``parse``: the pipeline itself, or
    `pagehop.models.question_parser`)."""

    def __init__(self, parse: Callable[[str], Doc]) -> None:
        self.parse = parse

    def __call__(self, question: str, whole: tuple[tuple[int, int], ...] = ()) -> QuestionAnalysis:
        """``whole``: character spans of the stripped question known to be one name each (a document of the
        collection written whole); they replace the names the parser read inside them."""
        doc = self.parse(question.strip())
        names = _names(doc, whole)
        sides = _sides(doc, names, whole)
        if sides:  # a span read across "or" holds both sides: the sides replace it
            names = [*dict.fromkeys([*sides, *(n for n in names if not (sides[0] in n and sides[1] in n))])]
        name_terms = {term for name in names for term in content_terms(name)}
        words = [token.lower_ for token in doc]
        yes_no = bool(words) and words[0] in YES_NO_OPENERS
        comparatives = [w for w in words if w in SMALLER or w in LARGER]
        direction: Direction | None = None
        if comparatives and (sides or not yes_no):
            direction = "min" if comparatives[0] in SMALLER else "max"
        relation = content_terms(question) - name_terms - SMALLER - LARGER
        labels = _answer_labels(doc, yes_no, _name_spans(question, names))
        kinds = {_head_noun(doc, t.i) for t in doc if t.lower_ in ("which", "what")}
        roles = (
            {
                t.lower_
                for t in doc
                if t.pos_ == "NOUN"
                and t.lower_ in relation
                and not any(c.lower_ in QUANTIFIERS for c in t.children)  # "more members": a count, not a thing
            }
            - kinds
            - set(TYPE_NOUNS)
            - {t.lower_ for t in doc if _kind_of_names(doc, t, names)}
        )
        if sides and not yes_no:  # "Which ..., A or B?": the answer is one of the sides
            labels = None
        return QuestionAnalysis(
            text=question,
            names=names,
            relation_terms=relation,
            answer_labels=labels,
            yes_no=yes_no,
            sides=sides,
            direction=direction,
            same="same" in words,
            name_terms=name_terms,
            roles=roles,
            chain=[] if sides else description_chain(doc, names),
            circumstances=_circumstances(doc, names),
        )


def _kind_of_names(doc: Doc, token: Token, names: list[str]) -> bool:
    """``token`` is the kind of the question's names written right after it ("film" in "film X"), or a
    plural whose members a comma lists ("mountains" in "both mountains, A and B"); a singular before a comma
    is what the names are compared by ("the older founder, Acme or Zenith")."""
    after = doc[token.i + 1 :]
    if token.tag_ == "NNS":
        after = after[next((i for i, t in enumerate(after) if not t.is_punct), len(after)) :]
    return bool(after) and any(doc.text.startswith(n, after[0].idx) for n in names)


def _circumstances(doc: Doc, names: list[str]) -> set[str]:
    """The ``names`` whose head word is the object of a preposition attached to a verb (see
    :attr:`QuestionAnalysis.circumstances`)."""
    out = set()
    for name in names:
        at = doc.text.find(name)
        span = doc.char_span(at, at + len(name), alignment_mode="expand") if at != -1 else None
        if span is None:
            continue
        head = span.root
        if head.dep_ == "pobj" and head.head.dep_ == "prep" and head.head.head.pos_ in ("VERB", "AUX"):
            out.add(name)
    return out


def _names(doc: Doc, whole: tuple[tuple[int, int], ...] = ()) -> list[str]:
    """Entities, proper-noun runs and quoted spans, longest first where they overlap, in order. A ``whole``
    span replaces the names inside it or across its edges: "Robert Petre, 8th Baron Petre" is one name, not
    "Robert Petre" and "Baron Petre"."""
    spans: list[tuple[int, int]] = []
    for ent in doc.ents:
        if ent.label_ not in ("DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"):
            # the question's first word is capitalised as a sentence's, not as a name's ("Are X and Y ...?")
            opener = ent.start == 0 and len(ent) > 1 and (doc[0].lower_ in YES_NO_OPENERS or doc[0].tag_ in WH_TAGS)
            spans.append((doc[1].idx if opener else ent.start_char, ent.end_char))
    spans += _proper_runs(doc)
    text = doc.text
    spans = [(start, _qualified_end(text, end)) for start, end in spans]
    for quote in ('"', "\u201c"):
        start = text.find(quote)
        while start != -1:
            end = text.find('"' if quote == '"' else "\u201d", start + 1)
            if end == -1:
                break
            spans.append((start + 1, end))
            start = text.find(quote, end + 1)
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int]] = []
    for start, end in spans:
        if kept and start < kept[-1][1]:  # overlaps the previous span: merge into the longer cover
            kept[-1] = (kept[-1][0], max(kept[-1][1], end))
            continue
        kept.append((start, end))
    for s, e in list(kept):
        held = [(start, end) for start, end in whole if s <= start and end <= e]
        if len(held) > 1:  # names of two documents read as one: "Laserblast and The Life Of Juanita Castro"
            kept = sorted([span for span in kept if span != (s, e)] + held)
    for start, end in whole:
        # the names inside a whole span, and those that cross its edge ("Max" and "Helen or Held Einer Nacht"
        # across "Max And Helen"); a longer name around it stays, unless it holds two (split above)
        around = [(s, e) for s, e in kept if s <= start and end <= e and (s, e) != (start, end)]
        inside = [
            (s, e)
            for s, e in kept
            if s < end and start < e and ((s, e) not in around or (s == start and text[end:e] in ("'s", "\u2019s")))
        ]
        if inside and inside != [(start, end)]:
            kept = sorted([span for span in kept if span not in inside] + [(start, end)])
    names = [_bare(part) for s, e in kept for part in ([text[s:e]] if (s, e) in whole else text[s:e].split(" or "))]
    return [n for n in dict.fromkeys(names) if name_tokens(n) and content_terms(n)]


def _qualified_end(text: str, end: int) -> int:
    """Where a name ending at ``end`` ends with the qualifier written after it ("Camille (1926 Film)",
    "Amaury de Montfort (died 1241)"): the parenthesis says which of several namesakes is meant, so it
    belongs to the name, not to the names and words of the question."""
    if text[:end].endswith("("):  # a span that stopped inside the parenthesis
        end = text.rindex("(", 0, end)
    found = QUALIFIER.match(text, end)
    return found.end() if found else end


def _bare(name: str) -> str:
    """A name without surrounding punctuation, a possessive ending or a leading article."""
    name = name.strip(" ,?'\"")
    if name.count("(") > name.count(")"):
        name += ")"
    if name.endswith(("'s", "\u2019s")):
        name = name[:-2]
    if name.lower().startswith("the ") and not name[4:5].isupper():
        name = name[4:]
    return name.strip()


def _proper_runs(doc: Doc) -> list[tuple[int, int]]:
    """Runs of capitalised words (with the small words titles keep inside: "The Mask of Fu Manchu")."""
    runs: list[tuple[int, int]] = []
    i = 0
    tokens = list(doc)
    while i < len(tokens):
        token = tokens[i]
        if token.i == 0 or not (token.text[:1].isupper() or (token.text[:1].isdigit() and token.pos_ == "PROPN")):
            i += 1
            continue
        j = i + 1
        while j < len(tokens):
            nxt = tokens[j]
            clitic = nxt.text[:1] in ("'", "\u2019") and not tokens[j - 1].whitespace_  # "Mama'S", "It'll"
            if nxt.text[:1].isupper() or nxt.text[:1].isdigit() or nxt.text in ("'s", "'", "-", "&", ":") or clitic:
                j += 1
            elif (
                nxt.is_stop
                and nxt.pos_ in TITLE_SMALL_WORDS
                and j + 1 < len(tokens)
                and tokens[j + 1].text[:1].isupper()
            ):
                j += 2  # "of", "the", "in" inside a title; not "when" or "was" between two names
            else:
                break
        last = tokens[j - 1]
        runs.append((token.idx, last.idx + len(last.text)))
        i = j
    return runs


def _sides(doc: Doc, names: list[str], whole: tuple[tuple[int, int], ...] = ()) -> tuple[str, str] | None:
    """Two alternatives joined by "or" (or by "and" in a yes/no question): "..., A or B?". A joiner inside a
    ``whole`` name ("Max And Helen", a document's) joins nothing."""
    for token in doc:
        if token.lower_ not in ("or", "and") or any(s <= token.idx < e for s, e in whole):
            continue
        lowered = doc.text.lower()
        if token.lower_ == "and" and not (
            doc[0].lower_ in YES_NO_OPENERS
            or any(w.lower_ in SMALLER or w.lower_ in LARGER for w in doc)
            or " both " in lowered
            or " between " in lowered
            or " out of " in lowered
        ):
            continue
        left_text, right_text = doc.text[: token.idx], doc.text[token.idx + len(token.text) :]
        left = _last_name_in(left_text, names, token.idx)
        right = _first_name_in(right_text, names, token.idx + len(token.text))
        if left and right:
            return left, right
    return None


def _last_name_in(text: str, names: list[str], end: int) -> str:
    """The name (or, failing one, the comma-separated phrase) that ends right before ``end``."""
    stripped = text.rstrip(" ,")
    for name in sorted(names, key=len, reverse=True):
        if stripped.endswith(name):
            return name
    clause = stripped.rsplit(",", 1)
    return clause[1].strip() if len(clause) == 2 and 0 < len(clause[1].split()) <= 8 else ""


def _first_name_in(text: str, names: list[str], start: int) -> str:
    stripped = text.strip().rstrip("?.! ")
    for name in sorted(names, key=len, reverse=True):
        if stripped.startswith(name):
            return name
    clause = stripped.split(",", 1)[0].strip()
    return clause if 0 < len(clause.split()) <= 8 and (clause[:1].isupper() or clause[:1].isdigit()) else ""


def _answer_labels(doc: Doc, yes_no: bool, name_spans: list[tuple[int, int]]) -> tuple[str, ...] | None:
    """spaCy labels of the answer: from the wh-word, or from the head noun of "which/what X". A wh-word
    inside one of the question's names ("How to Eat, released in which year, ...") asks nothing."""
    if yes_no:
        return None
    words = [token.lower_ for token in doc]
    for i, token in enumerate(doc):
        word = token.lower_
        if any(start <= token.idx < end for start, end in name_spans):
            continue
        if word in ("which", "what", "whose"):
            noun = _head_noun(doc, i)
            labels = _noun_type(noun) if noun is not None else None
            if labels is not None:
                return labels
            if word == "whose":
                return PERSON_OR_GROUP
        elif word == "when":
            return DATE
        elif word == "where":
            return PLACE
        elif word in ("who", "whom"):
            return PERSON_OR_GROUP
        elif word == "how" and i + 1 < len(words):
            follow = words[i + 1]
            if follow in ("many", "much"):
                return NUMBER
            if follow in ("old", "long"):
                return (*NUMBER, *DATE)
            return None  # "how did ...": a free-text answer
        elif word == "why":
            return None
        else:
            continue
        break
    return UNTYPED


def _noun_type(noun: str) -> tuple[str, ...] | None:
    """The answer labels of a type noun, or of a closed compound that ends in one ("birthplace" is a
    place, "hometown" a town, "birthday" a day; "husband" is no band)."""
    if noun in TYPE_NOUNS:
        return TYPE_NOUNS[noun]
    # the part before the type noun must be four letters or more, as words before one are ("birth", "home"),
    # so a short syllable does not make a compound ("hus|band")
    ends = [t for t in TYPE_NOUNS if len(t) >= 3 and len(noun) > len(t) + 3 and noun.endswith(t)]
    return TYPE_NOUNS[max(ends, key=len)] if ends else None


def _head_noun(doc: Doc, wh_index: int) -> str | None:
    """The noun a wh-determiner qualifies ("which *country*", "what *year*"), lower-cased."""
    tokens = list(doc[wh_index + 1 : wh_index + 8])
    for i, token in enumerate(tokens):
        if token.pos_ in ("NOUN", "PROPN"):
            after = tokens[i + 1] if i + 1 < len(tokens) else None
            if token.lower_ in ("name", "kind", "type", "sort") and after is not None and after.lower_ == "of":
                continue  # "what is the name of the city": the type is the noun after "of"
            return token.lower_
        if token.pos_ not in ("ADJ", "DET", "ADV", "AUX", "ADP") and token.lower_ != "of":
            return None
    return None


@dataclass(frozen=True)
class _Description:
    start: int  # character span of the description in the question
    end: int
    head: str  # its head noun ("country")
    head_end: int  # where the head noun ends; the qualifier follows ("where the Bubye River is found")
    owner: str = ""  # a possessive name ("Hello Love" of "Hello Love's performer")

    def ask(self, text: str, inner: _Description | None = None) -> str:
        """The description as a question ("which country where ..."), ``inner`` replaced by the hop answer."""
        if self.owner:
            return f"which {self.head} of {self.owner}"
        rest = text[self.head_end : self.end]
        if inner is not None:
            rest = text[self.head_end : inner.start] + HOP_ANSWER + text[inner.end : self.end]
        return f"which {self.head} {rest.strip()}".strip()


def description_chain(doc: Doc, names: list[str]) -> list[str]:
    """The question as a chain of hops, innermost description first.

    A description is a definite noun phrase that a relative clause ("the country where the Bubye River is
    found"), "of" + a name or another description ("the composer of Aschenbrodel") or a possessive name
    ("Hello Love's performer") qualifies. The innermost one that holds a name is asked first ("which
    country where the Bubye River is found"); each enclosing description is asked next with the inner one
    replaced by its answer, and the question last, with its outermost description replaced. Empty when
    the question describes no named thing in two hops or more (then its names are the anchors).
    """
    text = doc.text
    name_spans = _name_spans(text, names)
    found = _descriptions(doc, name_spans)
    holding = [d for d in found if any(d.start <= s and e <= d.end for s, e in name_spans)]
    if not holding:
        return []
    hops = [min(holding, key=lambda d: (d.end - d.start, -d.start))]
    while True:
        inner = hops[-1]
        outer = [d for d in found if d.head_end <= inner.start and inner.end <= d.end and not d.owner]
        if not outer:
            break
        hops.append(min(outer, key=lambda d: d.end - d.start))
    texts = [hops[0].ask(text)]
    texts += [hop.ask(text, inner) for inner, hop in pairwise(hops)]
    last = hops[-1]
    question = f"{text[: last.start]}{HOP_ANSWER}{text[last.end :]}".strip()
    if content_terms(question.replace(HOP_ANSWER, "")):  # else the last description is the question
        texts.append(question)
    return texts if len(texts) > 1 else []


def _name_spans(text: str, names: list[str]) -> list[tuple[int, int]]:
    spans = []
    for name in names:
        at = text.find(name)
        if at != -1:
            spans.append((at, at + len(name)))
    return spans


def _descriptions(doc: Doc, name_spans: list[tuple[int, int]]) -> list[_Description]:
    """Definite noun phrases qualified by a relative clause, by "of" + a name or a description, or by a
    possessive name. Read right to left, so the object of an "of" is known before its head."""
    text = doc.text.rstrip(" ?.!")
    found: dict[int, _Description] = {}  # by start

    def in_name(char: int) -> bool:
        return any(s <= char < e for s, e in name_spans)

    for token in reversed(doc):
        if token.pos_ != "NOUN" or in_name(token.idx):
            continue
        first = _phrase_start(token)
        if first.tag_ in ("WDT", "WP", "WP$") or first.lower_ in ("what", "which", "whose"):
            continue  # "what kind of ...", "which county ...": what the question asks, not a description
        last = token  # "city of birth": a bare noun after "of" belongs to the head
        while last.i + 2 < len(doc) and doc[last.i + 1].lower_ == "of" and _bare_noun(doc[last.i + 2], in_name):
            last = doc[last.i + 2]
        head = text[token.idx : last.idx + len(last.text)]
        start, head_end = first.idx, last.idx + len(last.text)
        definite = first.lower_ == "the" or any(c.dep_ == "poss" for c in token.children)
        owner = next((c for c in token.children if c.dep_ == "poss" and in_name(c.idx)), None)
        if owner is None and first.i >= 2 and doc[first.i - 1].lower_ in POSSESSIVES and in_name(doc[first.i - 2].idx):
            # "X (Died 1241)'s father": the parser may hang the possessive elsewhere, the words say it
            owner = doc[first.i - 2]
        if owner is not None:
            s, e = next(span for span in name_spans if span[0] <= owner.idx < span[1])
            found[min(start, s)] = _Description(min(start, s), head_end, head, head_end, owner=text[s:e])
            continue
        if not definite or last.i + 2 >= len(doc):
            continue
        after, object_ = doc[last.i + 1], doc[last.i + 2]
        if after.lower_ in RELATIVIZERS or (after.pos_ == "ADP" and object_.lower_ in ("which", "whom")):
            clause_end = _clause_end(doc, last, after, text, in_name)
            if not any(t.pos_ == "VERB" for t in doc if not start <= t.idx < clause_end):
                clause_end = _predicate_kept(doc, after, clause_end, in_name)
            found[start] = _Description(start, clause_end, head, head_end)
        # "the city of Paris" names the city; "the place of birth of X" (a head already qualified) does not
        elif after.lower_ == "of" and (last is not token or TYPE_NOUNS.get(token.lower_) != PLACE):
            at = object_.idx
            name_end = next((e for s, e in name_spans if s == at and not text[e:].startswith(("'s", "\u2019s"))), None)
            inner = found.get(at)
            end = name_end if name_end is not None else inner.end if inner is not None else None
            if end is not None:
                found[start] = _Description(start, end, head, head_end)
    return sorted(found.values(), key=lambda d: d.start)


def _clause_end(doc: Doc, noun: Token, opener: Token, text: str, in_name: Callable[[int], bool]) -> int:
    """Where the relative clause on ``noun`` ends: the end of its verb's subtree when the parser found one
    (the clause attached to ``noun``, not one of a description nested inside it: "the king under whom the
    army that crossed Keldra reached the sea" ends after "sea", not "Keldra"), else the next comma or full
    stop outside a name, else the question's end."""
    clauses = [t for t in doc[opener.i + 1 :] if t.dep_ in ("relcl", "acl")]
    verb = next((t for t in clauses if t.head.i == noun.i), clauses[0] if clauses else None)
    if verb is not None and verb.right_edge.i >= verb.i:
        edge = verb.right_edge
        return min(len(text), edge.idx + len(edge.text))
    stop = next(
        (m.start() for m in re.finditer(r"[,.]", text[opener.idx :]) if not in_name(opener.idx + m.start())), None
    )
    return opener.idx + stop if stop is not None else len(text)


def _predicate_kept(doc: Doc, opener: Token, end: int, in_name: Callable[[int], bool]) -> int:
    """A clause that left its question no verb may have taken the question's predicate: in "When was the
    country that produced Fist Power taken by the British?" the parser hangs "taken" on the name as a
    participle clause. Such a participle, on a name that follows the clause's own verb, is the question's,
    and the clause ends before it; else at ``end`` ("where X was born" has no verb before "born")."""
    clause = [t for t in doc[opener.i + 1 :] if t.idx < end]
    for token in clause:
        name = token.head
        if (
            token.tag_ in ("VBN", "VBG")
            and token.dep_ == "acl"
            and in_name(name.idx)
            and any(t.pos_ == "VERB" and t.i < name.i for t in clause)
        ):
            before = doc[token.i - 1]
            return before.idx + len(before.text)
    return end


def _bare_noun(token: Token, in_name: Callable[[int], bool]) -> bool:
    """A common noun with no determiner of its own ("birth" in "city of birth")."""
    return (
        token.pos_ == "NOUN" and not in_name(token.idx) and not any(c.dep_ in ("det", "poss") for c in token.children)
    )


def _phrase_start(noun: Token) -> Token:
    """The first word of the noun phrase of ``noun``: the determiners, adjectives and compounds before it."""
    doc = noun.doc
    start = noun.i
    while start > 0 and doc[start - 1].dep_ in PHRASE_DEPS and start <= doc[start - 1].head.i <= noun.i:
        start -= 1
    return doc[start]
