"""Inline citation markers: where in the answer text each of the draft's claims belongs.

The draft states its claims separately from the answer text. Each claim is placed after the
sentence of the answer that shares the most content words with it (at the end of the answer when
none does), and carries the numbers of its sources in ``Answer.citations`` and whether the
verifier found the answer supported. Renderers (the JSON API's ``marked_answer``, ``/v1``, the
CLI and the chat UI) all go through :func:`render_marked`, so the markers are the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pagehop.agents.policy import content_terms
from pagehop.agents.state import Citation, CitedClaim, Claim, Evidence

# Sentence-like pieces of an answer: up to and including the end mark (or a list separator).
_PIECE = re.compile(r"[^.!?;\n]+(?:[.!?;]+|\n|$)")
_TRAILING = re.compile(r"[\s.!?;:,]*$")  # markers go before the closing punctuation
UNVERIFIED = "unverified"


def cite_claims(
    answer: str, claims: Sequence[Claim], evidence: Sequence[Evidence], citations: Sequence[Citation], supported: bool
) -> list[CitedClaim]:
    """Each claim with its citation numbers, support and marker position in ``answer``."""
    by_id = {e.id: e for e in evidence}
    number_of = {_key(c.doc_id, c.page, c.graph_path): n for n, c in enumerate(citations, start=1)}
    pieces = [(m.start(), m.end(), content_terms(m.group())) for m in _PIECE.finditer(answer) if m.group().strip()]
    cited: list[CitedClaim] = []
    for claim in claims:
        numbers: list[int] = []
        for evidence_id in claim.evidence_ids:
            item = by_id.get(evidence_id)
            number = number_of.get(_key(item.doc_id, item.page, item.graph_path)) if item else None
            if number is not None and number not in numbers:
                numbers.append(number)
        cited.append(
            CitedClaim(
                text=claim.text,
                citations=numbers,
                supported=supported and bool(numbers),
                position=_position(answer, pieces, content_terms(claim.text)),
            )
        )
    return cited


def _key(doc_id: str, page: int | None, graph_path: str | None) -> tuple[str, int | None, str | None]:
    return (doc_id, page, graph_path)


def _position(answer: str, pieces: list[tuple[int, int, set[str]]], terms: set[str]) -> int:
    """End of the piece sharing most of its content words with the claim (before its punctuation)."""
    best, best_score = len(answer.rstrip()), 0.0
    for start, end, piece_terms in pieces:
        score = len(piece_terms & terms) / len(piece_terms) if piece_terms else 0.0
        if score > best_score:
            text = answer[start:end]
            best, best_score = start + len(_TRAILING.sub("", text)), score
    return best


def render_marked(
    answer: str,
    claims: Sequence[CitedClaim],
    marker: Callable[[int], str] = lambda n: f"[{n}]",
    unverified: str = f"[{UNVERIFIED}]",
    text: Callable[[str], str] = lambda s: s,
) -> str:
    """``answer`` with each claim's markers at its position: ``[1][2]`` for a supported claim,
    ``[1][unverified]`` for one the verifier did not support. ``marker``, ``unverified`` and
    ``text`` (applied to the answer's own text, e.g. HTML escaping) let the UI render links."""
    if not answer:  # nothing to mark: the claims are only the evidence shown beside "no answer found"
        return ""
    groups: dict[int, list[str]] = {}
    for claim in claims:
        group = "".join(marker(n) for n in claim.citations) + ("" if claim.supported else unverified)
        at = groups.setdefault(min(claim.position, len(answer)), [])
        if group and group not in at:
            at.append(group)
    out, last = [], 0
    for position in sorted(groups):
        out += [text(answer[last:position]), *groups[position]]
        last = position
    out.append(text(answer[last:]))
    return "".join(out)
