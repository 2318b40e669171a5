"""Room details from the browser: a project room from the new-room box, muting a room (no
mention badge while muted), read receipts in a direct room, and the digest's unsubscribe link
opened signed out."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from iaf.notifications.unsubscribe import issue_unsubscribe_token
from iaf.settings import Settings
from tests.helpers import colleague, signup
from tests.web.conftest import OpenPage, room_page, send


async def test_project_room_mute_and_read_receipts(open_page: OpenPage, http: httpx.AsyncClient):
    alice = await signup(http, "Alice Owner")
    bob = await colleague(alice, "Bob Colleague")
    page = await open_page(alice)
    await page.get_by_label("Kind of room").select_option("project")
    new_room = page.get_by_label("New room name")
    await new_room.fill("Apollo")
    await new_room.press("Enter")
    await expect(page.locator("#room-title")).to_have_text("Apollo")
    project = (await alice.get("/api/chat/rooms")).json()["items"][0]
    assert (project["name"], project["kind"], project["auto_route"]) == ("Apollo", "project", True)

    # Bob mutes a room he is in: while muted, a mention shows no badge on his room list.
    group = await alice.new_room("Busy room", member_ids=[bob.id])
    direct = await alice.new_room("Alice Owner", kind="direct", member_ids=[bob.id])
    bob_page = await room_page(open_page, bob, {"id": group["id"], "name": "Busy room"})
    mute = bob_page.locator("#mute-toggle")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "true")
    await expect(mute).to_have_text("Unmute")
    muted_item = bob_page.locator(f"#room-list li[data-room-id='{group['id']}']")
    await expect(muted_item.locator(".muted-mark")).to_be_visible()

    await bob_page.locator(f"#room-list li[data-room-id='{direct['id']}'] a").click()
    await expect(bob_page.locator("#room-title")).to_have_text("Alice Owner")
    await alice.say(group["id"], f"@{bob.user['handle']} are you there?")
    direct_item = bob_page.locator(f"#room-list li[data-room-id='{direct['id']}']")
    unread = bob_page.locator(f"#room-list li[data-room-id='{group['id']}'] .badge")
    await expect(unread).to_have_text("1")
    await expect(muted_item.locator(".badge.mention")).to_have_count(0)
    await expect(direct_item.locator(".badge")).to_have_count(0)

    # Alice writes in the direct room; Bob has it open, so it is read: she sees the receipt.
    alice_page = await room_page(open_page, alice, {"id": direct["id"], "name": "Alice Owner"})
    await send(alice_page, "Did you read the brief?")
    mine = alice_page.locator("article.msg.mine", has_text="Did you read the brief?")
    await expect(mine).to_be_visible()
    await expect(mine.locator(".receipt")).to_have_text(re.compile(r"^Read "))
    await expect(bob_page.locator("article.msg .receipt")).to_have_count(0)


async def test_the_unsubscribe_link_works_signed_out(
    open_page: OpenPage, http: httpx.AsyncClient, settings: Settings
):
    carol = await signup(http, "Carol Reader")
    token = issue_unsubscribe_token(settings.secret("unsubscribe_secret"), carol.user["id"])
    page = await open_page(None, path=f"/unsubscribe#token={token}")
    await expect(page.locator("#notice-title")).to_have_text("E-mail digests")
    await expect(page.locator("#notice-text")).to_have_text(
        re.compile(r"^You will get no more digest e-mails")
    )
    assert "token" not in page.url, "the token leaves the address bar"
    choice = (await carol.get("/api/notifications/settings")).json()
    assert choice["email_digest"] is False and choice["changed_by"] == "unsubscribe_link"
