"""Rooms from the browser: group and direct rooms, name, topic, archive; members and roles,
with the server's refusals (403, 409) shown to the person in words."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.helpers import colleague, signup
from tests.web.conftest import OpenPage, room_page


async def test_create_rename_set_topic_manage_members_and_archive(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, "Alice Owner")
    bob = await colleague(alice, "Bob Colleague")
    page = await open_page(alice)
    new_room = page.get_by_label("New room name")
    await new_room.fill("Launch plan")
    await new_room.press("Enter")
    await expect(page.locator("#room-title")).to_have_text("Launch plan")
    await expect(page).to_have_url(re.compile(r"/rooms/[0-9a-f-]{36}$"))
    room_id = page.url.rsplit("/", 1)[1]

    await page.get_by_role("link", name="Room settings").click()
    await expect(page).to_have_url(re.compile(f"/rooms/{room_id}/settings$"))
    panel = page.locator("#room-panel")
    details = panel.locator("#room-form")
    await details.get_by_label("Name").fill("Launch plan v2")
    await details.get_by_label("Topic").fill("Ship by Friday")
    await details.get_by_role("button", name="Save").click()
    await expect(page.locator("#room-title")).to_have_text("Launch plan v2")
    await expect(page.locator("#room-topic")).to_have_text("Ship by Friday")
    await expect(page.get_by_role("link", name=re.compile("Launch plan v2"))).to_be_visible()

    # Members: add Bob, make him admin, then the server refuses what the rules forbid.
    add = panel.locator("#add-member-form")
    await add.locator("select[name=user_id]").select_option(value=bob.id)
    await add.get_by_role("button", name="Add").click()
    bob_row = panel.locator(f"li.member[data-user-id='{bob.id}']")
    await expect(bob_row).to_be_visible()
    await bob_row.get_by_label("Role of Bob Colleague").select_option("admin")
    await expect(page.locator("#toast")).to_have_text("Bob Colleague is now admin.")

    alice_row = panel.locator(f"li.member[data-user-id='{alice.id}']")
    await alice_row.get_by_role("button", name="Leave").click()
    error = panel.locator("#panel-error")
    await expect(error).to_have_text(re.compile(r"^This cannot be done now: the last owner"))

    bob_page = await room_page(open_page, bob, {"id": room_id, "name": "Launch plan v2"})
    await bob_page.get_by_role("link", name="Room settings").click()
    bob_panel = bob_page.locator("#room-panel")
    owner_row = bob_panel.locator(f"li.member[data-user-id='{alice.id}']")
    await owner_row.get_by_label("Role of Alice Owner").select_option("member")
    await expect(bob_panel.locator("#panel-error")).to_have_text(
        re.compile(r"^You are not allowed to do this: only an owner")
    )
    await expect(owner_row.get_by_label("Role of Alice Owner")).to_have_value("owner")

    # Alice removes Bob: his row goes on her page, and the room leaves his list, live.
    await bob_row.get_by_role("button", name="Remove").click()
    await expect(bob_row).to_be_hidden()
    await expect(bob_page.get_by_role("link", name=re.compile("Launch plan v2"))).to_be_hidden()

    await details.get_by_role("button", name="Archive").click()
    await expect(page.locator("#room-archived")).to_be_visible()
    await expect(page.locator("#composer")).to_be_hidden()


async def test_a_direct_room_with_a_colleague(open_page: OpenPage, http: httpx.AsyncClient):
    alice = await signup(http, "Alice Owner")
    bob = await colleague(alice, "Bob Colleague")
    page = await open_page(alice)
    await page.get_by_role("button", name="New direct message").click()
    dialog = page.get_by_role("dialog", name="New direct message")
    await dialog.get_by_label("Colleague").select_option(value=bob.id)
    await dialog.get_by_role("button", name="Start").click()
    await expect(page.locator("#room-title")).to_have_text("Bob Colleague")
    await expect(page.locator("#room-kind")).to_have_text("@")
    await expect(dialog).to_be_hidden()
