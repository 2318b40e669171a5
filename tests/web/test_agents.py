"""Ask an agent from the composer: the reply streams in as Markdown (heading, lists, code with
a copy button, a link that opens safely); a running reply can be stopped; the client's
screenshot for the README is taken here."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from playwright.async_api import expect

from tests.helpers import signup
from tests.web.conftest import OpenPage, room_page, send


async def test_mention_an_agent_and_read_its_markdown_reply(
    open_page: OpenPage, http: httpx.AsyncClient, tmp_path: Path
):
    alice = await signup(http, "Alice Martin")
    room = await alice.new_room("Launch plan", topic="Everything about the v2 launch")
    await alice.say(room["id"], "Kick-off: we ship v2 on Friday. Ask the agents anything.")
    page = await room_page(open_page, alice, room)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    box = page.locator("#composer-input")
    await box.press_sequentially("@archi")
    option = page.get_by_role("option", name="Architect")
    await expect(option).to_be_visible()
    await box.press("Enter")
    await expect(box).to_have_value("@architect ")
    await box.press_sequentially("how should we stage the rollout? [offline: markdown]")
    await box.press("Enter")

    reply = page.locator("#message-items .msg.agent").last
    await expect(reply.get_by_role("heading", name="Plan")).to_be_visible()
    await expect(reply.locator("ol > li")).to_have_count(2)
    await expect(reply.locator("ul > li")).to_have_text(["keep it simple"])
    await expect(reply.locator("pre code")).to_contain_text('print("hello from the offline model")')
    link = reply.get_by_role("link", name="the guide")
    await expect(link).to_have_attribute("href", "https://example.com/guide")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    await reply.get_by_role("button", name="Copy").click()
    await expect(reply.get_by_role("button", name="Copied")).to_be_visible()
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == 'print("hello from the offline model")'

    # `make screenshots` writes the README's picture; a plain test run keeps it in tmp_path.
    picture = Path(os.environ.get("IAF_SCREENSHOT_DIR") or tmp_path) / "client.png"
    await page.mouse.move(0, 0)
    await page.screenshot(path=str(picture))  # Playwright creates the folder
    assert len(await page.screenshot()) > 10_000


async def test_a_running_reply_is_stopped_from_the_page(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, "Alice Martin")
    room = await alice.new_room("Research")
    page = await room_page(open_page, alice, room)
    await send(page, "@analyst write a long survey please [offline: slow=3]")
    streaming = page.locator("#reply-items .msg.streaming")
    await expect(streaming.locator(".streaming-text")).not_to_be_empty()
    await streaming.get_by_role("button", name="Stop").click()
    await expect(page.get_by_text("You stopped this reply.")).to_be_visible()
    stopped = await alice.get(f"/api/chat/rooms/{room['id']}/messages")
    assert not any(m["sender_agent_id"] for m in stopped.json()["items"])
