"""Which documents a text names: an exact index of document names (titles and their aliases).

The bridge mechanism of multi-hop search: a passage that names "Jacques Tourneur" leads to the
passage *about* Jacques Tourneur. Matching is on word tokens, longest name first, and only where the
text writes the name as a name (starting with a capital letter or a digit), so a document called
"Music" is not named by every sentence about music; nor is a name of one word where a capitalised word
follows it ("Red" in "the Red Cross").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pagehop.text import STOPWORDS, name_aliases, name_tokens

_TOKEN = re.compile(r"\w+")
MAX_NAME_TOKENS = 12


@dataclass(frozen=True)
class NamedDocument:
    doc_id: str
    name: str  # the document's name as indexed
    start: int  # character offsets of the mention in the text
    end: int
    tokens: int  # length of the match in words


class TitleIndex:
    """Exact-name look-up of documents; build it from ``(doc_id, name)`` pairs."""

    def __init__(self, names: Iterable[tuple[str, str]] = ()) -> None:
        self._by_alias: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self._longest = 1
        for doc_id, name in names:
            self.add(doc_id, name)

    def __len__(self) -> int:
        return len(self._by_alias)

    def add(self, doc_id: str, name: str) -> None:
        for alias in name_aliases(name):
            if len(alias) > MAX_NAME_TOKENS or all(token in STOPWORDS or token.isdigit() for token in alias):
                continue
            owners = self._by_alias.setdefault(alias, [])
            if all(owner != doc_id for owner, _ in owners):
                owners.append((doc_id, name))
            self._longest = max(self._longest, len(alias))

    def named_in(self, text: str) -> list[NamedDocument]:
        """Documents whose name ``text`` mentions, in order of mention; longest match wins a span."""
        tokens = [(m.group(0), m.start()) for m in _TOKEN.finditer(text)]
        lowered = ["".join(name_tokens(token)) for token, _ in tokens]  # as the aliases are: "Pérez" is "perez"
        found: list[NamedDocument] = []
        seen: set[str] = set()
        i = 0
        while i < len(tokens):
            if not (tokens[i][0][0].isupper() or tokens[i][0][0].isdigit()):
                i += 1
                continue
            for length in range(min(self._longest, len(tokens) - i), 0, -1):
                owners = self._by_alias.get(tuple(lowered[i : i + length]))
                if owners is None:
                    continue
                last_word, last_start = tokens[i + length - 1]
                start, end = tokens[i][1], last_start + len(last_word)
                # One word that goes on as a longer name the index does not know is no mention of its
                # document: "Red" of "the Red Cross Society". A name of several words still is ("Scott
                # Howell III" names Scott Howell).
                if length == 1 and _goes_on(text, end):
                    while i + length < len(tokens) and _goes_on(text, end):
                        end = tokens[i + length][1] + len(tokens[i + length][0])
                        length += 1
                    i += length - 1  # none of its words names a document either ("Cross")
                    break
                for doc_id, name in owners:
                    if doc_id not in seen:
                        seen.add(doc_id)
                        found.append(NamedDocument(doc_id=doc_id, name=name, start=start, end=end, tokens=length))
                i += length - 1
                break
            i += 1
        return found


def _goes_on(text: str, end: int) -> bool:
    """The name written up to ``end`` goes on with a capitalised word after one space."""
    return text[end : end + 1] == " " and text[end + 1 : end + 2].isupper()
