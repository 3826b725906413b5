"""Prompt templates (one Markdown file per agent stage) and the quoting of untrusted text.

Templates use ``$name`` placeholders (`string.Template`), so JSON braces in them need no
escaping. Document text and earlier conversation turns are untrusted: they enter prompts
only through `quote_documents` / `quote_conversation`, inside delimited data blocks with
``<`` ``>`` ``&`` escaped, so a document can neither close its block nor pose as instructions.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from functools import cache
from importlib import resources
from string import Template
from typing import Any

DOCUMENTS_OPEN = "<documents>"
DOCUMENTS_CLOSE = "</documents>"


@cache
def _template(name: str) -> Template:
    text = resources.files("pagehop.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
    return Template(text)


def render(name: str, **values: Any) -> str:
    """Fill template ``name`` (e.g. "decompose"); a missing value raises KeyError."""
    return _template(name).substitute(**{key: str(value) for key, value in values.items()})


def messages(stage: str, **values: Any) -> list[dict[str, Any]]:
    """System rules + the stage's task, as chat messages."""
    return [
        {"role": "system", "content": render("system")},
        {"role": "user", "content": render(stage, **values)},
    ]


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def quote_documents(items: Iterable[tuple[str, dict[str, Any], str]]) -> str:
    """A data block of ``(id, attributes, text)`` items, every value escaped."""
    lines = [DOCUMENTS_OPEN]
    for item_id, attributes, text in items:
        attrs = " ".join(f'{key}="{escape(str(value))}"' for key, value in attributes.items() if value)
        lines.append(f'<evidence id="{escape(item_id)}" {attrs}>'.replace(" >", ">"))
        lines.append(escape(text))
        lines.append("</evidence>")
    lines.append(DOCUMENTS_CLOSE)
    return "\n".join(lines)


def quote_conversation(turns: Iterable[tuple[str, str]]) -> str:
    """Earlier (question, answer) turns as a data block; empty when there are none."""
    body = [f"<turn>\nUser: {escape(q)}\nAssistant: {escape(a)}\n</turn>" for q, a in turns]
    return "<conversation>\n" + "\n".join(body) + "\n</conversation>" if body else ""
