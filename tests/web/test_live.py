"""Two people in one room, each in their own browser: messages, edits, deletes, typing and
presence arrive live; a new room and a mention elsewhere reach the room list live."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.helpers import colleague, signup
from tests.web.conftest import OpenPage, room_page, send


async def test_messages_edits_deletes_typing_and_presence_arrive_without_reload(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, "Alice Martin")
    bob = await colleague(alice, "Bob Durand")
    room = await alice.new_room("Daily", member_ids=[bob.id])
    alice_page = await room_page(open_page, alice, room)
    await alice_page.get_by_role("link", name="Room settings").click()
    bob_dot = alice_page.locator(f"li.member[data-user-id='{bob.id}'] .presence-dot")
    await expect(bob_dot).to_be_attached()

    bob_page = await room_page(open_page, bob, room)
    await expect(bob_dot).to_have_attribute("data-online", "true")  # presence

    await alice_page.locator("#composer-input").press_sequentially("Hel")
    await expect(bob_page.locator("#typing")).to_have_text("Alice Martin is typing")

    await send(alice_page, "Hello Bob, standup in 5")
    bob_message = bob_page.locator("#message-items .msg", has_text="Hello Bob, standup in 5")
    await expect(bob_message).to_be_visible()

    found = alice_page.locator("#message-items .msg.mine:not(.pending)", has_text="Hello Bob")
    message_id = await found.get_attribute("data-id")
    mine = alice_page.locator(f"#message-items .msg[data-id='{message_id}']")
    await mine.hover()
    await mine.get_by_role("button", name="Edit").click()
    editor = mine.get_by_label("Edit message")
    await editor.fill("Hello Bob, standup in 10")
    await editor.press("Enter")
    edited = bob_page.locator("#message-items .msg", has_text="standup in 10")
    await expect(edited).to_be_visible()
    await expect(edited.locator(".edited")).to_have_text("(edited)")

    await expect(mine).to_contain_text("standup in 10")
    await mine.hover()
    await mine.get_by_role("button", name="Delete").click()
    await mine.get_by_role("button", name="Yes, delete").click()
    await expect(bob_page.get_by_text("This message was deleted.")).to_be_visible()
    await expect(bob_page.get_by_text("standup in 10")).to_be_hidden()


async def test_a_new_room_and_a_mention_elsewhere_reach_the_room_list_live(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, "Alice Martin")
    bob = await colleague(alice, "Bob Durand")
    first = await alice.new_room("General", member_ids=[bob.id])
    bob_page = await room_page(open_page, bob, first)

    other = await alice.new_room("Incidents", member_ids=[bob.id])
    link = bob_page.get_by_role("link", name=re.compile("Incidents"))
    await expect(link).to_be_visible()

    await alice.say(other["id"], "plain news")
    await expect(link.locator(".badge:not(.mention)")).to_have_text("1")
    await alice.say(other["id"], f"@{bob.user['handle']} can you check the alerts?")
    await expect(link.locator(".badge.mention")).to_have_text("@1")
    await expect(link.locator(".badge:not(.mention)")).to_have_text("2")

    await link.click()
    await expect(bob_page.locator("#room-title")).to_have_text("Incidents")
    await expect(bob_page.get_by_text("can you check the alerts?")).to_be_visible()
    await expect(link.locator(".badge")).to_have_count(0)
