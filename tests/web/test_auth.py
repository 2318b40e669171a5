"""Sign up, sign out (the token is revoked), sign in; a wrong password changes nothing."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.helpers import unique_email
from tests.web.conftest import PASSWORD, OpenPage


async def test_sign_up_sign_out_and_sign_in_again(open_page: OpenPage, http: httpx.AsyncClient):
    page = await open_page()
    form = page.locator("#auth-form")
    email = unique_email("nadia")
    await form.get_by_role("tab", name="Create account").click()
    await form.get_by_label("Name").fill("Nadia Haddad")
    await form.get_by_label("E-mail").fill(email)
    await form.get_by_label("Password").fill(PASSWORD)
    await page.locator("#auth-submit").click()
    await expect(page.locator("#me-name")).to_have_text("Nadia Haddad")
    await expect(page.get_by_role("heading", name="Welcome!")).to_be_visible()
    token = await page.evaluate("sessionStorage.getItem('iaf.token')")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#auth-submit")).to_have_text("Sign in")
    assert await page.evaluate("sessionStorage.getItem('iaf.token')") is None
    revoked = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401  # signed out on the server, not only forgotten here

    await form.get_by_label("E-mail").fill(email)
    await form.get_by_label("Password").fill("not the password")
    await page.locator("#auth-submit").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    await expect(page.locator("#app-view")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('iaf.token')") is None

    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_label("Password").press("Enter")
    await expect(page.locator("#me-name")).to_have_text("Nadia Haddad")
    await expect(page.locator("#app-view")).to_be_visible()
    await page.reload()
    await expect(page.locator("#me-name")).to_have_text("Nadia Haddad")
