"""BM25's terms: an underscore separates words, so a question that writes a name as an identifier
("cash_ratio") meets the page that writes it as words. A real PDF written in code, ingested by the real
pipeline into a real workspace."""

from __future__ import annotations

from pathlib import Path

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.retrieval.text_index import _tokenize
from pagehop.testing.pdf import write_pdf
from pagehop.workspace import Workspace

REPORT = [
    "Quarterly metrics\nThe figures below are unaudited and rounded to whole thousands.",
    "Liquidity\nThe cash ratio was 1.4 at the end of the quarter, against 1.1 a year earlier.",
    "Staff\nHeadcount grew by 40 people, most of them in the support centre.",
    "Outlook\nWe expect steady demand and stable prices through the winter.",
]


def test_an_identifier_in_the_question_meets_the_words_on_the_page(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "metrics.pdf", REPORT)
    settings = Settings(workspace=tmp_path / "ws", ingest={"dpi": 50, "thumbnail_px": 64}, models={"page_encoder": ""})
    with Workspace.open(settings) as ws:
        assert not ingest(ws, [docs], ocr="never", progress=False).failed
        hits = ws.text_index.search_bm25("What is the cash_ratio?", 4)
        assert [hit.page for hit in hits] == [2]  # read as one term "cash_ratio", it would match no page


def test_terms_are_runs_of_letters_or_digits_split_at_underscores() -> None:
    assert _tokenize(["cash_ratio FY2021 net_income_2020"], return_ids=False)[0] == [
        "cash",
        "ratio",
        "fy2021",
        "net",
        "income",
        "2020",
    ]
