"""Hostile text in every place the client shows text runs nothing: messages, room names,
topics, agent replies (which quote the question) and document titles."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.helpers import signup
from tests.web.conftest import OpenPage, room_page, send

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
LINK = "[click me](javascript:window.__xss=3)"
SVG = '<svg onload="window.__xss=4"></svg>'
HTML_LINK = '<a href="javascript:window.__xss=5">raw link</a>'
PAYLOAD = f"{IMG} {SCRIPT} {LINK} {SVG} {HTML_LINK}"


async def test_hostile_text_everywhere_is_shown_as_text_and_runs_nothing(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, f"Alice {IMG}")
    room = await alice.new_room(f"Room {IMG}", topic=f"Topic {SCRIPT} {SVG}")
    title = await alice.post(
        "/api/knowledge/documents",
        json={"title": f"Doc {IMG}", "content": "harmless", "scope": "room", "room_id": room["id"]},
    )
    assert title.status_code == 202
    page = await room_page(open_page, alice, room)
    await expect(page.locator("#room-topic")).to_have_text(f"Topic {SCRIPT} {SVG}")
    await expect(page.get_by_role("link", name=f"Room {IMG}")).to_be_visible()

    await send(page, PAYLOAD)
    mine = page.locator("#message-items .msg.mine:not(.pending)").last
    await expect(mine).to_contain_text("raw link")
    await send(page, f"@writer please repeat {IMG} and {LINK}")
    reply = page.locator("#message-items .msg.agent").last
    await expect(reply).to_contain_text("(offline model)")

    await page.get_by_role("link", name="Knowledge").click()
    await expect(page.locator("#document-list")).to_contain_text(f"Doc {IMG}")

    for scope in ("#message-items", "#room-title", "#room-topic", "#room-list", "#document-list"):
        found = page.locator(scope)
        assert await found.locator("img, script, svg, iframe").count() == 0, scope
    hrefs = await page.locator("a[href]").evaluate_all("links => links.map(a => a.href)")
    assert not [h for h in hrefs if h.lower().startswith("javascript")]
    await page.locator("#message-items").get_by_text("click me").first.click()
    assert await page.evaluate("window.__xss") is None
    # The page's own watch (conftest) fails the test on a dialog, a page error or a CSP
    # violation, which is what an executed payload would cause.
