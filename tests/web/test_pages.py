"""The page works where the README says: `/`, deep links, the back button, reloads, the docs."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, Route, expect

from tests.helpers import Person
from tests.web.conftest import OpenPage, forgive


async def test_the_root_serves_the_client_with_every_asset_under_a_strict_csp(
    open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    page = await open_page()
    await expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    response = await http.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    # An inline script is refused by that policy, and the page says so.
    refused = await page.evaluate(
        """() => new Promise((resolve) => {
            document.addEventListener(
                "securitypolicyviolation", (e) => resolve(e.violatedDirective), {once: true});
            const script = document.createElement("script");
            script.textContent = "window.__ran = true";
            document.body.append(script);
            setTimeout(() => resolve(window.__ran ? "ran" : "nothing"), 2000);
        })"""
    )
    assert refused.startswith("script-src"), refused
    await forgive(page, "Content Security Policy")  # the refusal above was the test's own


async def test_deep_links_the_back_button_and_a_reload_keep_the_place_and_the_session(
    open_page: OpenPage, person: Person
) -> None:
    first = await person.new_room("Roadmap")
    second = await person.new_room("Design review")
    page = await open_page(person, path=f"/rooms/{first['id']}")
    title = page.locator("#room-title")
    await expect(title).to_have_text("Roadmap")
    await expect(page).to_have_url(re.compile(f"/rooms/{first['id']}$"))

    await page.get_by_role("link", name=re.compile("Design review")).click()
    await expect(title).to_have_text("Design review")
    await expect(page).to_have_url(re.compile(f"/rooms/{second['id']}$"))

    await page.go_back()
    await expect(title).to_have_text("Roadmap")
    await expect(page).to_have_url(re.compile(f"/rooms/{first['id']}$"))
    await page.go_forward()
    await expect(title).to_have_text("Design review")

    await page.reload()
    await expect(title).to_have_text("Design review")
    await expect(page.locator("#me-name")).to_have_text(person.user["name"])


async def test_an_unknown_room_in_the_address_opens_the_first_room_instead(
    open_page: OpenPage, person: Person
) -> None:
    await person.new_room("Only room")
    page = await open_page(person, path="/rooms/00000000-0000-0000-0000-000000000000")
    await expect(page.locator("#room-title")).to_have_text("Only room")


async def _only_local(page: Page, outside: list[str]) -> None:
    async def refuse(route: Route) -> None:
        outside.append(route.request.url)
        await route.abort()

    await page.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"), refuse)


async def test_swagger_ui_and_redoc_load_from_the_project_without_internet(
    open_page: OpenPage,
) -> None:
    page = await open_page(path="/web/vendor/README.md")
    outside: list[str] = []
    await _only_local(page, outside)
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("IAFactory Agents")
    await expect(page.locator(".opblock-tag").first).to_be_visible()
    await page.goto("/redoc")
    await expect(page.get_by_role("heading", name=re.compile("IAFactory Agents"))).to_be_visible()
    assert outside == []
