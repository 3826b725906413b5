"""The chat UI in real headless Chromium: upload a document, ask, see stages, the answer and a cited page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pagehop.demo import DEMO_QUESTION

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
    chat.get_by_text("Sources:").wait_for()
    chat.locator("img").first.wait_for()
    text = chat.inner_text()
    assert "Tallinn" in text
    assert "Decompose the question" in text and "Verify the draft" in text
    assert "Kestrel Optics, p. 1" in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)
