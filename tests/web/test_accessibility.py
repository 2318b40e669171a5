"""Keyboard only: sign in, switch rooms, mention an agent and send, with visible focus; and
axe-core finds no serious or critical violation on the main views."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, expect

from tests.helpers import signup
from tests.web.conftest import PASSWORD, OpenPage, axe_violations

FOCUS_RING = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
}"""


async def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Presses Tab until the element matching `selector` has the focus (as a person would)."""
    for _ in range(limit):
        if await page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus")


async def test_sign_in_switch_rooms_and_ask_an_agent_with_the_keyboard_only(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, "Alice Martin")
    await alice.new_room("General")
    ops = await alice.new_room("Ops")
    page = await open_page()
    await expect(page.locator("#auth-form input[name=email]")).to_be_focused()
    await page.keyboard.type(alice.user["email"])
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.locator("#app-view")).to_be_visible()

    await tab_to(page, f"a.room[href='/rooms/{ops['id']}']")
    assert await page.evaluate(FOCUS_RING), "the focused room link shows no focus ring"
    await page.keyboard.press("Enter")
    await expect(page.locator("#room-title")).to_have_text("Ops")
    await expect(page.locator("#composer-input")).to_be_focused()
    assert await page.evaluate(FOCUS_RING), "the message box shows no focus ring"

    await page.keyboard.type("@archi")
    await expect(
        page.get_by_role("option", name=re.compile(r"^Architect @architect"))
    ).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("Enter")
    await page.keyboard.type("what is the next step?")
    await page.keyboard.press("Enter")
    await expect(page.locator("#message-items .msg.agent")).to_contain_text("(offline model)")


async def test_axe_finds_no_serious_violation_on_the_main_views(
    open_page: OpenPage, http: httpx.AsyncClient
):
    page = await open_page()
    await expect(page.locator("#auth-form")).to_be_visible()
    found = {"sign-in": await axe_violations(page)}

    alice = await signup(http, "Alice Martin")
    room = await alice.new_room("Accessible room", topic="Checked by axe")
    await alice.say(room["id"], "@architect a question **in bold** [offline: markdown]")
    page = await open_page(alice, path=f"/rooms/{room['id']}")
    await expect(page.locator("#message-items .msg.agent")).to_contain_text("Plan")
    found["room"] = await axe_violations(page)
    panels = (("settings", "Room settings"), ("knowledge", "Knowledge"), ("agents", "Agents"))
    for panel, link in panels:
        await page.get_by_role("link", name=link).click()
        await expect(page.locator(f"#{panel}-panel")).to_be_visible()
        found[f"room {panel}"] = await axe_violations(page)
    for section in ("profile", "credits", "privacy"):
        await page.goto(f"/settings/{section}")
        await expect(page.locator(f"#settings-{section}")).to_be_visible()
        found[section] = await axe_violations(page)
    assert not any(found.values()), "\n".join(f"{k}: {v}" for k, v in found.items() if v)
