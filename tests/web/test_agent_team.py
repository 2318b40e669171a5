"""Agents in the browser beyond one mention: the directory filtered by category, and a team
answer whose drafts stream in and then give way to the one answer that credits each agent."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.helpers import signup
from tests.web.conftest import OpenPage, room_page


async def test_a_team_answer_shows_the_drafts_then_one_answer_crediting_each_agent(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, "Alice Martin")
    room = await alice.new_room("Billing")
    page = await room_page(open_page, alice, room)

    box = page.locator("#composer-input")
    await box.press_sequentially("@tea")
    await page.get_by_role("option", name=re.compile(r"^Team @team")).click()
    await expect(box).to_have_value("@team ")
    await box.press_sequentially(
        "@architect @pm @qa are we ready to ship billing? [offline: slow=20] [offline: fail-for=qa]"
    )
    await box.press("Enter")

    # Each agent's draft streams in its own bubble, marked as a draft.
    drafts = page.locator("#reply-items .msg.draft")
    await expect(drafts).to_have_count(3)
    architect = drafts.filter(has=page.locator(".sender").get_by_text("Architect", exact=True))
    await expect(architect.locator(".draft-tag")).to_have_text("draft")
    await expect(architect.locator(".streaming-text")).to_contain_text("As the Architect")

    # Then one answer, written by the orchestrator, names who said what (and who could not).
    answer = page.locator("#message-items .msg.agent")
    await expect(answer).to_have_count(1, timeout=60_000)  # three drafts, then the synthesis
    await expect(answer.locator(".sender")).to_have_text("Orchestrator")
    await expect(answer.locator(".team-credit")).to_have_text(
        re.compile(r"^Team answer from (Architect and PM|PM and Architect)$")
    )
    items = answer.locator("li")
    await expect(items.filter(has_text=re.compile(r'^Architect: ".+"$'))).to_have_count(1)
    await expect(items.filter(has_text=re.compile(r'^PM: ".+"$'))).to_have_count(1)
    await expect(items.filter(has_text="QA Architect could not answer.")).to_have_count(1)

    # The drafts, the failed one included, do not stay on as extra messages.
    await expect(page.locator("#reply-items .msg")).to_have_count(0)
    await expect(page.locator("#message-items .msg.system")).to_have_count(0)
    await expect(answer).to_have_count(1)
    stored = (await alice.get(f"/api/chat/rooms/{room['id']}/messages")).json()["items"]
    assert [m["sender_agent_id"] for m in stored if m["sender_agent_id"]] == ["orchestrator"]


async def test_the_agent_directory_filters_by_category_and_mentions_an_agent(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, "Alice Martin")
    room = await alice.new_room("Quality")
    directory = (await alice.get("/api/agents?limit=50")).json()
    quality = (await alice.get("/api/agents?category=quality&limit=50")).json()["items"]
    assert len(quality) >= 2 and len(quality) < len(directory["items"])
    page = await room_page(open_page, alice, room)

    await page.get_by_role("link", name="Agents").click()
    panel = page.locator("#agents-panel")
    await expect(panel).to_be_visible()
    cards = page.locator("#agent-list > li")
    await expect(cards).to_have_count(len(directory["items"]))
    category = panel.get_by_label("Category")
    await expect(category.locator("option")).to_have_text(
        [f"All agents ({len(directory['items'])})"]
        + [f"{c['id'].capitalize()} ({c['count']})" for c in directory["categories"]]
    )

    await category.select_option("quality")
    await expect(cards).to_have_count(len(quality))
    await expect(cards.locator(".agent-name")).to_have_text([a["name"] for a in quality])
    await expect(cards.locator(".tag")).to_have_text(["Quality"] * len(quality))
    await expect(panel.get_by_role("status")).to_have_text(f"{len(quality)} agents shown")

    await panel.get_by_role("button", name="Mention Tester").click()
    box = page.locator("#composer-input")
    await expect(box).to_be_focused()
    await expect(box).to_have_value("@tester ")
    await box.press_sequentially("what should we test first?")
    await box.press("Enter")
    reply = page.locator("#message-items .msg.agent")
    await expect(reply.locator(".sender")).to_have_text("Tester")
    await expect(reply).to_contain_text("As the Tester")

    await category.select_option("")
    await expect(cards).to_have_count(len(directory["items"]))
