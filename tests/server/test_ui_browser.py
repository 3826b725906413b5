"""The chat UI in real headless Chromium: upload a document, ask, see stages, the answer and a cited page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pagehop.demo import DEMO_QUESTION
from pagehop.testing.images import highlight_fit
from pagehop.testing.pdf import write_pdf

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def server(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory, live_server: Any) -> Iterator[Any]:
    target = tmp_path_factory.mktemp("ui") / "ws"
    with live_server(demo_workspace, target, ui=True) as live:
        yield live


@pytest.fixture
def page(server: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1100})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


def test_upload_then_ask_in_the_browser(page: Any, server: Any, tmp_path: Path) -> None:
    page.goto(f"{server.url}/ui/")

    # Documents tab: upload a text file and see the ingestion summary and the new row.
    note = tmp_path / "zephyr-lab.txt"
    note.write_text("Zephyr Lab\n\nThe Zephyr Lab mascot is a heron named Odile.\n")
    page.get_by_role("tab", name="Documents").click()
    page.locator("#pagehop-upload input[type=file]").set_input_files(str(note))
    page.locator("#pagehop-ingest").click()
    page.wait_for_function(
        "() => document.querySelector('#pagehop-summary textarea')?.value.includes('1 documents ingested')"
    )
    uploaded = [d for d in server.state.workspace.list_documents() if "uploads" in d.source_path]
    assert len(uploaded) == 1
    page.get_by_text(uploaded[0].doc_id).first.wait_for()  # the documents table was refreshed

    # Chat tab: the stages appear as thoughts, then the answer with sources and a cited page image.
    page.get_by_role("tab", name="Chat").click()
    page.locator("textarea").first.fill(DEMO_QUESTION)
    page.keyboard.press("Enter")
    chat = page.locator("#pagehop-chat")
    chat.locator(".pagehop-sources").wait_for()
    # A citation link opens its source: the PDF page's image (the sample's text files have none).
    pdf_source = chat.locator(".pagehop-source:has(> summary:has-text('Harbor Lane Robotics'))").first
    chat.locator(f'a.pagehop-cite[href="#{pdf_source.get_attribute("id")}"]').first.click()
    chat.locator(".pagehop-source[open] img").first.wait_for()
    text = chat.inner_text()
    assert "Tallinn" in text
    assert "Decompose the question" in text and "Verify the draft" in text
    assert "Kestrel Optics, p. 1" in text
    ARTIFACTS.mkdir(exist_ok=True)
    chat.locator(".pagehop-answer").last.screenshot(path=str(ARTIFACTS / "demo-answer.png"))  # docs/img's source
    page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)


def test_root_opens_the_chat(page: Any, server: Any) -> None:
    page.goto(f"{server.url}/")
    assert page.url == f"{server.url}/ui/"
    page.get_by_role("tab", name="Chat").wait_for()
    page.locator("#pagehop-chat").wait_for()


def test_a_cited_pdf_passage_opens_highlighted(page: Any, server: Any, tmp_path: Path) -> None:
    pdf = write_pdf(
        tmp_path / "otter-notes.pdf",
        [
            "Otter notes\n\nThe Quillon Works mascot is an otter named Brindle.\n"
            "Brindle sleeps beside the old boathouse."
        ],
    )
    page.goto(f"{server.url}/")

    # Documents tab: upload a PDF, see its per-file summary, pick it and see its page thumbnails.
    page.get_by_role("tab", name="Documents").click()
    page.locator("#pagehop-upload input[type=file]").set_input_files(str(pdf))
    page.locator("#pagehop-ingest").click()
    page.wait_for_function(
        "() => document.querySelector('#pagehop-summary textarea')?.value.includes('1 documents ingested')"
    )
    per_file = page.locator("#pagehop-ingest-files").inner_text()
    assert "otter-notes.pdf" in per_file and "ingested" in per_file
    page.locator("#pagehop-doc-picker input").click()
    page.get_by_role("option", name="otter-notes").first.click()
    page.locator("#pagehop-thumbnails img").first.wait_for()

    # Chat: the answer carries an inline [1] marker; clicking it opens the cited page, highlighted.
    page.get_by_role("tab", name="Chat").click()
    page.locator("textarea").first.fill("What is the Quillon Works mascot?")
    page.keyboard.press("Enter")
    answer = page.locator("#pagehop-chat .pagehop-answer").last
    answer.wait_for()
    assert "Brindle" in answer.locator(".pagehop-text").inner_text()
    answer.locator(".pagehop-text a.pagehop-cite").first.click()
    shown = answer.locator(".pagehop-source[open] img.pagehop-page").first
    shown.wait_for()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=shown.element_handle())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-highlighted-citation.png"), full_page=True)
    answer.screenshot(path=str(ARTIFACTS / "answer-with-highlight.png"))

    # The image the browser shows differs from the plain page exactly over the cited chunk's lines.
    (doc,) = [d for d in server.state.workspace.list_documents() if d.title == "otter-notes"]
    (chunk,) = server.state.workspace.get_chunks(doc.doc_id)
    highlighted = page.request.get(f"{server.url}/ui/{shown.get_attribute('src')}")
    plain = page.request.get(f"{server.url}/api/pages/{doc.doc_id}/1/image")
    assert highlighted.ok and plain.ok
    covered, outside = highlight_fit(plain.body(), highlighted.body(), chunk.boxes)
    assert len(chunk.boxes) == 3 and covered > 0.5 and outside == 0

    # Delete it from the Documents tab.
    page.get_by_role("tab", name="Documents").click()
    page.locator("#pagehop-doc-picker input").click()
    page.get_by_role("option", name="otter-notes").first.click()
    page.locator("#pagehop-delete").click()
    page.wait_for_function("() => document.querySelector('#pagehop-summary textarea')?.value.startsWith('Deleted')")
    assert server.state.workspace.get_document(doc.doc_id) is None


def test_graph_evidence_is_drawn_as_a_path(page: Any, server: Any) -> None:
    page.goto(f"{server.url}/")
    page.locator("textarea").first.fill("Who is Mirela Voss?")
    page.keyboard.press("Enter")
    diagram = page.locator("#pagehop-chat .pagehop-graph svg").first
    diagram.wait_for()
    nodes = diagram.locator(".pagehop-node text").all_text_contents()
    assert "Mirela Voss" in nodes and len(nodes) >= 2
    assert diagram.locator(".pagehop-edge text").count() == len(nodes) - 1
    assert diagram.locator(".pagehop-edge polygon").count() == len(nodes) - 1  # each edge has its arrowhead
    box = diagram.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 30  # rendered, not just present
    ARTIFACTS.mkdir(exist_ok=True)
    diagram.screenshot(path=str(ARTIFACTS / "graph-path.png"))
