"""In the browser: search messages from the sidebar (marked words, a result opens its room),
attach files (an image shown inline, a text file added to the room's knowledge in one click),
add a web page to knowledge (refused in words while no host is allowed), the legal links."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from playwright.async_api import Route, expect

from tests.file_fixtures import png
from tests.helpers import signup
from tests.web.conftest import OpenPage, Watch, room_page, send


async def test_a_search_typed_while_the_room_loads_keeps_the_focus(
    open_page: OpenPage, http: httpx.AsyncClient
):
    """The room's members arrive late (held here): the search typed meanwhile is not cut off
    by the composer taking the focus when loading ends (it used to, on a loaded machine)."""
    alice = await signup(http, "Alice Focus")
    planning = await alice.new_room("Planning")
    other = await alice.new_room("Other")
    await alice.say(planning["id"], "Les réunions de planification sont déplacées à jeudi")
    # Another room first, wholly loaded, so that the members request held below is Planning's.
    page = await room_page(open_page, alice, other)
    chat = page.locator("#chat-view")
    await expect(chat).to_have_attribute("data-loaded-room", other["id"])
    held, release = asyncio.Event(), asyncio.Event()

    async def hold(route: Route) -> None:
        held.set()
        await release.wait()
        await route.continue_()

    await page.route("**/api/chat/rooms/*/members", hold)
    await page.locator(f"#room-list li[data-room-id='{planning['id']}'] a").click()
    await asyncio.wait_for(held.wait(), 30)
    search = page.get_by_label("Search messages")
    await search.fill("reunion")
    release.set()
    await expect(chat).to_have_attribute("data-loaded-room", planning["id"])
    await expect(search).to_be_focused()
    await search.press("Enter")
    await expect(page.locator("#search-results li")).to_have_count(1)


async def test_search_opens_the_room_of_a_result(open_page: OpenPage, http: httpx.AsyncClient):
    alice = await signup(http, "Alice Search")
    planning = await alice.new_room("Planning")
    other = await alice.new_room("Other")
    await alice.say(planning["id"], "Les réunions de planification sont déplacées à jeudi")
    await alice.say(other["id"], "nothing about it here")
    page = await room_page(open_page, alice, other)

    await page.get_by_label("Search messages").fill("reunion")
    await page.get_by_label("Search messages").press("Enter")
    results = page.locator("#search-results li")
    await expect(results).to_have_count(1)
    await expect(results.locator("mark")).to_have_text("réunions")
    await expect(page.locator("#search-summary")).to_have_text("1 messages found")
    await results.get_by_role("button").click()
    await expect(page.locator("#search-view")).to_be_hidden()
    await expect(page.locator("#room-title")).to_have_text("Planning")

    await page.get_by_label("Search messages").fill("from:@nobody-known")
    await page.get_by_label("Search messages").press("Enter")
    await expect(page.locator("#search-summary")).to_contain_text("nobody you share a room with")
    privacy = page.get_by_role("link", name="Privacy")
    assert await privacy.get_attribute("href") == "/legal/privacy-policy"
    # The page the link opens (a new tab), watched like every page: no 404, no console error.
    legal, watch = await page.context.new_page(), Watch()
    watch.attach(legal)
    origin = page.url.split("/", 3)[:3]
    await legal.goto("/".join(origin) + "/legal/privacy-policy")
    await expect(legal.get_by_role("heading", level=1)).to_contain_text("Privacy policy")
    # Its own icon: a page without one makes the browser ask for /favicon.ico (a 404).
    await expect(legal.locator('link[rel="icon"]')).to_have_count(1)
    await legal.wait_for_load_state("load")
    await watch.check(legal)
    await legal.close()


async def test_files_are_attached_shown_and_added_to_knowledge(
    open_page: OpenPage, http: httpx.AsyncClient, tmp_path: Path
):
    (tmp_path / "chart.png").write_bytes(png(40, 30))
    (tmp_path / "runbook.txt").write_bytes(b"Restart the otter service with care.")
    alice = await signup(http, "Alice Files")
    room = await alice.new_room("Files")
    page = await room_page(open_page, alice, room)

    await page.locator("#attach-input").set_input_files(
        [str(tmp_path / "chart.png"), str(tmp_path / "runbook.txt")]
    )
    await expect(page.locator("#attach-list li")).to_have_count(2)
    await send(page, "the chart and the runbook")
    await expect(page.locator("#attach-list li")).to_have_count(0)
    message = page.locator("#message-items .msg").filter(has_text="the chart and the runbook")
    image = message.locator("img.attachment-image")
    await expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    await image.evaluate(
        "img => img.complete && img.naturalWidth ? null : new Promise(ok => img.onload = ok)"
    )
    assert await image.evaluate("img => img.naturalWidth") == 40
    await message.get_by_role("button", name="Add to knowledge").click()
    await expect(message.get_by_text("added to the room's knowledge")).to_be_visible()

    await page.get_by_role("link", name="Knowledge").click()
    panel = page.locator("#knowledge-panel")
    await expect(panel.locator("#document-list li").filter(has_text="runbook.txt")).to_have_count(1)
    await panel.get_by_label("Web page or sitemap URL").fill("https://docs.example.com/guide")
    await panel.get_by_role("button", name="Add from the web").click()
    await expect(panel.locator("#knowledge-error")).to_contain_text("CRAWL_ALLOWED_HOSTS")
