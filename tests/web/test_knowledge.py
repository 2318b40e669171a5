"""Knowledge from the browser: upload .md, .txt and .pdf files and paste text, watch each turn
ready, retry a failed one, delete one; then an agent's answer cites an uploaded file."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.async_api import expect

from tests.agent_helpers import rows
from tests.helpers import signup
from tests.pdf_fixture import pdf_with_text
from tests.web.conftest import OpenPage, room_page, send


async def test_upload_paste_retry_delete_and_an_answer_citing_the_pdf(
    open_page: OpenPage, http: httpx.AsyncClient, tmp_path: Path, database_url: str
):
    files = {
        "release-notes.md": b"# Release notes\n\nThe launch codename is BLUEFIN.",
        "opening-hours.txt": b"The support desk opens at 9 and closes at 17.",
        "moon-handbook.pdf": pdf_with_text("The moon base access code is ZEPHYR-42."),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    alice = await signup(http, "Alice Martin")
    room = await alice.new_room("Docs")
    page = await room_page(open_page, alice, room)
    await page.get_by_role("link", name="Knowledge").click()
    panel = page.locator("#knowledge-panel")
    await panel.get_by_label("File (.md, .txt, .pdf)").set_input_files(
        [str(tmp_path / name) for name in files]
    )
    await panel.get_by_role("button", name="Upload").click()
    await panel.get_by_label("Title").fill("Glossary")
    await panel.get_by_label("Text").fill("A widget is the unit we sell.")
    await panel.get_by_role("button", name="Add text").click()

    documents = panel.locator("#document-list li")
    for title in ("release-notes", "opening-hours", "moon-handbook", "Glossary"):
        row = documents.filter(has_text=title)
        await expect(row.locator(".status-pill")).to_have_text("ready")

    # An ingestion that failed (say the embedding service was down) is retried from here.
    glossary = documents.filter(has_text="Glossary")
    document_id = await glossary.get_attribute("data-id")
    rows(
        database_url,
        "UPDATE knowledge_documents SET status = 'failed', error = 'EmbeddingDown'"
        " WHERE id = %s RETURNING id",
        document_id,
    )
    await page.get_by_role("link", name="Knowledge").click()  # close
    await page.get_by_role("link", name="Knowledge").click()  # and open again
    await expect(glossary.locator(".status-pill")).to_have_text("failed")
    await glossary.get_by_role("button", name="Retry").click()
    await expect(glossary.locator(".status-pill")).to_have_text("ready")

    await documents.filter(has_text="opening-hours").get_by_role("button", name="Delete").click()
    await expect(documents.filter(has_text="opening-hours")).to_have_count(0)

    await send(page, "@architect what is the moon base access code?")
    reply = page.locator("#message-items .msg.agent").last
    await expect(reply).to_contain_text("ZEPHYR-42")
    await expect(reply).to_contain_text("[source: moon-handbook]")
