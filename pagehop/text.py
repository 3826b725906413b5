"""Plain-text helpers every rule-based part of pagehop shares: one stopword list, one notion of a
content term, one sentence splitter and one name normaliser (so titles and mentions match alike)."""

from __future__ import annotations

import re
import unicodedata

# Function words of English: they say nothing about which passage or sentence holds an answer.
_STOPWORD_TEXT = (
    "a an the of in on at to for from by with and or nor but is are was were be been being am did does do doing "
    "done has have had having who whom whose what which when where why how that this these those it its as into "
    "onto out over under than then there here so such not no yes if about also both either neither each any all "
    "some other same one i me my we our you your he him his she her they them their us will would shall should "
    "can could may might must"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
WORD = re.compile(r"[\w'-]+")
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)\s*$")
# "Harbor Lane Robotics - Annual Review 2021"; not a colon, which is usually part of a work's name
_SUBTITLE = re.compile(r"\s+[-–—|]\s+.*$")
_MARKUP_HEADING = re.compile(r"^#{1,6}\s+")  # a Markdown heading's marks
_NAME_TOKEN = re.compile(r"\w+")
_PERIOD_AFTER = re.compile(r"(\S+)\.(?=\s|$)")  # a period ending a word, and the word
# English short forms written with a period inside names and titles.
_ABBREVIATIONS = frozenset(
    ["jr", "sr", "st", "dr", "mr", "mrs", "ms", "mt", "ft", "co", "corp", "inc", "ltd", "bros", "no", "vol", "vs"]
)
# A sentence ends at . ! or ? before a capital, but not after an initial ("S. R. Puttanna") or a short form
# ("Dr. Ada"): Python's look-behinds have a fixed width, so one per length of short form.
_AFTER_SHORT_FORM = "".join(
    f"(?<!\\b(?i:{'|'.join(sorted(w for w in _ABBREVIATIONS if len(w) == n))})\\.)"
    for n in sorted({len(w) for w in _ABBREVIATIONS})
)
SENTENCE_END = re.compile(rf"(?<=[.!?])(?<!\b[A-Z]\.){_AFTER_SHORT_FORM}\s+(?=[A-Z(\"'])")


def content_terms(text: str) -> set[str]:
    """Lower-cased words of ``text`` that are not stopwords."""
    words = (w.lower().removesuffix("'s").removesuffix("\u2019s").strip("'-") for w in WORD.findall(text))
    return {w for w in words if w and w not in STOPWORDS}


def singulars(words: list[str]) -> list[str]:
    """A tiny English plural stemmer, so that "cats" meets "cat" and "cities" meets "city" (no stemming library)."""
    stemmed = []
    for word in words:
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        stemmed.append(word)
    return stemmed


def stems(terms: set[str]) -> set[str]:
    """Five-letter prefixes: a crude stemmer under which "founded" meets "founder"."""
    return {term[:5] for term in terms}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


def asking_part(question: str) -> str:
    """``question`` up to its last sentence that asks (ends with "?"): the sentences after it say what form
    the answer should take ("Round your answer to two decimals."), not what to look for. Unchanged when no
    sentence asks."""
    parts = sentences(question)
    asks = [i for i, part in enumerate(parts) if part.endswith("?")]
    return " ".join(parts[: asks[-1] + 1]) if asks and asks[-1] < len(parts) - 1 else question


def name_tokens(name: str) -> tuple[str, ...]:
    """A name as lower-cased word tokens without accents: "The Mask of Fu Manchu" and "the mask of
    fu-manchu" meet, and so do "Aschenbrödel" and "Aschenbrodel" (people type names without their marks)."""
    if not name.isascii():
        name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return tuple(token.lower() for token in _NAME_TOKEN.findall(name))


def name_aliases(name: str) -> list[tuple[str, ...]]:
    """The tokens of a name, then of the name without a trailing qualifier ("Mercury (planet)" -> "Mercury")
    or subtitle ("Harbor Lane Robotics - Annual Review 2021" -> "Harbor Lane Robotics"): the last alias is the
    barest."""
    aliases: list[tuple[str, ...]] = []
    for form in _barer_forms(name):
        tokens = name_tokens(form)
        if tokens and tokens not in aliases:
            aliases.append(tokens)
    return aliases


def bare_name(name: str) -> str:
    """The name as written without its qualifier and subtitle: the text of :func:`name_aliases`'s last alias."""
    return _barer_forms(name)[-1]


def _barer_forms(name: str) -> list[str]:
    """The name, then without its trailing qualifier, then without its subtitle (each only when words remain)."""
    forms = [name]
    for pattern in (_PARENTHETICAL, _SUBTITLE):
        bare = pattern.sub("", forms[-1])
        if bare != forms[-1] and name_tokens(bare):
            forms.append(bare)
    return forms


def heading(text: str, max_chars: int = 120) -> str:
    """The first line of ``text`` when it reads as a heading (short, not a sentence), else ''."""
    first = _MARKUP_HEADING.sub("", text.strip().split("\n", 1)[0].strip())
    # A line that ends like a sentence, or holds a sentence break, is prose wrapped at a line end.
    if not first or len(first) > max_chars or first.endswith((":", ";", ",")) or _has_full_stop(first):
        return ""
    return first


def _has_full_stop(line: str) -> bool:
    """A period that ends a sentence: not one of an initial ("Albert S. Rogell"), a dotted abbreviation
    ("Back in the U.S.A.") or a short form written before a name ("Mr. Ace", "John Smith Jr.")."""
    for match in _PERIOD_AFTER.finditer(line):
        word = match.group(1)
        if not (len(word) == 1 or "." in word or word.lower() in _ABBREVIATIONS):
            return True
    return False
